"""The plugin's own services besides its hooks: health (SPEC HL), the controller and stopping
(CT), stdio (IO); transport profile.
"""
