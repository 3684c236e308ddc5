"""The host target: its state machine (machine.py), the driver it delegates to, and its parts."""
