"""The host's HTTP side: the front routing requests to plugins, and `pluginconf serve`."""
