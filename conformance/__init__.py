"""The conformance cases, readable as a specification (installed as pluginconf.conformance).

One package per suite, with a subpackage per SPEC area; each suite lists its modules, by
dotted name and in reading order, in ``MODULES``. A case is a module-level value made with
``pluginconf.runner.case`` (or ``case_each`` for a table of values): its id, the SPEC.md
requirements it checks, its level and profile, and a docstring in three parts, Purpose,
Procedure and Asserts, as in gRPC's interop test descriptions.
"""
