"""``pluginconf bench``: the reference host and plugin measured beside raw grpcio.

Each section (``sections.py``) measures one concern and returns figures; every figure that has
a baseline takes it in the same run, so that ratios hold on a noisy machine.
"""
