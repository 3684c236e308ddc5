"""`pluginconf reference-host-adapter`: the reference host, driven over HostControl."""
