"""received(): a fake's recorded request as the message it received, or a case failure."""

from __future__ import annotations

from typing import Any

import pytest

from pluginconf.runner.host.observer import Observed, received
from pluginconf.runner.model import CaseFailed
from pluginconf.v1 import hooks_pb2

UNDECODABLE = (
    "DecodeError: Error parsing message with type 'pluginconf.v1.HTTPRequestFrame': "
    "String field had bad UTF-8"
)


def _call(**fields: Any) -> Observed:
    return Observed("p-1", "call", 4242, 7, 1.0, 2.0, {"call": 3, "hook": "ServeHTTP", **fields})


def test_a_recorded_request_comes_back_as_the_message():
    init = {"method": "PATCH", "path": "/echo", "headers": [{"name": "x", "values": ["é"]}]}
    frame = received(_call(request={"init": init}), hooks_pb2.HTTPRequestFrame)
    assert frame.init.method == "PATCH" and list(frame.init.headers[0].values) == ["é"]


def test_a_request_the_fake_could_not_parse_fails_the_case_naming_the_cause():
    event = _call(request=None, request_error=UNDECODABLE)
    with pytest.raises(CaseFailed) as failed:
        received(event, hooks_pb2.HTTPRequestFrame, requirement="SH-5")
    assert failed.value.requirements == ("SH-5",)
    text = str(failed.value)
    assert "could not read the HTTPRequestFrame of ServeHTTP call 3 (process 4242)" in text
    assert "String field had bad UTF-8" in text and "ISO-8859-1" in text


def test_a_stream_that_ended_before_its_first_frame_names_no_encoding():
    event = _call(request=None, request_error="the request stream ended before its first frame")
    with pytest.raises(CaseFailed) as failed:
        received(event, hooks_pb2.HTTPRequestFrame)
    assert failed.value.requirements == ()  # every requirement of the case
    assert "ended before its first frame" in str(failed.value)
    assert "ISO-8859-1" not in str(failed.value)


def test_a_null_request_without_a_reason_still_fails_clearly():
    with pytest.raises(CaseFailed, match="the fake recorded no request"):
        received(_call(request=None), hooks_pb2.HTTPRequestFrame)
