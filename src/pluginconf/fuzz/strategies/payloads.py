"""Strategies for protobuf messages, derived from their descriptors.

The hook request messages grow fields; a strategy read from ``DESCRIPTOR`` covers a new field
the day it is added, with the values that break decoders and handlers: integers at their
bounds, NaN, infinities and subnormal floats, non-BMP text, unknown enum numbers, empty and
maximal strings, long lists, map entries and set oneofs. Everything shrinks to the unset or
empty message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, cast

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, OneofDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

from pluginconf.fuzz.strategies.scalars import (
    BIG,
    FEW,
    MANY,
    MAX_TEXT_SIZE,
    RARE,
    SCALARS,
    SMALL_TEXT,
    STRING_KIND,
    draw_bytes,
    draw_text,
    enums,
    is_map,
    is_message,
    texts,
)
from pluginconf.v1 import hooks_pb2

M = TypeVar("M", bound=Message)

#: Soft cap on one message's encoded size; gRPC's default receive limit is 4 MiB.
MAX_MESSAGE_SIZE = 1024 * 1024
#: Values drawn inside the nested messages of one message; past it, their remaining fields are
#: left unset, so that a wide recursive message stays within what Hypothesis can draw (8 Ki
#: choices) and fast. The top-level message's own fields are always drawn.
MAX_NESTED_VALUES = 64
#: Maximal strings or bytes in one message.
MAX_BIG_VALUES = 1

#: Commands of the reference plugin; ExecuteCommandRequest.command sometimes starts with one.
REFERENCE_COMMANDS = (
    "/echo ",
    "/lifecycle",
    "/posts",
    "/config",
    "/print ",
    "/kv ",
    "/hostconfig",
    "/log ",
)

_F = FieldDescriptor

# -- messages --------------------------------------------------------------------------------


class _Builder:
    """Draws messages' fields, keeping each top-level message's size under the cap."""

    def __init__(self, overrides: Mapping[str, st.SearchStrategy[Any]], max_depth: int) -> None:
        self.overrides = overrides
        self.max_depth = max_depth
        self.remaining = MAX_MESSAGE_SIZE
        self.values_left = MAX_NESTED_VALUES
        self.bigs_left = MAX_BIG_VALUES
        # Strategies are made once per builder: a new one costs a validation on first draw.
        self._strategies: dict[tuple[Any, ...], st.SearchStrategy[Any]] = {}

    def cached(
        self, key: tuple[Any, ...], make: Callable[[], st.SearchStrategy[Any]]
    ) -> st.SearchStrategy[Any]:
        if (strategy := self._strategies.get(key)) is None:
            strategy = self._strategies[key] = make()
        return strategy

    def fields(self, draw: st.DrawFn, descriptor: Descriptor, depth: int) -> dict[str, Any]:
        values: dict[str, Any] = {}
        seen_oneofs: set[str] = set()
        for field in descriptor.fields:
            oneof = field.containing_oneof
            if oneof is None:
                value = self.field(draw, field, depth)
            elif oneof.name in seen_oneofs or (depth > 0 and self.values_left <= 0):
                continue
            else:
                # One draw for the whole oneof, none first; a proto3 optional field is a
                # oneof of one, so this covers its presence too.
                seen_oneofs.add(oneof.name)
                member = draw(self.members(oneof, depth))
                if member is None:
                    continue
                field, value = member, self.value(draw, member, depth)
            if value is not None:
                values[field.name] = value
        return values

    def members(self, oneof: OneofDescriptor, depth: int) -> st.SearchStrategy[Any]:
        """None, or one of the oneof's fields that may be set at ``depth``."""

        def make() -> st.SearchStrategy[Any]:
            members = [field for field in oneof.fields if self.reachable(field, depth)]
            return st.none() | st.sampled_from(members) if members else st.none()

        return self.cached(("oneof", oneof.full_name, depth), make)

    def reachable(self, field: FieldDescriptor, depth: int) -> bool:
        """Whether ``field`` may be set at ``depth``: a message below max_depth is left unset."""
        if self.override(field) is not None or field.is_required:
            return True
        if is_map(field):
            assert field.message_type is not None
            field = field.message_type.fields_by_name["value"]
        return not is_message(field) or depth < self.max_depth

    def override(self, field: FieldDescriptor) -> st.SearchStrategy[Any] | None:
        return self.overrides.get(field.full_name, self.overrides.get(field.name))

    def field(self, draw: st.DrawFn, field: FieldDescriptor, depth: int) -> Any:
        if not self.reachable(field, depth):
            return None
        if depth > 0 and self.values_left <= 0 and not field.is_required:
            return None
        if (override := self.override(field)) is not None:
            return draw(override)
        if is_map(field):
            return self.map(draw, field, depth)
        if field.is_repeated:
            return self.repeated(draw, field, depth)
        if field.has_presence and not field.is_required and not draw(st.booleans()):
            return None
        return self.value(draw, field, depth)

    def value(
        self, draw: st.DrawFn, field: FieldDescriptor, depth: int, *, overridable: bool = True
    ) -> Any:
        """One value of ``field`` (an element, for a repeated field), ignoring presence."""
        if depth > 0:
            self.values_left -= 1
        override = self.override(field) if overridable and not field.is_repeated else None
        if override is not None:
            return draw(override)
        if is_message(field):
            assert field.message_type is not None
            cls = message_factory.GetMessageClass(field.message_type)
            message = cls(**self.fields(draw, field.message_type, depth + 1))
            self.remaining -= 2
            return message
        if field.type in (_F.TYPE_STRING, _F.TYPE_BYTES):
            kind = draw(STRING_KIND)
            if kind == BIG:
                if self.bigs_left > 0 and self.remaining >= 2 * MAX_TEXT_SIZE:
                    self.bigs_left -= 1
                else:
                    kind = 0
            if field.type == _F.TYPE_STRING:
                text = draw_text(draw, kind)
                self.remaining -= len(text.encode()) + 2
                return text
            data = draw_bytes(draw, kind)
            self.remaining -= len(data) + 2
            return data
        self.remaining -= 11  # the longest varint, and a tag
        if field.type == _F.TYPE_ENUM:
            return draw(self.cached(("enum", field.full_name), lambda: enums(field)))
        return draw(SCALARS[field.type])

    def elements(
        self, field: FieldDescriptor, depth: int, *, overridable: bool = True
    ) -> st.SearchStrategy[Any]:
        key = ("element", field.full_name, depth, overridable)
        return self.cached(key, lambda: _element(self, field, depth, overridable))

    def repeated(self, draw: st.DrawFn, field: FieldDescriptor, depth: int) -> list[Any]:
        elements = self.elements(field, depth)
        key = ("list", field.full_name, depth)
        if self.remaining <= 0 or not draw(RARE):
            return draw(self.cached((*key, 0), lambda: st.lists(elements, max_size=FEW)))
        # Many: a few drawn elements, repeated; as many as the size budget allows.
        before = self.remaining
        base = draw(self.cached((*key, 1), lambda: st.lists(elements, min_size=1, max_size=FEW)))
        each = max(1, (before - self.remaining) // len(base))
        count = draw(MANY)
        count = min(count, len(base) + max(0, self.remaining) // each)
        self.remaining -= (count - len(base)) * each
        return [base[i % len(base)] for i in range(count)]

    def map(self, draw: st.DrawFn, field: FieldDescriptor, depth: int) -> dict[Any, Any]:
        assert field.message_type is not None
        key_field = field.message_type.fields_by_name["key"]
        keys = SMALL_TEXT if key_field.type == _F.TYPE_STRING else SCALARS[key_field.type]
        # An entry's "value" is no field of the user's: overrides of "value" are not for it.
        values = self.elements(field.message_type.fields_by_name["value"], depth, overridable=False)
        key = ("map", field.full_name, depth)
        if key_field.type == _F.TYPE_BOOL or self.remaining <= 0 or not draw(RARE):
            return draw(self.cached((*key, 0), lambda: st.dictionaries(keys, values, max_size=FEW)))
        # Many entries: distinct made-up keys ("0", "1", ... or 0, 1, ...), the drawn values.
        before = self.remaining
        base = draw(
            self.cached((*key, 1), lambda: st.dictionaries(keys, values, min_size=1, max_size=FEW))
        )
        each = max(1, (before - self.remaining) // len(base)) + 8
        count = draw(MANY)
        count = min(count, len(base) + max(0, self.remaining) // each)
        made: Callable[[int], Any] = str if key_field.type == _F.TYPE_STRING else int
        entries = dict(base)
        drawn = list(base.values())
        index = 0
        while len(entries) < count:
            entries.setdefault(made(index), drawn[index % len(drawn)])
            index += 1
        self.remaining -= (count - len(base)) * each
        return entries


# Module level: st.composite inspects its function once, which takes milliseconds.
@st.composite
def _element(
    draw: st.DrawFn, builder: _Builder, field: FieldDescriptor, depth: int, overridable: bool
) -> Any:
    return builder.value(draw, field, depth, overridable=overridable)


def messages(
    message_class: type[M],
    *,
    overrides: Mapping[str, st.SearchStrategy[Any]] | None = None,
    max_depth: int = 3,
) -> st.SearchStrategy[M]:
    """Messages of ``message_class``, every field drawn from its descriptor.

    ``overrides`` maps a field's full name ("pluginconf.v1.ExecuteCommandRequest.command") or
    plain name ("command", any message at any depth) to a strategy for its value: for a
    repeated field, the list; for a map, the dict; None leaves the field unset. The full name
    wins. Names that match no field are ignored, so one mapping can serve several messages.

    Message fields nested deeper than ``max_depth`` are left unset, which ends recursion; so
    are nested messages' fields once MAX_NESTED_VALUES values have been drawn below the top
    level, and the encoded size stays near MAX_MESSAGE_SIZE at most.
    """
    if max_depth < 0:
        raise ValueError(f"max_depth must be >= 0, not {max_depth}")
    chosen = dict(overrides or {})
    # The stubs also allow upb's Descriptor type, which has the same attributes.
    descriptor = cast(Descriptor, message_class.DESCRIPTOR)

    builder = _Builder(chosen, max_depth)

    @st.composite
    def build(draw: st.DrawFn) -> M:
        # Fresh budgets; restored after, in case this strategy is drawn inside itself.
        saved = builder.remaining, builder.values_left, builder.bigs_left
        builder.remaining = MAX_MESSAGE_SIZE
        builder.values_left, builder.bigs_left = MAX_NESTED_VALUES, MAX_BIG_VALUES
        try:
            return message_class(**builder.fields(draw, descriptor, 0))
        finally:
            builder.remaining, builder.values_left, builder.bigs_left = saved

    return build()


# -- hooks -----------------------------------------------------------------------------------


def _command_line(command: str, rest: str) -> str:
    if command.endswith(" ") or not rest:
        return command + rest
    return f"{command} {rest}"


#: Command lines: any text, or a reference plugin command with arguments.
command_lines = texts() | st.builds(_command_line, st.sampled_from(REFERENCE_COMMANDS), texts())

_HOOK_OVERRIDES = {"pluginconf.v1.ExecuteCommandRequest.command": command_lines}


def hook_requests(hooks: Sequence[str]) -> st.SearchStrategy[tuple[str, Message]]:
    """(hook name, request) for the unary hooks of pluginconf.v1.Hooks named in ``hooks``.

    ServeHTTP (streaming), Implemented and names the service does not have are skipped, so
    a plugin's Implemented() list can be passed as it is; ValueError if none is left.
    """
    service = hooks_pb2.DESCRIPTOR.services_by_name["Hooks"]
    unary = {
        method.name: method
        for method in service.methods
        if not (method.client_streaming or method.server_streaming) and method.name != "Implemented"
    }
    names = [name for name in dict.fromkeys(hooks) if name in unary]
    if not names:
        raise ValueError(f"no unary hook among {list(hooks)!r}; known: {sorted(unary)}")
    return st.one_of(
        [
            st.tuples(
                st.just(name),
                messages(
                    message_factory.GetMessageClass(unary[name].input_type),
                    overrides=_HOOK_OVERRIDES,
                ),
            )
            for name in names
        ]
    )
