# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The sysctl lab of the live sysctl tests: a throwaway network namespace and scratch sysctl directories.

Shared by test_sysctl_live.py, test_tuning_live.py and test_sysctl_posix_side_by_side.py (conftest.py gives them the
``lab`` fixture). Every playbook runs in ``ip netns exec NS unshare -m`` with the scratch directories bind-mounted over
/etc/sysctl.d, /usr/lib/sysctl.d and /var/lib, so only namespaced net.* keys of the throwaway netns and scratch files
are touched; the host's /etc and kernel settings are never written.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(REPO, ".build", "collections")
BIN = os.path.dirname(sys.executable)
# The oldest Python the target code supports, when present, so the live run proves 3.9 compatibility.
PY39 = "/root/.pyenv/versions/3.9.18/bin/python3"
TARGET_PYTHON = PY39 if os.path.exists(PY39) else "/usr/bin/python3"
MOUNT_SCRIPT = (
    'mount --bind "$1" /etc/sysctl.d && mount --bind "$2" /usr/lib/sysctl.d && mount --bind "$3" /var/lib && '
    'shift 3 && exec "$@"'
)


def _usable():
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("unshare"):
        return False
    return os.path.isdir("/etc/sysctl.d") and os.path.isdir("/usr/lib/sysctl.d")


skip_unless_root = pytest.mark.skipif(not _usable(), reason="needs root, iproute2 and unshare")


class Lab(object):
    """One network namespace plus scratch sysctl directories."""

    def __init__(self, base):
        self.name = "lntcp-%s" % uuid.uuid4().hex[:10]
        self.base = str(base)
        self.etc = os.path.join(self.base, "etc_sysctl_d")
        self.usrlib = os.path.join(self.base, "usr_lib_sysctl_d")
        self.varlib = os.path.join(self.base, "var_lib")
        for path in (self.etc, self.usrlib, self.varlib):
            os.makedirs(path)
        subprocess.run(["ip", "netns", "add", self.name], check=True)

    def close(self):
        subprocess.run(["ip", "netns", "delete", self.name], check=False)

    def wrap(self, argv):
        return ["ip", "netns", "exec", self.name, "unshare", "-m", "--propagation", "private",
                "sh", "-c", MOUNT_SCRIPT, "sh", self.etc, self.usrlib, self.varlib] + list(argv)

    @staticmethod
    def path(key):
        """/proc/sys path of a key in either sysctl.d(5) spelling (written out here, not taken from the code under test)."""
        if "/" in key and key.index("/") < (key.index(".") if "." in key else len(key)):
            return "/proc/sys/" + key
        return "/proc/sys/" + key.translate(str.maketrans("./", "/."))

    def sysctl(self, key):
        out = subprocess.run(["ip", "netns", "exec", self.name, "cat", self.path(key)],
                             check=True, capture_output=True, text=True).stdout
        return " ".join(out.split())

    def visible(self, key):
        """Whether the key exists in /proc/sys of the namespace (global keys are absent from a child netns on older kernels)."""
        return subprocess.run(["ip", "netns", "exec", self.name, "test", "-e", self.path(key)], check=False).returncode == 0

    def set_runtime(self, key, value):
        subprocess.run(["ip", "netns", "exec", self.name, "sh", "-c", 'echo "$1" > "$2"', "sh", value,
                        self.path(key)], check=True)

    def playbook(self, tasks, check=False):
        """Run tasks in one play; return the per-task results (ansible.posix.json callback)."""
        path = os.path.join(self.base, "play-%s.yml" % uuid.uuid4().hex[:6])
        play = [{"hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": tasks}]
        with open(path, "w") as handle:
            json.dump(play, handle)
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
                   ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=os.path.join(self.base, "tmp"))
        argv = [os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", "-e", "ansible_python_interpreter=" + TARGET_PYTHON,
                "--diff", path] + (["--check"] if check else [])
        proc = subprocess.run(self.wrap(argv), capture_output=True, text=True, env=env, timeout=120, check=False)
        start = proc.stdout.find("{")
        assert start >= 0, proc.stdout + proc.stderr
        doc = json.loads(proc.stdout[start:])
        return [t["hosts"]["localhost"] for t in doc["plays"][0]["tasks"]]
