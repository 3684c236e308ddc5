"""The one result record of cases and fuzz properties survives its trip as JSON."""

from __future__ import annotations

import json

from pluginconf.runner.model import Outcome
from pluginconf.runner.reports.result import Result


def test_a_case_result_and_a_fuzz_result_come_back_from_json_unchanged() -> None:
    case = Result("plugin/x/y", Outcome.NOT_MET, "slow", 0.25, ("HS-9",), "go-plugin")
    share = Result(
        "plugin/serve-http/echo-roundtrip",
        Outcome.FAILED,
        "evidence",
        1.5,
        examples=77,
        seed=3,
        example="echo_roundtrip(...)",
        blob="6.1.0:AXic",
        reproduce="pluginconf fuzz plugin --property ...",
        notes=("a note",),
    )
    for result in (case, share, Result("host/a/b", Outcome.PASSED)):
        assert Result.from_json(json.loads(json.dumps(result.to_json()))) == result
