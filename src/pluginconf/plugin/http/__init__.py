"""The plugin's HTTP side: the ServeHTTP/ASGI bridge and the ASGI app's lifespan."""
