"""The plugin suite's side: what a plugin case is given, and the suite's clients of a plugin."""
