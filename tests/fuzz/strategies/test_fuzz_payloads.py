"""Messages drawn from descriptors: valid on the wire, and reaching the edges."""

from __future__ import annotations

import math
from typing import Any

import pytest
from google.protobuf import message_factory, struct_pb2
from google.protobuf.message import Message
from hypothesis import find, given, settings
from payload_messages import (
    FIND,
    GRPC_LIMIT,
    SCALAR_TYPES,
    TEST_MESSAGES,
    AllTypes,
    Legacy,
    Shapes,
    Tree,
    depth,
    one,
    reachable,
    round_trips,
    strings,
)

from pluginconf.fuzz.strategies.payloads import messages
from pluginconf.fuzz.strategies.scalars import FEW, MAX_TEXT_SIZE
from pluginconf.v1 import hooks_pb2, hostapi_pb2

EXAMPLES = settings(max_examples=50, deadline=None)

HOOKS = hooks_pb2.DESCRIPTOR.services_by_name["Hooks"]
UNARY = [
    m
    for m in HOOKS.methods
    if not (m.client_streaming or m.server_streaming) and m.name != "Implemented"
]


# -- valid on the wire ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", UNARY, ids=lambda m: m.name)
def test_every_hook_requestround_trips(method: Any) -> None:
    cls = message_factory.GetMessageClass(method.input_type)

    @EXAMPLES
    @given(messages(cls))
    def check(message: Message) -> None:
        assert isinstance(message, cls)
        assert len(message.SerializeToString()) < GRPC_LIMIT
        assert cls.FromString(message.SerializeToString()) == message

    check()


@pytest.mark.parametrize(
    "cls",
    [
        *(TEST_MESSAGES[f"One{name.title()}"] for name in SCALAR_TYPES),
        Tree,
        Shapes,
        Legacy,
        struct_pb2.Struct,
        hooks_pb2.HTTPRequestFrame,
        hooks_pb2.MessageWillBePostedResponse,
        hostapi_pb2.KVCompareAndSetRequest,
        hostapi_pb2.LogRequest,
    ],
    ids=lambda c: c.DESCRIPTOR.name,
)
def test_other_messages_round_trip(cls: type[Message]) -> None:
    @settings(EXAMPLES, max_examples=30)
    @given(messages(cls))
    def check(message: Message) -> None:
        assert isinstance(message, cls)
        round_trips(message)

    check()


@settings(max_examples=15, deadline=None)
@given(messages(AllTypes))
def test_a_wide_recursive_messageround_trips(message: Message) -> None:
    # Slow (tens of ms each): the top level has 30 fields and the nesting budget is spent.
    assert depth(message) <= 3
    round_trips(message)


@EXAMPLES
@given(messages(Legacy))
def test_a_closed_enum_gets_declared_values_only(message: Any) -> None:
    assert message.IsInitialized()  # the required field is always set
    assert {message.shade, *message.shades} <= {1, 2}


# -- the edges are reachable -----------------------------------------------------------------------


def _non_bmp(message: Message) -> bool:
    """a string with a character outside the BMP"""
    return any(ord(c) > 0xFFFF for text in strings(message) for c in text)


def _long(message: Any) -> bool:
    """a string longer than the common case (maximal ones are rarer; see "maximal bytes")"""
    return any(len(text.encode()) > 1024 for text in strings(message))


def _negative_zero(x: float) -> bool:
    return x == 0.0 and math.copysign(1.0, x) < 0


EDGES = {
    # hook messages
    "non-BMP, nested": (messages(hooks_pb2.MessageWillBePostedRequest), _non_bmp),
    "non-BMP": (messages(hooks_pb2.ExecuteCommandRequest), _non_bmp),
    "long string": (messages(hooks_pb2.ExecuteCommandRequest), _long),
    "empty strings": (
        messages(hooks_pb2.ExecuteCommandRequest),
        lambda m: m.user_id == "" and m.channel_id == "" and m.command != "",
    ),
    "uint32 max": (
        messages(hooks_pb2.OnActivateRequest),
        lambda m: m.host_api_broker_id == 2**32 - 1,
    ),
    "int64 max": (messages(hooks_pb2.Post), lambda m: m.create_at == 2**63 - 1),
    "int64 min": (messages(hooks_pb2.Post), lambda m: m.create_at == -(2**63)),
    "map entry": (
        messages(hooks_pb2.OnConfigurationChangeRequest),
        lambda m: len(m.configuration) > 0,
    ),
    "many map entries": (messages(hooks_pb2.Post), lambda m: len(m.props) > FEW),
    "many messages": (messages(hooks_pb2.HTTPRequestInit), lambda m: len(m.headers) > FEW),
    "unknown enum": (
        messages(hooks_pb2.MessageWillBePostedResponse),
        lambda m: m.action not in (0, 1, 2),
    ),
    "enum int32 max": (
        messages(hooks_pb2.MessageWillBePostedResponse),
        lambda m: m.action == 2**31 - 1,
    ),
    "oneof, empty message": (
        messages(hooks_pb2.HTTPRequestFrame),
        lambda m: m.WhichOneof("frame") == "end",
    ),
    "oneof, empty bytes": (
        messages(hooks_pb2.HTTPRequestFrame),
        lambda m: m.WhichOneof("frame") == "body" and m.body == b"",
    ),
    "optional, empty": (
        messages(hostapi_pb2.KVCompareAndSetRequest),
        lambda m: m.HasField("old_value") and m.old_value == b"",
    ),
    # every scalar type, one at a time
    "int32 -1": (one("int32"), lambda m: m.value == -1),
    "sint32 min": (one("sint32"), lambda m: m.value == -(2**31)),
    "sfixed32 min": (one("sfixed32"), lambda m: m.value == -(2**31)),
    "sint64 max": (one("sint64"), lambda m: m.value == 2**63 - 1),
    "sfixed64 min": (one("sfixed64"), lambda m: m.value == -(2**63)),
    "uint64 max": (one("uint64"), lambda m: m.value == 2**64 - 1),
    "fixed32 max": (one("fixed32"), lambda m: m.value == 2**32 - 1),
    "fixed64 max": (one("fixed64"), lambda m: m.value == 2**64 - 1),
    "bool": (one("bool"), lambda m: m.value),
    "double nan": (one("double"), lambda m: math.isnan(m.value)),
    "double -0.0": (one("double"), lambda m: _negative_zero(m.value)),
    "double inf": (one("double"), lambda m: m.value == math.inf),
    "double subnormal": (one("double"), lambda m: 0 < abs(m.value) < 2.2250738585072014e-308),
    "float -inf": (one("float"), lambda m: m.value == -math.inf),
    "float nan": (one("float"), lambda m: math.isnan(m.value)),
    "float -0.0": (one("float"), lambda m: _negative_zero(m.value)),
    "float subnormal": (one("float"), lambda m: 0 < abs(m.value) < 1.1754943508222875e-38),
    "maximal bytes": (one("bytes"), lambda m: len(m.value) == MAX_TEXT_SIZE),
    "NUL in a string": (one("string"), lambda m: "\x00" in m.value),
    # structure
    "proto3 optional zero": (messages(Shapes), lambda m: m.HasField("maybe") and m.maybe == 0),
    "many strings": (messages(Shapes), lambda m: len(m.strings) > FEW),
    "unknown enum, map value": (
        messages(Shapes),
        lambda m: any(v not in (0, 1) for v in m.colours.values()),
    ),
    "map of messages": (
        messages(Shapes, max_depth=2),
        lambda m: any(t.HasField("child") for t in m.trees.values()),
    ),
    "oneof of a message": (messages(Tree), lambda m: m.WhichOneof("kind") == "branch"),
}


@pytest.mark.parametrize("edge", EDGES)
def test_an_edge_is_reachable(edge: str) -> None:
    reachable(*EDGES[edge])


def test_the_common_case_is_small() -> None:
    sizes: list[int] = []

    @EXAMPLES
    @given(messages(hooks_pb2.MessageWillBePostedRequest))
    def record(message: Message) -> None:
        sizes.append(message.ByteSize())

    record()
    assert sorted(sizes)[len(sizes) // 2] < 1024


@pytest.mark.parametrize("cls", [hooks_pb2.MessageWillBePostedRequest, Tree, AllTypes])
def test_the_simplest_message_is_empty(cls: type[Message]) -> None:
    # Hypothesis tries the simplest choices first: every field unset.
    first = settings(FIND, max_examples=1)
    assert find(messages(cls), lambda _: True, settings=first) == cls()


def test_it_shrinks_to_the_least_that_fails() -> None:
    shrink = settings(database=None, deadline=None)
    post = find(
        messages(hooks_pb2.MessageWillBePostedRequest), lambda m: m.ByteSize() > 0, settings=shrink
    )
    assert post == hooks_pb2.MessageWillBePostedRequest(post=hooks_pb2.Post())
    tree = find(messages(Tree, max_depth=1), lambda m: m.HasField("child"), settings=shrink)
    assert tree == Tree(child=Tree())
