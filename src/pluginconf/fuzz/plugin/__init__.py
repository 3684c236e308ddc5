"""The plugin target: its fuzz properties and the context they run in."""
