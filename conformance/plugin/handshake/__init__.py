"""Handshake and environment (SPEC HS) and AutoMTLS (TLS): the line the plugin prints, what
it does with what the host sets, and the certificate it presents; transport profile.
"""
