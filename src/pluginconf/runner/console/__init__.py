"""The console while a run lasts: progress, failures condensed, the closing line."""
