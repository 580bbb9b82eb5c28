# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Namespace enumeration and attribution on fake trees; cgroup layouts as the runtimes write them."""
import os

import pytest

from ansible_collections.linuxnet.tcp.tests.unit.plugins.module_utils.host_fixtures import (  # pylint: disable=wrong-import-order
    CRI_ID, DOCKER_ID, PODMAN_ID, POD_UID, fake_host)

from ansible_collections.linuxnet.tcp.plugins.module_utils._host import namespaces as ns
from ansible_collections.linuxnet.tcp.plugins.module_utils._host.processes import ProcessTable


@pytest.mark.parametrize("cgroup, runtime, container_id, pod_uid, name", [
    # podman, cgroupfs manager on a hybrid host (recorded on the build machine), and systemd manager, cgroup v2
    ("9:name=systemd:/libpod_parent/libpod-%s\n0::/libpod_parent/libpod-%s\n" % (PODMAN_ID, PODMAN_ID), "podman", PODMAN_ID, None, None),
    ("0::/machine.slice/libpod-%s.scope/container\n" % PODMAN_ID, "podman", PODMAN_ID, None, None),
    ("0::/machine.slice/libpod-conmon-%s.scope\n" % PODMAN_ID, None, None, None, None),  # conmon is not the container
    ("0::/system.slice/docker-%s.scope\n" % DOCKER_ID, "docker", DOCKER_ID, None, None),
    ("12:memory:/docker/%s\n0::/\n" % DOCKER_ID, "docker", DOCKER_ID, None, None),
    ("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod%s.slice/cri-containerd-%s.scope\n"
     % (POD_UID.replace("-", "_"), CRI_ID), "containerd", CRI_ID, POD_UID, None),
    ("0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod%s.slice/crio-%s.scope\n"
     % (POD_UID.replace("-", "_"), CRI_ID), "cri-o", CRI_ID, POD_UID, None),
    ("0::/kubepods/burstable/pod%s/%s\n" % (POD_UID, CRI_ID), "kubernetes", CRI_ID, POD_UID, None),
    ("0::/machine.slice/systemd-nspawn@build\\x2dbox.service/payload\n", "systemd-nspawn", None, None, "build-box"),
    ("0::/machine.slice/machine-web1.scope/payload\n", "systemd-nspawn", None, None, "web1"),
    ("0::/lxc.payload.db1/init.scope\n", "lxc", None, None, "db1"),
    ("0::/user.slice/user-1000.slice/session-3.scope\n", None, None, None, None),
    ("0::/\n", None, None, None, None),
])
def test_parse_cgroup(cgroup, runtime, container_id, pod_uid, name):
    got = ns.parse_cgroup(cgroup)
    assert (got["runtime"], got["container_id"], got["pod_uid"], got["name"]) == (runtime, container_id, pod_uid, name)


def test_enumerate_and_attribute(tmp_path):
    root = str(tmp_path)
    fake_host(root)
    found, own, scan = ns.enumerate_netns(root)
    assert own == os.stat(os.path.join(root, "proc/1/ns/net")).st_ino
    by_pids = dict((tuple(e["pids"]), e) for e in found)
    assert sorted(by_pids) == [(), (700, 701), (900,)]                  # the host's own netns is not listed
    assert by_pids[(700, 701)]["netns_name"] == "netns-28476392" and by_pids[(700, 701)]["path"] == "/run/netns/netns-28476392"
    assert by_pids[(900,)]["path"] == "/proc/900/ns/net" and by_pids[()]["netns_name"] == "lab"
    assert scan["processes"] == 5 and scan["left_out"] == 0
    names, users = ns.Names(root), {}
    podman = ns.owner(root, by_pids[(700, 701)], names, users)
    assert (podman["runtime"], podman["container_id"], podman["container_name"]) == ("podman", PODMAN_ID, "leaky")
    assert podman["processes"][0] == {"pid": 700, "comm": "leaky-app", "user": "root"} and podman["process_count"] == 2
    pod = ns.owner(root, by_pids[(900,)], names, users)
    assert (pod["runtime"], pod["pod_uid"], pod["pod_namespace"], pod["pod_name"]) == ("containerd", POD_UID, "shop", "web-7d4b9")
    assert ns.label(pod) == "pod shop/web-7d4b9" and ns.label(podman) == "podman leaky"
    assert ns.label(ns.owner(root, by_pids[()], names, users)) == "netns lab"


def test_the_scan_s_process_table_finds_the_same(tmp_path):
    """namespaces=all walks /proc once (an _owners.ProcessTable) for the namespaces and every owner lookup."""
    root = str(tmp_path)
    fake_host(root)
    assert ns.enumerate_netns(root, table=ProcessTable(root)) == ns.enumerate_netns(root)


def test_limit_and_time_budget(tmp_path):
    root = str(tmp_path)
    fake_host(root)
    found, _own, scan = ns.enumerate_netns(root, limit=1)
    assert len(found) == 1 and scan["left_out"] == 2
    ticks = iter(range(100))
    _found, _own, scan = ns.enumerate_netns(root, budget=1.5, clock=lambda: next(ticks))
    assert scan["timed_out"] is True and scan["processes"] < 5


def test_not_permitted_names_what_it_could_not_read(tmp_path, monkeypatch):
    """A link the caller may not read is counted and named (the first NOT_PERMITTED_SHOWN), so a root run that
    reports not_permitted says which process it was."""
    root = str(tmp_path)
    fake_host(root)
    real = os.readlink

    def guarded(path, *args, **kwargs):  # the scan's one walk of /proc (_owners.ProcessTable) reads the links
        if path.endswith("/proc/900/ns/net"):
            raise PermissionError(13, "Permission denied", path)
        return real(path, *args, **kwargs)
    monkeypatch.setattr(os, "readlink", guarded)
    found, _own, scan = ns.enumerate_netns(root)
    assert scan["not_permitted"] == 1 and scan["not_permitted_paths"] == ["/proc/900/ns/net"]
    assert sorted(tuple(e["pids"]) for e in found) == [(), (700, 701)]
    many = {"not_permitted": 0, "not_permitted_paths": []}
    for pid in range(ns.NOT_PERMITTED_SHOWN + 5):
        ns.not_permitted(many, "/proc/%d/ns/net" % pid)
    assert many["not_permitted"] == ns.NOT_PERMITTED_SHOWN + 5 and len(many["not_permitted_paths"]) == ns.NOT_PERMITTED_SHOWN
