"""Hooks (SPEC HK, LC, RR, SH): what any plugin of the pluginconf.v1 hooks protocol must do
with any valid call; hooks profile.
"""
