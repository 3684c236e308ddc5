"""Hypothesis strategies: protobuf payloads, HTTP requests, handshakes, faults, host steps."""
