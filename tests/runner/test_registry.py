"""Choosing cases (runner/registry.py): profiles, --run and --skip globs, and usage errors."""

from __future__ import annotations

import pytest

from pluginconf.runner.model import Case, Profile, case
from pluginconf.runner.registry import Selection, SelectionError, load_cases, no_match_message

CASES = load_cases("plugin")


def _case(case_id: str, profile: Profile) -> Case:
    @case(case_id, requirements=["HL-1"], profile=profile)
    async def made(t):
        """
        Purpose: p
        Procedure: q
        Asserts: r
        """

    return made


SMALL = [
    _case("plugin/handshake/a", Profile.TRANSPORT),
    _case("plugin/hooks/b", Profile.HOOKS),
    _case("plugin/sdk/echo/0", Profile.SDK),
    _case("plugin/sdk/echo/16", Profile.SDK),
]


def _ids(selection: Selection) -> list[str]:
    return [c.id for c in selection.apply(SMALL)]


def test_profiles_nest_and_selection_rejects_a_pattern_that_matches_nothing():
    transport = Selection(Profile.TRANSPORT).apply(CASES)
    hooks = Selection(Profile.HOOKS).apply(CASES)
    sdk = Selection(Profile.SDK).apply(CASES)
    assert set(transport) < set(hooks) < set(sdk) == set(CASES)
    assert {c.profile for c in transport} == {Profile.TRANSPORT}
    chosen = Selection(Profile.SDK, run=("plugin/sdk/echo/*",), skip=("*/16777216",)).apply(CASES)
    assert "plugin/sdk/echo/0" in [c.id for c in chosen]
    assert "plugin/sdk/echo/16777216" not in [c.id for c in chosen]
    with pytest.raises(SelectionError, match="matches no case"):
        Selection(Profile.SDK, run=("plugin/sdk/ecko/*",)).apply(CASES)


def test_a_profile_selects_its_cases_and_those_of_the_profiles_it_includes():
    assert _ids(Selection(Profile.TRANSPORT)) == ["plugin/handshake/a"]
    assert _ids(Selection(Profile.HOOKS)) == ["plugin/handshake/a", "plugin/hooks/b"]
    assert _ids(Selection(Profile.SDK)) == [c.id for c in SMALL]


def test_run_and_skip_are_globs_where_star_crosses_slashes_and_skip_wins():
    assert _ids(Selection(Profile.SDK, run=("plugin/*/0",))) == ["plugin/sdk/echo/0"]
    assert _ids(Selection(Profile.SDK, run=("*b", "*a"))) == [
        "plugin/handshake/a",
        "plugin/hooks/b",
    ]
    assert _ids(Selection(Profile.SDK, skip=("plugin/sdk/*",))) == [
        "plugin/handshake/a",
        "plugin/hooks/b",
    ]
    both = Selection(Profile.SDK, run=("plugin/sdk/*",), skip=("*/16",))
    assert _ids(both) == ["plugin/sdk/echo/0"]
    # --run of a case outside the profile is no error, and selects nothing of it.
    assert _ids(Selection(Profile.TRANSPORT, run=("plugin/sdk/*",))) == []


def test_a_skip_pattern_that_matches_nothing_is_an_error_too():
    with pytest.raises(SelectionError, match="pattern 'plugin/nope' matches no case"):
        Selection(Profile.SDK, skip=("plugin/nope",)).apply(SMALL)


def test_no_match_says_what_might_have_been_meant():
    ids = [c.id for c in SMALL]
    close = no_match_message("plugin/hooks/c", ids)
    assert "matches no case of the plugin suite; did you mean 'plugin/hooks/b'?" in close
    assert "`pluginconf list plugin` shows its ids" in close and "'plugin/handshake/*'" in close
    other = no_match_message("host/crash/*", ids)
    assert "(host/... ids are the host suite's)" in other and "did you mean" not in other
    assert no_match_message("x", []) == "pattern 'x' matches no case"


def test_an_unknown_suite_is_a_selection_error():
    with pytest.raises(SelectionError, match="unknown suite 'plugins'; expected one of plugin"):
        load_cases("plugins")
