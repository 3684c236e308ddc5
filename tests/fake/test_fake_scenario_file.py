"""The fake plugin's scenario file: bad ones exit 2 naming the key; the documented ones load."""

from __future__ import annotations

import pytest
from fake_support import (
    FAKE,
    run_fake,
    scenario,
)

from pluginconf.fake.scenario import load as fake_scenario_load

# -- bad scenarios ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"crahs": {}}, "crahs: unknown key; did you mean 'crash'?"),
        (
            {"crash": {"after_hook_calls": "two"}},
            'crash.after_hook_calls: expected an integer >= 1, got "two"',
        ),
        ({"crash": {}}, "crash: expected at least one of on, after_hook_calls"),
        ({"hooks": ["OnActivate", "Frobnicate"]}, "hooks[1]: expected a hook name, one of"),
        ({"health": "SICK"}, 'health: expected "SERVING", "NOT_SERVING"'),
        ({"slow_start": -1}, "slow_start: expected a number of seconds >= 0, got -1"),
        ({"handshake": {"line": "a", "exit_before": 1}}, "handshake: expected exactly one of"),
        (
            {"record": {}},
            "record: expected the key file (a path, relative to the scenario), the key observer",
        ),
        ({"record": {"observer": 5}}, "record.observer: expected a string, got 5"),
        ({"record": {"observer": ""}}, 'record.observer: expected a non-empty string, got ""'),
        (
            {"record": {"file": "r.jsonl", "label": "a"}},
            "record.label: only goes with record.observer",
        ),
        ({"record": {"observer": "unix:/x", "label": 3}}, "record.label: expected a string, got 3"),
        (
            {"record": {"observer": "unix:/x", "lable": "a"}},
            "record.lable: unknown key; did you mean 'label'?",
        ),
        (
            {"health": {"serving_after_s": -1}},
            "health.serving_after_s: expected a number of seconds >= 0, got -1",
        ),
        (
            {"health": {"serving_after_s": 1, "flap_every_s": 1}},
            "health: expected exactly one of flap_every_s, serving_after_s, got serving_after_s, flap_every_s",
        ),
        (
            {"hook_errors": []},
            "hook_errors: expected an object {HOOK: {code: C, message: M}, ...}, got []",
        ),
        (
            {"hook_errors": {"MessageHasBeenPosted": {"code": "x"}}},
            "hook_errors.MessageHasBeenPosted: MessageHasBeenPosted has no error in its response; expected one of",
        ),
        ({"hook_errors": {"Frob": {"code": "x"}}}, "hook_errors.Frob: expected a hook name"),
        (
            {"hook_errors": {"OnDeactivate": {"message": "m"}}},
            "hook_errors.OnDeactivate: expected the key code",
        ),
        (
            {"hook_errors": {"OnDeactivate": {"code": ""}}},
            'hook_errors.OnDeactivate.code: expected a non-empty string, got ""',
        ),
        (
            {"hook_errors": {"activate": {"code": "a"}, "OnActivate": {"code": "b"}}},
            "hook_errors.OnActivate: OnActivate is given more than once",
        ),
        (
            {"activation_error": {"code": "a"}, "hook_errors": {"OnActivate": {"code": "b"}}},
            "activation_error: OnActivate also has hook_errors; give one of the two",
        ),
        (
            {"hook_errors": {"ExecuteCommand": {"code": "x"}}, "hooks": ["OnActivate"]},
            "hook_errors.ExecuteCommand: needs ExecuteCommand in hooks",
        ),
        (
            {"filter": {"action": "drop"}},
            'filter.action: expected "keep", "modify" or "reject", got "drop"',
        ),
        ({"filter": {"append": "x"}}, 'filter.append: only goes with filter.action "modify"'),
        (
            {"filter": {"action": "keep", "reason": "r"}},
            'filter.reason: only goes with filter.action "reject"',
        ),
        ({"filter": {"action": "modify", "append": 1}}, "filter.append: expected a string, got 1"),
        (
            {"filter": {"action": "keep", "drop_props": ["k"]}},
            'filter.drop_props: only goes with filter.action "modify"',
        ),
        (
            {"filter": {"action": "modify", "drop_props": "k"}},
            "filter.drop_props: expected a list of strings",
        ),
        ({"filter": {}, "hooks": ["OnActivate"]}, "filter: needs MessageWillBePosted in hooks"),
        (
            {"filter": {"action": "reject"}, "hook_errors": {"MessageWillBePosted": {"code": "x"}}},
            "filter: hook_errors.MessageWillBePosted makes MessageWillBePosted answer an error instead",
        ),
        (
            {"command_response": {"response_type": "public"}},
            'command_response.response_type: expected "ephemeral" or "in_channel", got "public"',
        ),
        ({"command_response": {"text": 5}}, "command_response.text: expected a string, got 5"),
        ({"command_response": {}, "hooks": []}, "command_response: needs ExecuteCommand in hooks"),
        ({"never_handshake": True, "filter": {}}, "filter: applies only to a plugin that serves"),
        (
            {"never_handshake": True, "hang": {"hook": "OnActivate"}},
            "hang: applies only to a plugin that serves",
        ),
        (
            {"activation_error": {"code": "x"}, "hooks": ["ExecuteCommand"]},
            "activation_error: needs OnActivate in hooks",
        ),
        ({"flood_stderr": True}, "flood_stderr: expected a number of bytes or an object, got true"),
        # field 6, Implemented, GRPCStdio, later errors, message sizes
        ({"tls": {"serve": "tls1.0"}}, 'tls.serve: expected "auto" or "plain" or "tls1.1"'),
        (
            {"tls": {"certificate_padding": 3}},
            "tls.certificate_padding: expected an integer from 0 to 2, got 3",
        ),
        ({"tls": {"sixth": "empty"}}, "tls.sixth: unknown key; did you mean 'sixth_field'?"),
        (
            {"implemented_extra": ["OnActivate"]},
            "implemented_extra[0]: OnActivate is a Hooks method",
        ),
        ({"implemented_extra": []}, "implemented_extra: expected a non-empty list"),
        (
            {"hook_status": {"Implemented": "OK"}},
            "hook_status.Implemented: expected a gRPC status code name other than OK",
        ),
        ({"hook_status": {"ServeHTTP": "INTERNAL"}}, "hook_status.ServeHTTP: only unary calls"),
        (
            {"hook_status": {"ExecuteCommand": "INTERNAL"}, "hooks": ["OnActivate"]},
            "hook_status.ExecuteCommand: needs ExecuteCommand in hooks",
        ),
        ({"stdio": "none"}, 'stdio: expected "served", "absent" or "ends", got "none"'),
        (
            {"configuration_error_after_activation": {"code": "x"}, "hooks": ["OnActivate"]},
            "configuration_error_after_activation: needs OnConfigurationChange in hooks",
        ),
        ({"max_receive_bytes": 1024}, "max_receive_bytes: expected an integer from 4194304 to"),
        (
            {"command_response": {"text": "a", "message_bytes": 100}},
            "command_response.message_bytes: give text or message_bytes",
        ),
        ({"never_handshake": True, "stdio": "absent"}, "stdio: applies only to a plugin"),
        ("[]", "the scenario: expected a JSON object, got []"),
        ("{not json", "not valid JSON: Expecting property name"),
        ('{"hooks": [], "hooks": []}', "hooks: appears twice"),
        # HostAPI calls and broker behaviours
        ({"host_api": {"OnStart": []}}, "host_api.OnStart: unknown key"),
        ({"host_api": {"OnActivate": [{"op": "kv_pop"}]}}, "host_api.OnActivate[0].op: expected"),
        (
            {"host_api": {"OnActivate": [{"op": "kv_set", "key": "k"}]}},
            "needs value or value_bytes",
        ),
        (
            {"host_api": {"OnActivate": [{"op": "kv_cas", "key": "k", "concurrent": 0}]}},
            "host_api.OnActivate[0].concurrent: expected an integer from 1 to 64",
        ),
        (
            {"host_api": {"OnActivate": [{"op": "log", "level": "trace"}]}},
            "host_api.OnActivate[0].level: expected one of unspecified",
        ),
        (
            {"host_api": {"commands": True}, "hooks": ["OnActivate"]},
            "host_api.ExecuteCommand: needs ExecuteCommand in hooks",
        ),
        ({"broker": {"send": [{"service_id": -1}]}}, "broker.send[0].service_id: expected"),
        ({"broker": {"probe": 1}}, "broker.probe: expected true or false"),
        ({"never_handshake": True, "broker": {}}, "broker: applies only to a plugin that serves"),
        # answers no correct plugin gives
        ({"filter_raw": {}}, "filter_raw.action: missing"),
        ({"filter_raw": {"action": -1}}, "filter_raw.action: expected an integer from 0"),
        ({"filter_raw": {"action": 2, "post": 1}}, "filter_raw.post: expected true or false"),
        ({"filter_raw": {"action": 1}, "filter": {}}, "filter_raw and filter: choose one"),
        (
            {"filter_raw": {"action": 1}, "hooks": ["OnActivate"]},
            "filter_raw: needs MessageWillBePosted in hooks",
        ),
        ({"configuration_error_from_call": {"code": "x"}}, "configuration_error_from_call.call"),
        (
            {"configuration_error_from_call": {"call": 0, "code": "x"}},
            "configuration_error_from_call.call: expected an integer >= 1",
        ),
        (
            {
                "configuration_error_from_call": {"call": 2, "code": "x"},
                "hook_errors": {"OnConfigurationChange": {"code": "y"}},
            },
            "configuration_error_from_call: hook_errors.OnConfigurationChange fails every call",
        ),
        (
            {"never_handshake": True, "filter_raw": {"action": 1}},
            "filter_raw: applies only to a plugin that serves",
        ),
    ],
)
def test_bad_scenario_exits_2_naming_the_key(tmp_path, data, message):
    result = run_fake(str(scenario(tmp_path, data)))
    assert result.returncode == 2
    assert result.stdout == ""
    assert message in result.stderr, result.stderr


def test_readme_examples_are_valid_scenarios(tmp_path):
    readme = (FAKE.parent / "README.md").read_text(encoding="utf-8")
    examples = [block for block in readme.split("```json\n")[1:]]
    scenarios = [e.split("```")[0] for e in examples if not e.startswith('{"event"')]
    assert len(scenarios) >= 20
    for i, text in enumerate(scenarios):
        fake_scenario_load.load(
            str(scenario(tmp_path, text, f"example{i}.json"))
        )  # raises if invalid


def test_check_only_validates(tmp_path):
    result = run_fake("--check", str(scenario(tmp_path, {"never_handshake": True})))
    assert (result.returncode, result.stderr) == (0, "")
    assert "is valid" in result.stdout
    result = run_fake("--check", str(scenario(tmp_path, {"hooks": "ExecuteCommand"})))
    assert result.returncode == 2
    assert (
        'hooks: expected a list of hook names (may be empty), got "ExecuteCommand"' in result.stderr
    )


def test_bad_command_lines_exit_2(tmp_path):
    result = run_fake()
    assert (result.returncode, result.stdout) == (2, "")
    assert "expected exactly one argument, the scenario file" in result.stderr
    result = run_fake(str(tmp_path / "missing.json"))
    assert result.returncode == 2
    assert "cannot read the scenario file: No such file or directory" in result.stderr


def test_unopenable_record_file_exits_2(tmp_path):
    path = scenario(tmp_path, {"record": {"file": "no/such/dir/calls.jsonl"}})
    result = run_fake(str(path))
    assert (result.returncode, result.stdout) == (2, "")
    assert "record.file: cannot open" in result.stderr
