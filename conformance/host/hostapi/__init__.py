"""HostAPI through the broker (SPEC HA), and the broker stream itself (BR)."""
