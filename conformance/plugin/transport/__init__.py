"""Transport (SPEC TR): where and how the plugin listens and what it leaves behind; transport
profile.
"""
