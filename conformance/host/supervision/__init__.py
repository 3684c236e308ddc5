"""Supervision (SPEC SV): crashes, restarts, the circuit, states, the stop sequence, resources.

Every timing here is measured on what can be seen from outside the host: the moment the
suite killed a process, the wall_time of the host's transitions (SV-2), when a FireHook
answered, and which calls the fakes received (Observer). Each SPEC bound is judged against a
same-run yardstick and measured again, on a new fake, before it fails (runner/timing.py).

Restarts, the circuit breaker and the HTTP front are capabilities a host may lack (go-plugin's
client has none of them): a case that needs one the host does not declare is skipped under a
go-plugin target and fails under the pluginconf target.
"""
