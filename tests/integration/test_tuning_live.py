# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The tuning role with a user's own profile, through ansible-playbook in a throwaway namespace.

Same isolation as test_sysctl_live.py (network namespace, private mount namespace, scratch /etc/sysctl.d,
/usr/lib/sysctl.d and /var/lib). The profiles used here need no kernel module, so nothing else is written.
"""
from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest

from sysctl_lab import BIN, COLLECTIONS, TARGET_PYTHON, skip_unless_root

pytestmark = pytest.mark.live

CUSTOM = {
    "api_gateway": {
        "extends": ["baseline"],
        "settings": {"net.ipv4.tcp_fin_timeout": 30, "net.ipv4.tcp_keepalive_time": 600},
    },
}


def run_role(lab, role_vars):
    """Include linuxnet.tcp.tuning with ``role_vars``; return (rc, {task name: localhost result})."""
    path = os.path.join(lab.base, "play-%s.yml" % uuid.uuid4().hex[:6])
    play = [{"hosts": "localhost", "connection": "local", "gather_facts": False,
             "tasks": [{"ansible.builtin.include_role": {"name": "linuxnet.tcp.tuning"}, "vars": role_vars}]}]
    with open(path, "w") as handle:
        json.dump(play, handle)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=os.path.join(lab.base, "tmp"))
    argv = [os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", "-e", "ansible_python_interpreter=" + TARGET_PYTHON, path]
    proc = subprocess.run(lab.wrap(argv), capture_output=True, text=True, env=env, timeout=180, check=False)
    start = proc.stdout.find("{")
    assert start >= 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout[start:])
    results = {}
    for task in doc["plays"][0]["tasks"]:
        results[task["task"]["name"].split(" : ", 1)[-1]] = task["hosts"]["localhost"]
    return proc.returncode, results


@skip_unless_root
def test_custom_profile_layers_under_settings(lab):
    role_vars = {"tcp_tuning_profiles": ["api_gateway"], "tcp_tuning_custom_profiles": CUSTOM, "tcp_tuning_name": "custom",
                 "tcp_tuning_settings": {"net.ipv4.tcp_keepalive_time": 900}}
    rc, results = run_role(lab, role_vars)
    assert rc == 0, results
    summary = results["Show the summary"]["tcp_tuning_summary"]
    assert summary[0] == "linuxnet.tcp.tuning: profiles baseline, api_gateway -> /etc/sysctl.d/90-linuxnet-custom.conf", summary
    # The profile's value and the per-host override (which wins) hold in the kernel and in the drop-in.
    assert lab.sysctl("net.ipv4.tcp_fin_timeout") == "30"
    assert lab.sysctl("net.ipv4.tcp_keepalive_time") == "900"
    with open(os.path.join(lab.etc, "90-linuxnet-custom.conf")) as handle:
        dropin = handle.read()
    assert "net.ipv4.tcp_fin_timeout = 30\n" in dropin and "net.ipv4.tcp_keepalive_time = 900\n" in dropin
    assert "net.ipv4.tcp_syncookies = 1\n" in dropin  # from baseline, which the custom profile extends
    rc, again = run_role(lab, role_vars)
    assert rc == 0 and again["Apply the merged profile in one transaction"]["changed"] is False, again


@skip_unless_root
def test_unknown_profile_fails_before_any_change(lab):
    before = lab.sysctl("net.ipv4.tcp_fin_timeout")
    rc, results = run_role(lab, {"tcp_tuning_profiles": ["api_gatway"], "tcp_tuning_custom_profiles": CUSTOM})
    assert rc != 0
    failed = results["Stop on bad input, before any change"]
    assert failed.get("failed") and "tcp_tuning_profiles: unknown tuning profile(s) api_gatway (did you mean " \
                                    "api_gateway?)" in failed["msg"], failed
    assert "add your own with tcp_tuning_custom_profiles" in failed["msg"]
    assert "Apply the merged profile in one transaction" not in results
    assert lab.sysctl("net.ipv4.tcp_fin_timeout") == before and os.listdir(lab.etc) == []


@skip_unless_root
def test_misspelt_key_fails_before_any_change_with_the_real_one(lab):
    """A key neither the catalogue nor this kernel knows (read from the namespace's /proc/sys) stops the run."""
    before = lab.sysctl("net.ipv4.tcp_fin_timeout")
    rc, results = run_role(lab, {"tcp_tuning_settings": {"net.ipv4.tcp_fin_timout": 30, "net.ipv4.tcp_ecn": 1}})
    assert rc != 0
    failed = results["Stop on bad input, before any change"]
    assert failed.get("failed") and failed["msg"] == (
        "linuxnet.tcp.tuning: tcp_tuning_settings: net.ipv4.tcp_fin_timout is not a sysctl of this host's kernel (%s) "
        "nor one the collection knows (did you mean net.ipv4.tcp_fin_timeout?); for a key that only some kernels have, "
        "set tcp_tuning_unknown_keys: warn; nothing was changed" % os.uname().release), failed
    assert "Apply the merged profile in one transaction" not in results
    assert lab.sysctl("net.ipv4.tcp_fin_timeout") == before and os.listdir(lab.etc) == []
    # With warn, the key is reported and skipped, and net.ipv4.tcp_ecn (not in the catalogue, but on this kernel) applied.
    rc, results = run_role(lab, {"tcp_tuning_settings": {"net.ipv4.tcp_fin_timout": 30, "net.ipv4.tcp_ecn": 1},
                                 "tcp_tuning_unknown_keys": "warn"})
    assert rc == 0, results
    summary = results["Show the summary"]["tcp_tuning_summary"]
    assert "skipped: net.ipv4.tcp_fin_timout [unknown_key]" in "\n".join(summary), summary
    assert summary[-1].startswith("WARNING input: tcp_tuning_settings: net.ipv4.tcp_fin_timout is not a sysctl"), summary
    assert lab.sysctl("net.ipv4.tcp_ecn") == "1"
