"""The benchmarks, one module each; ``registry.py`` lists them in the order they run."""
