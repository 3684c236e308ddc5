"""Dispatch (SPEC HK, LC, NT, FL, RR): which hooks the host calls, in what order, with what,
and what it hands back; filter chains.
"""
