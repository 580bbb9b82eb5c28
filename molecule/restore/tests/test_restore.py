"""Verify tcp_tuning_state: absent: live values equal the originals recorded before the role ran."""
from __future__ import annotations

import json

import pytest

from ansible_collections.linuxnet.tcp.molecule.default.tests.snapshot import snapshot

ORIGINALS = "/root/original-sysctl.json"
GONE = [
    "/etc/sysctl.d/90-linuxnet-tuning.conf",
    "/var/lib/linuxnet-tcp/sysctl-tuning.json",
    "/etc/modules-load.d/90-linuxnet-tuning.conf",
    "/etc/modprobe.d/90-linuxnet-tuning.conf",
    "/etc/systemd/system/linuxnet-tcp-ipvs-timeouts.service",
    "/etc/systemd/system/multi-user.target.wants/linuxnet-tcp-ipvs-timeouts.service",
]


@pytest.fixture(scope="module")
def state(host):
    originals = json.loads(host.file(ORIGINALS).content_string)
    snap = snapshot(host, list(originals), GONE)
    snap["originals"] = originals
    return snap


def test_originals_were_recorded(state):
    assert len(state["originals"]) >= 10
    assert state["originals"]["net.ipv4.tcp_tw_reuse"] == "2"


def test_runtime_values_are_back(state):
    for key, value in state["originals"].items():
        assert state["proc"][key] == value, key


def test_every_file_the_role_installed_is_gone(state):
    for path in GONE:
        assert state["files"][path] is None, path
