# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Variables checked and converted as users give them (-e key=value text, YAML from an inventory), with messages that
name the variable, what it must be and the value."""
from __future__ import annotations

import datetime
import json

import pytest

from ansible_collections.linuxnet.tcp.plugins.filter.tcp_check_vars import tcp_check_vars
from ansible_collections.linuxnet.tcp.plugins.plugin_utils import _inputs

SPEC = {
    "names": {"type": "list", "elements": "str", "default": ["a"]},
    "states": {"type": "list", "elements": "str", "choices": ["up", "down"]},
    "settings": {"type": "dict", "default": {}},
    "window": {"type": "int", "default": 10},
    "share": {"type": "float", "default": 0.5},
    "rollback": {"type": "bool", "default": True},
    "mode": {"type": "str", "choices": ["fail", "warn"], "default": "fail"},
    "timeouts": {"type": "dict", "options": {"tcp": {"type": "int"}, "udp": {"type": "int"}}},
    "serial": {"type": "raw", "default": "25%"},
}

# (given, converted value of that variable)
CONVERTED = [
    ({"names": "web"}, ["web"]),
    ({"names": "web,proxy"}, ["web", "proxy"]),
    ({"names": "[web, proxy]"}, ["web", "proxy"]),
    ({"names": ["web", 5]}, ["web", "5"]),
    ({"settings": "net.core.somaxconn=8192"}, {"net.core.somaxconn": "8192"}),
    ({"settings": '{"net.ipv4.ip_local_port_range": "10240 65535"}'}, {"net.ipv4.ip_local_port_range": "10240 65535"}),
    ({"settings": "{net.core.somaxconn: 8192}"}, {"net.core.somaxconn": 8192}),
    ({"window": "30"}, 30),
    ({"share": "2"}, 2.0),
    ({"rollback": "false"}, False),
    ({"rollback": "yes"}, True),
    ({"timeouts": "{tcp: 3600}"}, {"tcp": 3600}),
    ({"timeouts": {"udp": "300"}}, {"udp": 300}),
    ({"serial": [1, "50%"]}, [1, "50%"]),
    ({"window": None}, 10),
    ({}, ["a"]),
]


@pytest.mark.parametrize("given, value", CONVERTED)
def test_converted_as_ansible_users_expect(given, value):
    values, errors = _inputs.check_variables(SPEC, given)
    name = next(iter(given), "names")
    assert errors == [] and values[name] == value
    # Every variable of the spec is there: its default, or null without one.
    assert set(values) == set(SPEC) and all(values[n] is None for n in ("states", "timeouts") if n not in given)


# (given, message): each names the variable, what it must be and the value it has.
REJECTED = [
    ({"names": {"a": 1}}, 'names must be a list of strings, got {"a": 1} (a mapping)'),
    ({"settings": ["a"]}, 'settings must be a mapping, got ["a"] (a list)'),
    ({"settings": "net.ipv4.ip_local_port_range=10240 65535"},
     'settings must be a mapping, got "net.ipv4.ip_local_port_range=10240 65535" (a string); give a mapping as YAML or '
     "JSON, for example -e '{\"settings\": {\"net.core.somaxconn\": 8192}}'"),
    ({"window": "ten"}, 'window must be an integer, got "ten" (a string)'),
    ({"window": [1]}, "window must be an integer, got [1] (a list)"),
    ({"rollback": "maybe"}, 'rollback must be a boolean (true or false), got "maybe" (a string)'),
    ({"mode": "fial"}, 'mode must be one of fail, warn, got "fial" (did you mean fail?)'),
    ({"states": "up,sideways"}, 'states must be one of up, down (or a list of them), got "up,sideways"'),
    ({"timeouts": {"tcp": "x"}}, 'timeouts.tcp must be an integer, got "x" (a string)'),
    ({"timeouts": {"tpc": 1}}, "timeouts.tpc is not a known key (did you mean tcp?); known: tcp, udp"),
    ({"widnow": 3}, "widnow is not a known variable (did you mean window?); known: mode, names, rollback, serial, "),
]


@pytest.mark.parametrize("given, message", REJECTED)
def test_rejected_with_the_variable_named(given, message):
    _values, errors = _inputs.check_variables(SPEC, given)
    assert len(errors) == 1 and errors[0].startswith(message), errors


def test_templating_types_become_plain():
    """Values from a template engine arrive as subclasses of str, list and dict: they are copied into plain ones."""
    class Text(str):
        pass

    class Items(list):
        pass
    values, errors = _inputs.check_variables(SPEC, {"names": Items([Text("web")]), "mode": Text("warn")})
    assert errors == [] and values["names"].__class__ is list and values["names"][0].__class__ is str
    assert values["mode"].__class__ is str


def test_plain_is_json_like():
    """Every type JSON has, as the exact builtin class; any other type (a YAML date, a set) its text, so that the
    callers (input checks, rules' parameters, the fleet report's settings) can json.dumps what they get."""
    class Number(int):
        pass
    given = {1: (Number(3), 2.5, True, None, "x"), "when": datetime.date(2026, 1, 2), "set": {"a"}, "nested": [{"k": Number(0)}]}
    got = _inputs.plain(given)
    assert got == {"1": [3, 2.5, True, None, "x"], "when": "2026-01-02", "set": "{'a'}", "nested": [{"k": 0}]}
    assert got["1"][0].__class__ is int and got["nested"][0]["k"].__class__ is int
    assert json.loads(json.dumps(got)) == got


def test_closest_needs_a_real_likeness():
    assert _inputs.closest("wbe", ["web", "proxy", "database"]) == "web"
    assert _inputs.closest("xyz", ["web", "proxy", "database"]) is None
    assert _inputs.did_you_mean("tcp_tune_window", ["tcp_tune_health_window", "tcp_tune_serial"]) == \
        " (did you mean tcp_tune_health_window?)"


def test_filter_returns_vars_and_errors():
    assert tcp_check_vars({"window": "3"}, {"window": {"type": "int", "default": 10}}) == {"vars": {"window": 3}, "errors": []}
    assert tcp_check_vars({"window": "x"}, {"window": {"type": "int"}})["errors"] == ['window must be an integer, got "x" (a string)']
