"""The broker (SPEC BR): the stream each side offers the other further services on;
transport profile.
"""
