"""What each of the host state machine's rules and invariants does, one module per concern."""
