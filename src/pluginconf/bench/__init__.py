"""``pluginconf bench``: the reference host and plugin measured beside raw grpcio.

Each section (``sections/``, listed in ``sections/registry.py``) measures one concern and
returns figures; every figure that has a baseline takes it in the same run, so that ratios
hold on a noisy machine. The processes measured are in ``processes/``, the verified transfers
and their sampled cost in ``measuring/``; the command, its options, sizes, figures and report
are here at the top.
"""
