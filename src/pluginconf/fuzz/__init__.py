"""Property-based fuzzing (Hypothesis): strategies for what crosses the protocol, and properties."""
