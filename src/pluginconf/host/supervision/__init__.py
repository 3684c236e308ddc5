"""Supervision of plugins (SPEC §17): states, restart policy, processes, circuit breaker."""
