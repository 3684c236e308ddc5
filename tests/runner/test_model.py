"""What a case is (runner/model.py): ids, descriptions, families, and check() recording."""

from __future__ import annotations

import pytest

from pluginconf.runner.model import (
    CaseDefinitionError,
    CaseFailed,
    Description,
    Level,
    Profile,
    Violation,
    case,
    case_each,
    check,
    recording_checks,
)
from pluginconf.runner.registry import load_cases
from pluginconf.runner.spec import requirements


def test_every_case_is_described_and_cites_requirements_of_its_side():
    known = requirements()
    for c in load_cases("plugin"):
        assert c.description.purpose and c.description.procedure and c.description.asserts
        for rid in c.requirements:
            assert known[rid].binds in ("plugin", "both"), (c.id, rid)
        # A SHOULD case checks SHOULD requirements only; a MUST case at least one MUST.
        levels = {known[rid].level for rid in c.requirements}
        assert (c.level is Level.SHOULD) == (levels == {"SHOULD"}), (c.id, levels)


def test_case_definitions_are_checked():
    with pytest.raises(CaseDefinitionError, match="lacks Procedure, Asserts"):
        Description.parse("plugin/x", "Purpose: only this")
    with pytest.raises(CaseDefinitionError, match="not hierarchical"):

        @case("Plugin/Bad Id", requirements=["HS-1"], profile=Profile.TRANSPORT)
        async def bad(t):
            """
            Purpose: p
            Procedure: q
            Asserts: r
            """

    with pytest.raises(CaseDefinitionError, match="cites no requirement"):

        @case("plugin/x/none", requirements=[], profile=Profile.TRANSPORT)
        async def uncited(t):
            """
            Purpose: p
            Procedure: q
            Asserts: r
            """


def test_a_description_joins_its_sections_lines():
    parsed = Description.parse(
        "plugin/x",
        """
        Purpose: one
          and two.
        Procedure:
          Start it.
        Asserts: it ends.
        """,
    )
    assert parsed == Description("one and two.", "Start it.", "it ends.")


def test_a_family_makes_one_case_per_value_with_the_value_in_id_and_text():
    @case_each("plugin/x/size/{}", [0, 1024], requirements=["HL-1"], profile=Profile.SDK,
               heavy=lambda size: size > 0)  # fmt: skip
    async def sized(t, size):
        """
        Purpose: sends {value} bytes.
        Procedure: p
        Asserts: a
        """

    small, large = sized.cases
    assert (small.id, large.id) == ("plugin/x/size/0", "plugin/x/size/1024")
    assert large.description.purpose == "sends 1024 bytes."
    assert (small.heavy, large.heavy) == (False, True)
    assert small.suite == "plugin" and small.source[1] > 0


def test_check_records_and_goes_on_inside_a_case_and_raises_outside():
    with recording_checks() as recorded:
        assert check(True, "fine")
        assert not check(False, "first", requirement="CT-3")
        assert not check(0, "second", requirement=["CT-3", "CT-10"])
    assert recorded == [Violation("first", ("CT-3",)), Violation("second", ("CT-3", "CT-10"))]
    with pytest.raises(CaseFailed, match="outside") as raised:
        check(False, "outside", requirement="HL-1")
    assert raised.value.requirements == ("HL-1",)
