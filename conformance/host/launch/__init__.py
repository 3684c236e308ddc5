"""A plugin's start and connection, as the host makes them: the environment and the handshake
(SPEC HS), AutoMTLS (TLS), transport (TR), health checks (HL), stdio (IO).
"""
