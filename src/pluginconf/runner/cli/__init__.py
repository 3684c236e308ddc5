"""The command line of the suites: arguments, narrowing a run, preflight, and the run itself."""
