"""The fakeplugin scenario file: JSON, read and validated with the standard library only.

``load`` (scenario.load) reads a file into a ``Scenario`` (scenario.model); the keys are
documented in fake_interpreters/README.md. Nothing heavy is imported here: a bad scenario
fails fast.
"""
