# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""ansible.posix.sysctl poisons its file with a key the kernel lacks; sysctl_profile does not.

Same isolation as test_sysctl_live.py: a throwaway network namespace and a private mount namespace
with scratch directories over /etc/sysctl.d, /usr/lib/sysctl.d and /var/lib.
"""
from __future__ import annotations

import os
import subprocess

import pytest

from sysctl_lab import skip_unless_root

pytestmark = pytest.mark.live

MISSING = "net.ipv4.tcp_tw_recycle"  # removed in Linux 4.12
GOOD = "net.ipv4.tcp_keepalive_time"


def posix(name, value):
    return {"ansible.posix.sysctl": {"name": name, "value": value, "sysctl_file": "/etc/sysctl.d/90-posix.conf"},
            "ignore_errors": True}


def ours(settings):
    return {"linuxnet.tcp.sysctl_profile": {"name": "side", "settings": settings}, "ignore_errors": True}


def sysctl_p(lab, name):
    return subprocess.run(lab.wrap(["sysctl", "-p", "/etc/sysctl.d/" + name]), capture_output=True, text=True, check=False)


@skip_unless_root
def test_posix_sysctl_poisons_its_file_and_sysctl_profile_does_not(lab):
    before = lab.sysctl(GOOD)
    results = lab.playbook([posix(MISSING, "0"), posix(GOOD, "600")])
    # The missing key fails the reload, but its line was written first and stays in the file ...
    assert results[0]["failed"] is True and "cannot stat" in results[0]["msg"]
    with open(os.path.join(lab.etc, "90-posix.conf")) as handle:
        assert MISSING + "=0" in handle.read()
    # ... so the next, perfectly valid task on the same file fails too, and every later reload of it.
    assert results[1]["failed"] is True and MISSING.replace(".", "/") in results[1]["msg"]
    assert sysctl_p(lab, "90-posix.conf").returncode != 0

    results = lab.playbook([ours({MISSING: 0}), ours({MISSING: 0, GOOD: 600})])
    assert [r.get("failed", False) for r in results] == [False, False]
    assert [s["classification"] for s in results[0]["skipped_keys"]] == ["removed"]
    assert results[1]["applied"][GOOD]["after"] == "600"
    with open(os.path.join(lab.etc, "90-linuxnet-side.conf")) as handle:
        text = handle.read()
    assert MISSING not in text and GOOD + " = 600" in text
    proc = sysctl_p(lab, "90-linuxnet-side.conf")
    assert proc.returncode == 0 and proc.stderr == ""
    assert before != "600" and lab.sysctl(GOOD) == "600"
