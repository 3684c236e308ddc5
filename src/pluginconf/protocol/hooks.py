"""The hooks of pluginconf.v1.Hooks, by name: which a plugin may implement, and their kinds.

Plain names, without the generated stubs, so that the fake plugin's scenario checker can use
them with the standard library alone; tests/protocol keeps them equal to hooks.proto. Each
list is read from its Literal type, which typed scenarios (fake/scenario/spec.py) use.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

# A hook a plugin may implement, in the order Implemented lists them (HK-1).
HookName = Literal[
    "OnConfigurationChange",
    "OnActivate",
    "OnDeactivate",
    "MessageHasBeenPosted",
    "MessageWillBePosted",
    "ExecuteCommand",
    "ServeHTTP",
]
HOOKS: tuple[HookName, ...] = get_args(HookName)
# The RPC every plugin serves, which says which of HOOKS it implements.
IMPLEMENTED: Final = "Implemented"
# Hooks that change what a process is (activation, deactivation): called once per process.
LIFECYCLE_HOOKS: tuple[HookName, ...] = ("OnActivate", "OnDeactivate")
# A hook whose response carries an AppError field.
HookWithAppError = Literal[
    "OnConfigurationChange",
    "OnActivate",
    "OnDeactivate",
    "MessageWillBePosted",
    "ExecuteCommand",
]
HOOKS_WITH_APP_ERROR: tuple[HookWithAppError, ...] = get_args(HookWithAppError)
