"""fakeplugin: a scriptable fake plugin that behaves, or misbehaves, as a scenario file says.

``python -m pluginconf.fake SCENARIO.json`` runs it; ``scenario`` reads and validates the
scenario (standard library only), ``process`` runs the fake and ``serving`` serves it through
the SDK's PluginProcess. The scenario keys are documented in
fake_interpreters/README.md. Nothing is imported here, so that validating a scenario stays cheap.
"""
