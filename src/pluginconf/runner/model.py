"""What a conformance case is, and what running one can come to.

A case is data: a stable id, the requirements it checks, a level, the profile it belongs to,
a Purpose / Procedure / Asserts description, and a procedure (an async function given the
target). Cases are made with :func:`case` or :func:`case_each` in the modules of
``pluginconf.conformance``; the runner finds them there (registry.py) and runs them
(engine.py). A procedure proves a failure by raising :class:`CaseFailed` (through
:func:`expect` or :func:`fail`), records one and goes on with :func:`check`, and declares a
case not applicable by raising :class:`CaseSkipped`.

Each failure may name the requirement it proves broken (``requirement="CT-3"``), one of
those the case cites; a failure that names none breaks all of them. Targets judge a failure
by the origins of the requirements it breaks (verdict.py).
"""

from __future__ import annotations

import contextlib
import enum
import re
import textwrap
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Generic, NoReturn, TypeVar

T = TypeVar("T")
Procedure = Callable[[Any], Awaitable[None]]

_ID = re.compile(r"^(plugin|host)(/[a-z0-9][a-z0-9.-]*)+$")
_SECTIONS = ("Purpose", "Procedure", "Asserts")


class Level(enum.StrEnum):
    """How strongly a case's requirements bind; only MUST failures fail a run."""

    MUST = "MUST"
    SHOULD = "SHOULD"


class Profile(enum.StrEnum):
    """Which plugins a case applies to. Profiles nest: sdk includes hooks includes transport."""

    TRANSPORT = "transport"  # any go-plugin gRPC plugin
    HOOKS = "hooks"  # any plugin of the pluginconf.v1 hooks protocol
    SDK = "sdk"  # the conformance plugin (docs/reference-plugin.md), byte for byte

    @property
    def rank(self) -> int:
        return list(Profile).index(self)

    def includes(self, other: Profile) -> bool:
        return other.rank <= self.rank


class Outcome(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    XFAILED = "xfailed"  # listed as known failing, and failed
    XPASSED = "xpassed"  # listed as known failing, but passed: fails the run
    ERROR = "error"  # the suite itself went wrong; the message has the traceback
    # Failed, but only requirements that do not decide the run under the target broke:
    # SHOULD requirements, or (under a go-plugin application's target) pluginconf's own.
    NOT_MET = "not_met"


Requirements = str | Sequence[str]


def _ids(requirement: Requirements) -> tuple[str, ...]:
    return (requirement,) if isinstance(requirement, str) else tuple(requirement)


@dataclass(frozen=True)
class Violation:
    """One failed assertion: its evidence, and the requirements it proves broken (empty:
    every requirement the case cites)."""

    evidence: str
    requirements: tuple[str, ...] = ()


class CaseFailed(Exception):
    """The target broke the case's requirements; the message is the evidence."""

    def __init__(self, evidence: str, requirements: Requirements = ()) -> None:
        super().__init__(evidence)
        self.requirements = _ids(requirements)


class CaseSkipped(Exception):
    """The case does not apply to this target; the message says why."""


class CaseDefinitionError(Exception):
    """A case is defined wrongly (bad id, missing description); a defect of the suite."""


# The failures check() recorded in the running case; None outside a case (engine.py sets it).
_RECORDED: ContextVar[list[Violation] | None] = ContextVar("pluginconf_checks", default=None)


def expect(condition: object, evidence: str, *, requirement: Requirements = ()) -> None:
    """Fail the case with ``evidence`` unless ``condition`` holds; the case stops here."""
    if not condition:
        raise CaseFailed(evidence, requirement)


def fail(evidence: str, *, requirement: Requirements = ()) -> NoReturn:
    raise CaseFailed(evidence, requirement)


def check(condition: object, evidence: str, *, requirement: Requirements = ()) -> bool:
    """Like :func:`expect`, but the case goes on: the failure is recorded and reported with
    any others when the case ends. For assertions whose failure leaves the rest meaningful.
    Outside a running case (no recorder) it fails at once, as expect does."""
    if condition:
        return True
    recorded = _RECORDED.get()
    if recorded is None:
        raise CaseFailed(evidence, requirement)
    recorded.append(Violation(evidence, _ids(requirement)))
    return False


@contextlib.contextmanager
def recording_checks() -> Iterator[list[Violation]]:
    """Collect what :func:`check` records in this context (tasks it starts share the list)."""
    recorded: list[Violation] = []
    token = _RECORDED.set(recorded)
    try:
        yield recorded
    finally:
        _RECORDED.reset(token)


def skip(reason: str) -> NoReturn:
    raise CaseSkipped(reason)


@dataclass(frozen=True)
class Description:
    purpose: str
    procedure: str
    asserts: str

    @classmethod
    def parse(cls, case_id: str, docstring: str | None) -> Description:
        """Split a Purpose / Procedure / Asserts docstring into its three sections."""
        text = textwrap.dedent(docstring or "").strip()
        found: dict[str, list[str]] = {}
        current: list[str] | None = None
        for line in text.splitlines():
            head, sep, rest = line.partition(":")
            if sep and head.strip() in _SECTIONS and not line.startswith(" "):
                current = found.setdefault(head.strip(), [])
                if rest.strip():
                    current.append(rest.strip())
            elif current is not None:
                current.append(line.strip())
        missing = [s for s in _SECTIONS if not found.get(s)]
        if missing:
            raise CaseDefinitionError(
                f"case {case_id}: its docstring lacks {', '.join(missing)}; write it as "
                "'Purpose: ...', 'Procedure: ...', 'Asserts: ...'"
            )
        parts = (" ".join(" ".join(found[s]).split()) for s in _SECTIONS)
        return cls(*parts)


@dataclass(frozen=True)
class Case:
    id: str
    requirements: tuple[str, ...]
    level: Level
    profile: Profile
    description: Description
    procedure: Procedure
    timeout_s: float = 60.0
    # "Heavy" cases move large amounts of data; `--max-body` bounds them.
    heavy: bool = False
    # Where the procedure is written (file, first line): reports point there.
    source: tuple[str, int] = ("", 0)

    def __post_init__(self) -> None:
        if not _ID.match(self.id):
            raise CaseDefinitionError(
                f"case id {self.id!r} is not hierarchical lower-case words separated by '/', "
                "starting with plugin/ or host/"
            )
        if not self.requirements:
            raise CaseDefinitionError(f"case {self.id}: cites no requirement")

    @property
    def suite(self) -> str:
        return self.id.split("/", 1)[0]


def _source(procedure: Callable[..., Any]) -> tuple[str, int]:
    code = getattr(procedure, "__code__", None)
    return (code.co_filename, code.co_firstlineno) if code is not None else ("", 0)


def case(
    case_id: str,
    *,
    requirements: Sequence[str],
    profile: Profile,
    level: Level = Level.MUST,
    timeout_s: float = 60.0,
    heavy: bool = False,
) -> Callable[[Procedure], Case]:
    """Make a case of an async procedure whose docstring is its description."""

    def make(procedure: Procedure) -> Case:
        return Case(
            id=case_id,
            requirements=tuple(requirements),
            level=level,
            profile=profile,
            description=Description.parse(case_id, procedure.__doc__),
            procedure=procedure,
            timeout_s=timeout_s,
            heavy=heavy,
            source=_source(procedure),
        )

    return make


@dataclass(frozen=True)
class CaseFamily(Generic[T]):
    """One procedure run over a table of values: one case per value, ``{}`` in id and docs."""

    cases: tuple[Case, ...]


def case_each(
    id_template: str,
    values: Iterable[T],
    *,
    requirements: Sequence[str],
    profile: Profile,
    level: Level = Level.MUST,
    timeout_s: float = 60.0,
    heavy: Callable[[T], bool] = lambda _: False,
) -> Callable[[Callable[[Any, T], Awaitable[None]]], CaseFamily[T]]:
    """Make one case per value; the procedure takes the target and the value."""

    def make(procedure: Callable[[Any, T], Awaitable[None]]) -> CaseFamily[T]:
        made = []
        for value in values:
            case_id = id_template.format(value)
            doc = (procedure.__doc__ or "").replace("{value}", str(value))

            async def bound(target: Any, _value: T = value) -> None:
                await procedure(target, _value)

            made.append(
                Case(
                    id=case_id,
                    requirements=tuple(requirements),
                    level=level,
                    profile=profile,
                    description=Description.parse(case_id, doc),
                    procedure=bound,
                    timeout_s=timeout_s,
                    heavy=heavy(value),
                    source=_source(procedure),
                )
            )
        return CaseFamily(tuple(made))

    return make
