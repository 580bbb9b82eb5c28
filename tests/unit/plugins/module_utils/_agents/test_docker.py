# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""dockerd's options (plugins/module_utils/_agents/docker.py); its keys on recorded trees are in test_writers.py."""
import os

import pytest

from ansible_collections.linuxnet.tcp.plugins.module_utils._agents import docker as D
from ansible_collections.linuxnet.tcp.plugins.module_utils._host.processes import commands

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))), "fixtures", "agents")


@pytest.mark.parametrize("flags, config, expected", [
    ({}, {}, True),                                          # Docker's default
    ({}, {"ip-forward": False}, False),                      # daemon.json
    ({"ip-forward": "true"}, {"ip-forward": False}, True),   # the command line wins
    ({"ip-forward": "maybe"}, {"ip-forward": "no"}, False),  # not a boolean: the next source
    ({}, ["not", "a", "mapping"], True),
])
def test_option(flags, config, expected):
    assert D._option(flags, config, "ip-forward", True) is expected


def test_detect_alone_on_a_recorded_tree():
    root = os.path.join(FIXTURES, "docker-ip-forward-off")
    agents = D.detect(root, commands(root))
    assert [(a["agent"], a["pid"], a["keys"]) for a in agents] == [("dockerd", 733, {})]
