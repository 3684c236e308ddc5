"""The one check of cited SPEC ids that the case registry and the fuzz registry both make."""

from __future__ import annotations

from pluginconf.runner.spec import citation_problem


def test_ids_that_exist_and_bind_the_side_or_both_are_accepted() -> None:
    assert citation_problem("case plugin/x", ("HS-9", "TR-10"), "plugin") is None
    assert citation_problem("case host/x", ("HS-1", "TR-10"), "host") is None
    assert citation_problem("case host/x", (), "host") is None


def test_an_id_spec_md_lacks_is_named_with_who_cites_it() -> None:
    problem = citation_problem("fuzz property plugin/a/b", ("HS-9", "XX-99"), "plugin")
    assert (
        problem
        == "fuzz property plugin/a/b cites XX-99, which SPEC.md lacks; cite ids of docs/SPEC.md"
    )


def test_an_id_of_the_other_side_says_which_side_it_binds_and_what_is_expected() -> None:
    problem = citation_problem("case plugin/x", ("HS-1",), "plugin")
    assert problem == (
        "case plugin/x cites HS-1, a host requirement, for a plugin; cite requirements that "
        "bind the plugin (or both sides)"
    )


def test_the_first_problem_is_the_one_told() -> None:
    problem = citation_problem("case host/x", ("HS-9", "XX-1"), "host")
    assert problem is not None and "HS-9, a plugin requirement" in problem
