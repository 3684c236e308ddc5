"""Messages drawn from descriptors, shaped: overrides, recursion depth, hook requests."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import struct_pb2
from google.protobuf.message import Message
from hypothesis import find, given, settings
from hypothesis import strategies as st
from payload_messages import (
    FIND,
    Tree,
    depth,
    one_class,
    reachable,
    round_trips,
)

from pluginconf.fuzz.strategies.payloads import REFERENCE_COMMANDS, hook_requests, messages
from pluginconf.v1 import hooks_pb2

EXAMPLES = settings(max_examples=50, deadline=None)

HOOKS = hooks_pb2.DESCRIPTOR.services_by_name["Hooks"]
UNARY = [
    m
    for m in HOOKS.methods
    if not (m.client_streaming or m.server_streaming) and m.name != "Implemented"
]


# -- overrides ---------------------------------------------------------------------------------


@EXAMPLES
@given(
    messages(
        hooks_pb2.Post,
        overrides={
            "pluginconf.v1.Post.message": st.just("by full name"),
            "message": st.just("by plain name"),
            "id": st.just("plain"),
            "props": st.just({"k": "v"}),
        },
    )
)
def test_an_override_by_full_name_wins_over_plain_name(post: hooks_pb2.Post) -> None:
    assert post.message == "by full name"
    assert post.id == "plain"
    assert dict(post.props) == {"k": "v"}


def test_a_plain_name_reaches_nested_messages() -> None:
    strategy = messages(hooks_pb2.MessageWillBePostedRequest, overrides={"user_id": st.just("u1")})

    @EXAMPLES
    @given(strategy)
    def check(request: Any) -> None:
        if request.HasField("post"):
            assert request.post.user_id == "u1"

    check()
    reachable(strategy, lambda request: request.HasField("post"))


@EXAMPLES
@given(
    messages(
        hooks_pb2.HTTPRequestInit,
        overrides={"values": st.just(["a", "b"]), "pluginconf.v1.HTTPRequestInit.path": st.none()},
    )
)
def test_overrides_of_repeated_fields_and_unset(init: hooks_pb2.HTTPRequestInit) -> None:
    assert init.path == ""  # None leaves the field unset
    assert all(list(header.values) == ["a", "b"] for header in init.headers)


@EXAMPLES
@given(messages(Tree, overrides={"leaf": st.just("L"), "fuzztest.Tree.name": st.just("N")}))
def test_overrides_apply_to_oneof_members_and_at_everydepth(tree: Any) -> None:
    while True:
        assert tree.name == "N"
        if tree.WhichOneof("kind") == "leaf":
            assert tree.leaf == "L"
        if not tree.HasField("child"):
            break
        tree = tree.child


def test_a_message_override_is_used_as_is() -> None:
    post = hooks_pb2.Post(id="fixed")
    strategy = messages(hooks_pb2.MessageWillBePostedRequest, overrides={"post": st.just(post)})
    expected = hooks_pb2.MessageWillBePostedRequest(post=post)
    assert find(strategy, lambda _: True, settings=FIND) == expected


def test_a_map_value_is_not_overridden_by_a_field_called_value() -> None:
    never = st.just("never")
    one = messages(one_class("string"), overrides={"value": never})
    assert find(one, lambda _: True, settings=FIND).value == "never"
    reachable(
        messages(hooks_pb2.OnConfigurationChangeRequest, overrides={"value": never}),
        lambda m: any(v != "never" for v in m.configuration.values()),
    )


# -- recursion -----------------------------------------------------------------------------------


@pytest.mark.parametrize("max_depth", [0, 1, 2, 3])
@pytest.mark.parametrize("cls", [struct_pb2.Struct, Tree], ids=lambda c: c.DESCRIPTOR.name)
def test_max_depth_ends_recursion(cls: type[Message], max_depth: int) -> None:
    strategy = messages(cls, max_depth=max_depth)

    @settings(max_examples=20, deadline=None)
    @given(strategy)
    def check(message: Message) -> None:
        assert depth(message) <= max_depth
        round_trips(message)

    check()
    reachable(strategy, lambda m: depth(m) == max_depth)


def test_max_depth_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="max_depth"):
        messages(struct_pb2.Struct, max_depth=-1)


# -- hook requests -------------------------------------------------------------------------------


@EXAMPLES
@given(hook_requests(["OnActivate", "ExecuteCommand", "ServeHTTP", "Implemented", "NoSuchHook"]))
def test_hook_requests_yields_only_the_unary_hooks_asked_for(pair: tuple[str, Message]) -> None:
    name, request = pair
    assert name in ("OnActivate", "ExecuteCommand")
    assert request.DESCRIPTOR is HOOKS.methods_by_name[name].input_type


def test_hook_requests_covers_every_unary_hook() -> None:
    names = [m.name for m in HOOKS.methods]
    assert {m.name for m in UNARY} == set(names) - {"ServeHTTP", "Implemented"}
    strategy = hook_requests(names)
    for method in UNARY:
        reachable(strategy, lambda pair, name=method.name: pair[0] == name)


def test_hook_requests_without_a_unary_hook_is_an_error() -> None:
    with pytest.raises(ValueError, match="no unary hook"):
        hook_requests(["ServeHTTP", "Implemented"])


@pytest.mark.parametrize("command", [c.strip() for c in REFERENCE_COMMANDS])
def test_commands_of_the_reference_plugin_are_drawn(command: str) -> None:
    reachable(
        hook_requests(["ExecuteCommand"]),
        lambda pair: pair[1].command.partition(" ")[0] == command,
    )
