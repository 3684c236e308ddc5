"""What the throughput and memory benchmarks time: verified echo transfers, and the cost of a
transfer to each process (wall time, RSS growth, CPU)."""
