# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Recorded host documents (tests/unit/fixtures/audit, see record_fixtures.py there) and the role's rules."""
from __future__ import annotations

import copy
import json
import os

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
FIXTURES = os.path.join(ROOT, "tests", "unit", "fixtures", "audit")
RULES_FILE = os.path.join(ROOT, "roles", "audit", "vars", "main.yml")


def doc(name, **patches):
    """A recorded document; ``patches`` maps a dotted path (tcp.conntrack.count) to a replacement value."""
    with open(os.path.join(FIXTURES, name + ".json"), encoding="utf-8") as handle:
        data = json.load(handle)
    for path, value in patches.items():
        *parents, leaf = path.split("/")
        node = data
        for key in parents:
            node = node[key]
        assert leaf in node, f"{path} is not a field of the recorded document"
        node[leaf] = value
    return data


def builtin_rules():
    with open(RULES_FILE, encoding="utf-8") as handle:
        return copy.deepcopy(yaml.safe_load(handle)["__tcp_audit_builtin_rules"])


# Kinds of simulated hosts, in turn: (recorded document, inventory group).
FLEET_KINDS = (("storm", "db"), ("legacy", "web"), ("syncookies", "web"), ("clean", "web"), ("clean", "cache"))


def simulated_fleet(count, findings=True):
    """``count`` plain host documents {tcp, sysctl, findings, groups} from the recorded ones: every fifth host of
    each kind, with its TIME_WAIT and CLOSE_WAIT counts scaled by the host number so that hosts differ in size.
    Findings come from the real tcp_diagnose filter with the role's rules (computed once per distinct document)."""
    from ansible_collections.linuxnet.tcp.plugins.filter.tcp_diagnose import tcp_diagnose  # pylint: disable=import-outside-toplevel

    rules, cache, out = builtin_rules(), {}, {}
    for number in range(1, count + 1):
        fixture, group = FLEET_KINDS[number % len(FLEET_KINDS)]
        data = doc(fixture)
        scale = 1 + number % 7
        tcp = data["tcp"]
        for key in ("TIME_WAIT", "CLOSE_WAIT"):
            tcp["states"]["total"] += tcp["states"][key] * (scale - 1)
            tcp["states"][key] *= scale
        tcp["time_wait"]["total"] = tcp["states"]["TIME_WAIT"]
        for remote in tcp["time_wait"]["by_remote"]:
            remote["count"] *= scale
        for side, lists in (("client_side", ("by_remote",)), ("server_side", ("by_local_port", "by_client"))):
            tcp["time_wait"][side]["total"] *= scale
            for name in lists:
                for row in tcp["time_wait"][side][name]:
                    row["count"] *= scale
        tcp["close_wait"]["total"] = tcp["states"]["CLOSE_WAIT"]
        for proc in tcp["close_wait"]["by_process"] + tcp["close_wait"]["by_program"]:
            proc["count"] *= scale
        key = (fixture, scale)
        if findings and key not in cache:
            cache[key] = tcp_diagnose(data, rules)
        data["findings"] = copy.deepcopy(cache.get(key, []))
        data["groups"] = [group, "site%d" % (number % 3 + 1)]
        out["%s%d" % (group, number)] = data
    return out
