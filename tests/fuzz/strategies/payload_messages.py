"""Test-only protobuf messages (built from descriptors at import) and what the payload tests
ask of a drawn message: that it round-trips, how deep it nests, which strings it holds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message
from hypothesis import Phase, find, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample

from pluginconf.fuzz.strategies.payloads import messages

GRPC_LIMIT = 4 * 1024 * 1024
# Reachability: the first hit is enough (no shrinking), and the same examples on every run.
FIND = settings(
    max_examples=1000, deadline=None, database=None, phases=[Phase.generate], derandomize=True
)


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


def one_class(name: str) -> type[Message]:
    """The message with one field, ``value``, of scalar type ``name``."""
    return TEST_MESSAGES[f"One{name.title()}"]


def one(name: str) -> st.SearchStrategy[Any]:
    return messages(one_class(name))


def round_trips(message: Message) -> None:
    # Compared as bytes: a NaN field makes a message unequal to itself.
    data = message.SerializeToString(deterministic=True)
    assert len(data) < GRPC_LIMIT
    assert type(message).FromString(data).SerializeToString(deterministic=True) == data


def depth(message: Message) -> int:
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
            deepest = max(deepest, 1 + depth(child))
    return deepest


def strings(message: Message) -> list[str]:
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
                    found.extend(strings(part))
    return found


class _Quiet:
    """A drawn value with a short repr: find() reprs what it found, and a message of a MiB
    takes seconds to print."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"<{type(self.value).__name__}>"


def reachable(strategy: st.SearchStrategy[Any], predicate: Callable[[Any], bool]) -> None:
    try:
        find(strategy.map(_Quiet), lambda quiet: predicate(quiet.value), settings=FIND)
    except NoSuchExample:  # pragma: no cover - the message says which edge
        pytest.fail(f"never drawn: {predicate.__doc__ or predicate}")
