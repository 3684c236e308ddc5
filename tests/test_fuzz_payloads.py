"""Messages drawn from descriptors: valid on the wire, reaching the edges, shaped by overrides."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, struct_pb2
from google.protobuf.message import Message
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample

from pluginconf.fuzz.payloads import (
    FEW,
    MAX_TEXT_SIZE,
    REFERENCE_COMMANDS,
    hook_requests,
    messages,
)
from pluginconf.v1 import hooks_pb2, hostapi_pb2

EXAMPLES = settings(max_examples=50, deadline=None)
# Reachability: the first hit is enough (no shrinking), and the same examples on every run.
FIND = settings(
    max_examples=1000, deadline=None, database=None, phases=[Phase.generate], derandomize=True
)

HOOKS = hooks_pb2.DESCRIPTOR.services_by_name["Hooks"]
UNARY = [
    m
    for m in HOOKS.methods
    if not (m.client_streaming or m.server_streaming) and m.name != "Implemented"
]
GRPC_LIMIT = 4 * 1024 * 1024


SCALAR_TYPES = {
    name: getattr(descriptor_pb2.FieldDescriptorProto, f"TYPE_{name.upper()}")
    for name in (
        "int32", "int64", "uint32", "uint64", "sint32", "sint64", "fixed32", "fixed64",
        "sfixed32", "sfixed64", "bool", "float", "double", "string", "bytes",
    )
}  # fmt: skip


def _test_messages() -> dict[str, type[Message]]:
    """Messages for what the project protos lack, by name: One<type> (one field of each scalar
    type), Tree (recursive, with a oneof), Shapes (optional, repeated, maps), AllTypes (all of
    these in one wide message) and Legacy (proto2: required, a closed enum)."""
    F = descriptor_pb2.FieldDescriptorProto
    pool = descriptor_pool.DescriptorPool()
    message = {"type": F.TYPE_MESSAGE}
    repeated = {"label": F.LABEL_REPEATED}
    colour_type = {"type": F.TYPE_ENUM, "type_name": ".fuzztest.Colour"}

    proto3 = descriptor_pb2.FileDescriptorProto(
        name="fuzz_payloads_all.proto", package="fuzztest", syntax="proto3"
    )
    colour = proto3.enum_type.add(name="Colour")
    colour.value.add(name="COLOUR_UNSPECIFIED", number=0)
    colour.value.add(name="COLOUR_RED", number=1)
    for name, kind in SCALAR_TYPES.items():
        proto3.message_type.add(name=f"One{name.title()}").field.add(
            name="value", number=1, type=kind
        )

    tree = proto3.message_type.add(name="Tree")
    node = {**message, "type_name": ".fuzztest.Tree"}
    tree.field.add(name="name", number=1, type=F.TYPE_STRING)
    tree.field.add(name="child", number=2, **node)
    tree.field.add(name="children", number=3, **node, **repeated)
    tree.oneof_decl.add(name="kind")
    tree.field.add(name="leaf", number=4, type=F.TYPE_STRING, oneof_index=0)
    tree.field.add(name="branch", number=5, oneof_index=0, **node)

    shapes = proto3.message_type.add(name="Shapes")
    shapes.oneof_decl.add(name="_maybe")
    shapes.field.add(name="maybe", number=1, type=F.TYPE_INT32, oneof_index=0, proto3_optional=True)
    shapes.field.add(name="strings", number=2, type=F.TYPE_STRING, **repeated)
    for entry_name, field_name, number, key, value in (
        ("ColoursEntry", "colours", 3, {"type": F.TYPE_STRING}, colour_type),
        ("TreesEntry", "trees", 4, {"type": F.TYPE_INT64}, node),
    ):
        entry = shapes.nested_type.add(name=entry_name)
        entry.options.map_entry = True
        entry.field.add(name="key", number=1, **key)
        entry.field.add(name="value", number=2, **value)
        entry_type = {**message, "type_name": f".fuzztest.Shapes.{entry_name}"}
        shapes.field.add(name=field_name, number=number, **entry_type, **repeated)

    all_types = proto3.message_type.add(name="AllTypes")
    number = iter(range(1, 1000))
    for name, kind in SCALAR_TYPES.items():
        all_types.field.add(name=f"f_{name}", number=next(number), type=kind)
        if name in ("int64", "double", "string", "bytes"):
            all_types.field.add(name=f"r_{name}", number=next(number), type=kind, **repeated)
    same = {**message, "type_name": ".fuzztest.AllTypes"}
    all_types.field.add(name="colour", number=next(number), **colour_type)
    all_types.field.add(name="child", number=next(number), **same)
    all_types.field.add(name="children", number=next(number), **same, **repeated)
    all_types.oneof_decl.add(name="choice")
    all_types.field.add(name="choice_text", number=next(number), type=F.TYPE_STRING, oneof_index=0)
    all_types.field.add(name="choice_child", number=next(number), oneof_index=0, **same)
    all_types.oneof_decl.add(name="_maybe")  # synthetic oneofs come after the real ones
    all_types.field.add(
        name="maybe", number=next(number), type=F.TYPE_INT32, oneof_index=1, proto3_optional=True
    )
    for entry_name, field_name, key, value in (
        ("ByIdEntry", "by_id", {"type": F.TYPE_INT64}, same),
        ("FlagsEntry", "flags", {"type": F.TYPE_BOOL}, {"type": F.TYPE_STRING}),
        ("ColoursEntry", "colours", {"type": F.TYPE_STRING}, colour_type),
    ):
        entry = all_types.nested_type.add(name=entry_name)
        entry.options.map_entry = True
        entry.field.add(name="key", number=1, **key)
        entry.field.add(name="value", number=2, **value)
        entry_type = {**message, "type_name": f".fuzztest.AllTypes.{entry_name}"}
        all_types.field.add(name=field_name, number=next(number), **entry_type, **repeated)
    pool.Add(proto3)

    proto2 = descriptor_pb2.FileDescriptorProto(
        name="fuzz_payloads_legacy.proto", package="fuzztest", syntax="proto2"
    )
    shade = proto2.enum_type.add(name="Shade")
    shade.value.add(name="SHADE_DARK", number=1)
    shade.value.add(name="SHADE_LIGHT", number=2)
    legacy = proto2.message_type.add(name="Legacy")
    shade_type = {"type": F.TYPE_ENUM, "type_name": ".fuzztest.Shade"}
    legacy.field.add(name="id", number=1, type=F.TYPE_INT32, label=F.LABEL_REQUIRED)
    legacy.field.add(name="name", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    legacy.field.add(name="shade", number=3, label=F.LABEL_OPTIONAL, **shade_type)
    legacy.field.add(name="shades", number=4, **shade_type, **repeated)
    pool.Add(proto2)

    return {
        descriptor.name: message_factory.GetMessageClass(descriptor)
        for file in ("fuzz_payloads_all.proto", "fuzz_payloads_legacy.proto")
        for descriptor in pool.FindFileByName(file).message_types_by_name.values()
    }


TEST_MESSAGES = _test_messages()
AllTypes, Tree, Shapes, Legacy = (
    TEST_MESSAGES[name] for name in ("AllTypes", "Tree", "Shapes", "Legacy")
)


def _one_class(name: str) -> type[Message]:
    """The message with one field, ``value``, of scalar type ``name``."""
    return TEST_MESSAGES[f"One{name.title()}"]


def _one(name: str) -> st.SearchStrategy[Any]:
    return messages(_one_class(name))


def _round_trips(message: Message) -> None:
    # Compared as bytes: a NaN field makes a message unequal to itself.
    data = message.SerializeToString(deterministic=True)
    assert len(data) < GRPC_LIMIT
    assert type(message).FromString(data).SerializeToString(deterministic=True) == data


def _depth(message: Message) -> int:
    """Levels of message nesting below ``message``; a map's message values count as one."""
    deepest = 0
    for field, value in message.ListFields():
        entry = field.message_type
        if entry is None:
            continue
        if entry.GetOptions().map_entry:
            if entry.fields_by_name["value"].message_type is None:
                continue
            children = list(value.values())
        else:
            children = list(value) if field.is_repeated else [value]
        for child in children:
            deepest = max(deepest, 1 + _depth(child))
    return deepest


def _strings(message: Message) -> list[str]:
    """Every string in ``message``, keys and values, at any depth."""
    found: list[str] = []
    for field, value in message.ListFields():
        values = (
            list(value.items())
            if field.message_type and field.message_type.GetOptions().map_entry
            else (list(value) if field.is_repeated else [value])
        )
        for item in values:
            for part in item if isinstance(item, tuple) else (item,):
                if isinstance(part, str):
                    found.append(part)
                elif isinstance(part, Message):
                    found.extend(_strings(part))
    return found


# -- valid on the wire ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", UNARY, ids=lambda m: m.name)
def test_every_hook_request_round_trips(method: Any) -> None:
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
        _round_trips(message)

    check()


@settings(max_examples=15, deadline=None)
@given(messages(AllTypes))
def test_a_wide_recursive_message_round_trips(message: Message) -> None:
    # Slow (tens of ms each): the top level has 30 fields and the nesting budget is spent.
    assert _depth(message) <= 3
    _round_trips(message)


@EXAMPLES
@given(messages(Legacy))
def test_a_closed_enum_gets_declared_values_only(message: Any) -> None:
    assert message.IsInitialized()  # the required field is always set
    assert {message.shade, *message.shades} <= {1, 2}


# -- the edges are reachable -----------------------------------------------------------------------


class _Quiet:
    """A drawn value with a short repr: find() reprs what it found, and a message of a MiB
    takes seconds to print."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"<{type(self.value).__name__}>"


def _reachable(strategy: st.SearchStrategy[Any], predicate: Callable[[Any], bool]) -> None:
    try:
        find(strategy.map(_Quiet), lambda quiet: predicate(quiet.value), settings=FIND)
    except NoSuchExample:  # pragma: no cover - the message says which edge
        pytest.fail(f"never drawn: {predicate.__doc__ or predicate}")


def _non_bmp(message: Message) -> bool:
    """a string with a character outside the BMP"""
    return any(ord(c) > 0xFFFF for text in _strings(message) for c in text)


def _long(message: Any) -> bool:
    """a string longer than the common case (maximal ones are rarer; see "maximal bytes")"""
    return any(len(text.encode()) > 1024 for text in _strings(message))


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
    "int32 -1": (_one("int32"), lambda m: m.value == -1),
    "sint32 min": (_one("sint32"), lambda m: m.value == -(2**31)),
    "sfixed32 min": (_one("sfixed32"), lambda m: m.value == -(2**31)),
    "sint64 max": (_one("sint64"), lambda m: m.value == 2**63 - 1),
    "sfixed64 min": (_one("sfixed64"), lambda m: m.value == -(2**63)),
    "uint64 max": (_one("uint64"), lambda m: m.value == 2**64 - 1),
    "fixed32 max": (_one("fixed32"), lambda m: m.value == 2**32 - 1),
    "fixed64 max": (_one("fixed64"), lambda m: m.value == 2**64 - 1),
    "bool": (_one("bool"), lambda m: m.value),
    "double nan": (_one("double"), lambda m: math.isnan(m.value)),
    "double -0.0": (_one("double"), lambda m: _negative_zero(m.value)),
    "double inf": (_one("double"), lambda m: m.value == math.inf),
    "double subnormal": (_one("double"), lambda m: 0 < abs(m.value) < 2.2250738585072014e-308),
    "float -inf": (_one("float"), lambda m: m.value == -math.inf),
    "float nan": (_one("float"), lambda m: math.isnan(m.value)),
    "float -0.0": (_one("float"), lambda m: _negative_zero(m.value)),
    "float subnormal": (_one("float"), lambda m: 0 < abs(m.value) < 1.1754943508222875e-38),
    "maximal bytes": (_one("bytes"), lambda m: len(m.value) == MAX_TEXT_SIZE),
    "NUL in a string": (_one("string"), lambda m: "\x00" in m.value),
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
    _reachable(*EDGES[edge])


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
    _reachable(strategy, lambda request: request.HasField("post"))


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
def test_overrides_apply_to_oneof_members_and_at_every_depth(tree: Any) -> None:
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
    one = messages(_one_class("string"), overrides={"value": never})
    assert find(one, lambda _: True, settings=FIND).value == "never"
    _reachable(
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
        assert _depth(message) <= max_depth
        _round_trips(message)

    check()
    _reachable(strategy, lambda m: _depth(m) == max_depth)


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
        _reachable(strategy, lambda pair, name=method.name: pair[0] == name)


def test_hook_requests_without_a_unary_hook_is_an_error() -> None:
    with pytest.raises(ValueError, match="no unary hook"):
        hook_requests(["ServeHTTP", "Implemented"])


@pytest.mark.parametrize("command", [c.strip() for c in REFERENCE_COMMANDS])
def test_commands_of_the_reference_plugin_are_drawn(command: str) -> None:
    _reachable(
        hook_requests(["ExecuteCommand"]),
        lambda pair: pair[1].command.partition(" ")[0] == command,
    )
