"""The conformance plugin's behaviours, byte for byte (SPEC RB, with the rules they exercise);
sdk profile (docs/reference-plugin.md).
"""
