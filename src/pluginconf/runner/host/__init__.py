"""The host suite's side: the adapter process, the Observer, and what a host case is given."""
