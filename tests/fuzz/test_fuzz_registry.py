"""The fuzz registry: every property's SPEC ids are checked when the properties are loaded."""

from __future__ import annotations

import pytest

from pluginconf.fuzz.model import FuzzProperty, FuzzTarget
from pluginconf.fuzz.registry import PropertyDefinitionError, check_properties, load_properties


def _property(
    requirements: tuple[str, ...], target: FuzzTarget = FuzzTarget.PLUGIN
) -> FuzzProperty:
    return FuzzProperty("test/cites", target, "", requirements, lambda _: lambda: None)


@pytest.mark.parametrize("target", list(FuzzTarget))
def test_every_property_cites_requirements_of_its_target(target: FuzzTarget) -> None:
    assert load_properties(target)  # checked on loading


def test_a_requirement_spec_md_lacks_is_refused() -> None:
    with pytest.raises(
        PropertyDefinitionError, match=r"plugin/test/cites cites XX-99, which SPEC\.md lacks"
    ):
        check_properties([_property(("HK-14", "XX-99"))])


def test_a_requirement_of_the_other_side_is_refused() -> None:
    with pytest.raises(
        PropertyDefinitionError, match=r"cites SV-9, a host requirement, for a plugin"
    ):
        check_properties([_property(("SV-9",))])


def test_a_property_defined_twice_is_refused() -> None:
    with pytest.raises(PropertyDefinitionError, match="defined twice"):
        check_properties([_property(("HK-14",)), _property(("HK-14",))])
