"""The processes the benchmarks measure: the raw grpcio baseline, the reference plugin (alone
or supervised), ``pluginconf serve``, and runs of the suites; each started in its own session
and always reaped."""
