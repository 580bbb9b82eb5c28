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
