"""ServeHTTP through the host's HTTP front (SPEC SH, SE): framing, streaming, limits, and what
the client sees when something fails.
"""
