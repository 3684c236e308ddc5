"""Running properties under Hypothesis: settings, seed, database, and what a failure left.

A property's run comes to a :class:`Result`, the record conformance cases have too; a failure
keeps what Hypothesis reported for the shrunk example (the failing call, or a state
machine's steps) and its reproduction blob; ``reproduce`` rebuilds the exact example
from the blob, without the database or the seed.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace
from typing import Any

import hypothesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis.core import decode_failure
from hypothesis.errors import DidNotReproduce
from hypothesis.reporting import with_reporter

from pluginconf.fuzz.context import FuzzContext
from pluginconf.fuzz.database import open_database
from pluginconf.fuzz.model import FuzzProperty, PropertyNotApplicable
from pluginconf.runner.model import Outcome
from pluginconf.runner.reports.result import Result

_VERSION = re.compile(r"\d+(\.\d+)*")
_BLOB = re.compile(r"@reproduce_failure\('([^']+)', b'([^']*)'\)")


@dataclass(frozen=True)
class CampaignSettings:
    examples: int = 100
    seed: int | None = None
    database: str | None = None  # a directory or a redis:// URL; None: no database
    reproduce: str | None = None  # a blob from an earlier failure
    # Hypothesis's own knobs for long campaigns; tests shrink less to stay fast.
    shrink: bool = True
    # True: every property runs ``examples`` (an explicit --examples N); False: the costly
    # ones run their share of it (the default campaign).
    exact: bool = False

    def examples_of(self, prop: FuzzProperty) -> int:
        return self.examples if self.exact else prop.examples(self.examples)


def hypothesis_settings(prop: FuzzProperty, run: CampaignSettings) -> settings:
    phases = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target]
    if run.shrink:
        phases.append(Phase.shrink)
    return settings(
        max_examples=run.examples_of(prop),
        database=open_database(run.database),
        deadline=None,  # the properties bound their own waits
        print_blob=True,
        report_multiple_bugs=False,
        phases=phases,
        # Examples run real processes: slow generation and large data are expected.
        suppress_health_check=list(HealthCheck),
        **prop.settings,
    )


def run_property(prop: FuzzProperty, ctx: FuzzContext, run: CampaignSettings) -> Result:
    """Run one property on ``ctx``'s target: the examples it ran, and its failure, if any."""
    failure: Result | None = None
    notes: list[str] = []
    reported: list[str] = []
    before = ctx.examples
    start = time.monotonic()
    try:
        test = prop.build(ctx)
        # The database keys examples by the test function: make the key the property's id.
        handle: Any = test
        inner = handle.hypothesis.inner_test
        inner._hypothesis_internal_add_digest = prop.full_id.encode()
        if run.seed is not None:
            test = hypothesis.seed(run.seed)(test)
        if run.reproduce:
            version, blob = _split_blob(run.reproduce)
            test = hypothesis.reproduce_failure(version, blob.encode())(test)
        # Settings last: @seed turns the database off, and the campaign's settings (with
        # the database of --db) replace the settings it left.
        test = hypothesis_settings(prop, run)(test)
        # Hypothesis reports a replayed example here rather than in the exception's notes.
        with with_reporter(lambda value: reported.append(str(value))):
            test()
    except DidNotReproduce:
        notes.append("the example no longer fails: it passed when replayed")
    except PropertyNotApplicable as exc:
        notes.append(f"not applicable: {exc}")
    except Exception as exc:  # PropertyFailed, a Hypothesis error, or anything the target raised
        failure = _failure(prop, exc, reported)
    return replace(
        failure or Result(prop.full_id, Outcome.PASSED),
        examples=ctx.examples - before,
        duration_s=time.monotonic() - start,
        seed=run.seed,
        notes=tuple(notes),
    )


def check_reproduce_blob(text: str) -> None:
    """A --reproduce argument Hypothesis can replay here; ValueError (a usage error) saying
    what one looks like and where it comes from otherwise."""
    version, blob = _split_blob(text)
    where = (
        "expected HYPOTHESIS_VERSION:BASE64, as a failure prints it in its 'Reproduce' "
        "command (--property ID --reproduce VERSION:BLOB), together with that --property"
    )
    if not _VERSION.fullmatch(version):
        raise ValueError(f"--reproduce {text!r} is not a reproduce blob; {where}")
    if version != hypothesis.__version__:
        raise ValueError(
            f"--reproduce {text!r}: the example was recorded by Hypothesis {version!r}, and "
            f"this installation has {hypothesis.__version__}: replay it with that version of "
            "Hypothesis"
        )
    try:
        decode_failure(blob.encode())
    except Exception:  # InvalidArgument, or whatever a blob of nonsense makes it raise
        raise ValueError(f"--reproduce {text!r} is not a reproduce blob; {where}") from None


def _split_blob(text: str) -> tuple[str, str]:
    """``VERSION:BLOB`` as printed in a reproduce command; a bare blob means this version."""
    version, sep, blob = text.partition(":")
    return (version, blob) if sep else (hypothesis.__version__, text)


def _failure(prop: FuzzProperty, exc: BaseException, reported: list[str]) -> Result:
    """The failed result ``exc`` makes: its evidence, the shrunk example and its blob."""
    exc, wrapper_notes, flaky = _unwrap(exc)
    notes: list[str] = [*getattr(exc, "__notes__", []), *wrapper_notes] or reported
    blob = ""
    example_notes = []
    for note in notes:
        found = _BLOB.search(note)
        if found:
            blob = f"{found.group(1)}:{found.group(2)}"
        elif note.strip():
            example_notes.append(note.strip())
    # A PropertyFailed (an AssertionError) is its own evidence; anything else is named.
    message = str(exc) if isinstance(exc, AssertionError) else f"{type(exc).__name__}: {exc}"
    if flaky:
        message = f"{message}\n\n{flaky}"
    return Result(
        prop.full_id, Outcome.FAILED, message, example="\n".join(example_notes), blob=blob
    )


def _unwrap(exc: BaseException) -> tuple[BaseException, list[str], str]:
    """The failure a wrapper holds, the wrapper's notes, and what the wrapper said.

    When a replay of the failing example does not fail again, Hypothesis raises a group
    (FlakyFailure) holding the failures it saw: the evidence is the first of them."""
    notes: list[str] = []
    said = ""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        notes += list(getattr(exc, "__notes__", []))
        said = said or f"{type(exc).__name__}: {exc.message}"
        exc = exc.exceptions[0]
    return exc, notes, said
