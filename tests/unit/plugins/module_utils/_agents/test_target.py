# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Finding an agent on the target and reading its files (plugins/module_utils/_agents/target.py)."""
import os
import signal

import pytest

from ansible_collections.linuxnet.tcp.plugins.module_utils._agents import target as T


def proc(pid, comm, *argv):
    return {"pid": pid, "comm": comm, "argv": list(argv)}


PROCS = [
    proc(1, "systemd", "/sbin/init"),
    proc(2, "kthreadd"),
    proc(402, "systemd-network", "/lib/systemd/systemd-networkd"),            # comm cut to 15 characters
    proc(700, "tuned", "/usr/bin/python3", "-Es", "/usr/sbin/tuned", "-l", "-P"),
    proc(701, "python3", "/usr/bin/python3", "-Es", "/usr/sbin/tuned"),       # comm of the interpreter: the script counts
    proc(800, "bash", "/bin/bash", "-c", "kube-proxy --help"),                # a name in an argument is not the program
]


@pytest.mark.parametrize("names, pids", [
    (("tuned",), [700, 701]), (("systemd-networkd", "systemd-network"), [402]), (("kube-proxy",), []),
    (("kthreadd",), [2]), (("bash",), [800]),
])
def test_find(names, pids):
    assert [p["pid"] for p in T.find(PROCS, *names)] == pids


def _put(root, path, text=""):
    full = os.path.join(root, path.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as handle:
        handle.write(text)
    return full


def test_instances_of_an_enabled_unit_that_does_not_run(tmp_path):
    root = str(tmp_path)
    assert T.instances(root, PROCS, ("dockerd",), "docker.service") == []
    os.makedirs(os.path.join(root, "etc/systemd/system/multi-user.target.wants"))
    os.symlink("/lib/systemd/system/docker.service", os.path.join(root, "etc/systemd/system/multi-user.target.wants/docker.service"))
    stand_in = T.instances(root, PROCS, ("dockerd",), "docker.service")
    assert stand_in == [{"pid": None, "comm": "dockerd", "argv": [],
                         "enabled": "/etc/systemd/system/multi-user.target.wants/docker.service"}]
    assert T.evidence(stand_in[0], "docker.service") == ("/etc/systemd/system/multi-user.target.wants/docker.service "
                                                         "(docker.service enabled, not running)")
    assert [p["pid"] for p in T.instances(root, PROCS, ("tuned",), "tuned.service")] == [700, 701]  # running wins


def test_cmdline_and_evidence():
    assert T.cmdline(PROCS[0]) == "/sbin/init" and T.cmdline(PROCS[1]) == "[kthreadd]"
    assert T.evidence(PROCS[3], "tuned.service") == "/usr/bin/python3 -Es /usr/sbin/tuned -l -P"


@pytest.mark.parametrize("files, path, expected", [
    ({"/proc/9/root/etc/a.json": "inside", "/etc/a.json": "host"}, "/etc/a.json", ("inside", "/proc/9/root/etc/a.json")),
    ({"/etc/a.json": "host"}, "/etc/a.json", ("host", "/etc/a.json")),              # not in the container: the root's
    ({"/proc/9/cwd/conf/a.yaml": "rel"}, "conf/a.yaml", ("rel", "/proc/9/cwd/conf/a.yaml")),
    ({"/conf/a.yaml": "rel"}, "conf/a.yaml", (None, "conf/a.yaml")),                # a relative path is the process's only
    ({}, "/etc/a.json", (None, "/etc/a.json")),
])
def test_proc_file(tmp_path, files, path, expected):
    for name, text in files.items():
        _put(str(tmp_path), name, text)
    assert T.proc_file(str(tmp_path), 9, path) == expected


def test_proc_file_without_a_process(tmp_path):
    _put(str(tmp_path), "/etc/a.json", "host")
    assert T.proc_file(str(tmp_path), None, "/etc/a.json") == ("host", "/etc/a.json")
    assert T.proc_file(str(tmp_path), None, "a.json") == (None, "a.json")


def _alarm(signum, frame):
    raise AssertionError("reading the file blocked")


def test_a_fifo_in_the_container_does_not_block(tmp_path):
    """A FIFO planted where the agent's config should be is not opened: the read would wait for a writer forever."""
    root = str(tmp_path)
    os.makedirs(os.path.join(root, "proc/9/root/etc/docker"))
    os.mkfifo(os.path.join(root, "proc/9/root/etc/docker/daemon.json"))
    _put(root, "/etc/docker/daemon.json", "{}")
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(10)
    try:
        assert T.proc_file(root, 9, "/etc/docker/daemon.json") == ("{}", "/etc/docker/daemon.json")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_listdir(tmp_path):
    _put(str(tmp_path), "/d/b")
    _put(str(tmp_path), "/d/a")
    assert T.listdir(str(tmp_path), "/d") == ["a", "b"] and T.listdir(str(tmp_path), "/missing") == []
