# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Namespace enumeration and attribution on fake trees; cgroup layouts as the runtimes write them."""
import json
import os

import pytest

from ansible_collections.linuxnet.tcp.plugins.module_utils._host import namespaces as ns
from ansible_collections.linuxnet.tcp.plugins.module_utils._host.processes import ProcessTable

PODMAN_ID = "86bef0b4fed8a9ae2e55fc52a42c174e290e914a14e452d6bd01985fc872ccef"
DOCKER_ID = "4c01db0b339c3f0f0f1d2a6b6a3c1e8f7d5b3a2c1e0f9d8c7b6a5f4e3d2c1b0a"
CRI_ID = "9f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e"
POD_UID = "3a1f5c2e-8b4d-4e6f-9a0b-1c2d3e4f5a6b"


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


def _put(root, path, text):
    full = os.path.join(root, path.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as handle:
        handle.write(text)


def fake_host(root):
    """Host netns (pids 1, 50), a podman container (pids 700, 701), a pod (900), a named netns without processes."""
    _put(root, "/proc/1/ns/net", "host")
    _put(root, "/proc/self/ns/net", "x")
    os.unlink(os.path.join(root, "proc/self/ns/net"))
    os.link(os.path.join(root, "proc/1/ns/net"), os.path.join(root, "proc/self/ns/net"))
    _put(root, "/proc/50/ns/net", "x")
    os.unlink(os.path.join(root, "proc/50/ns/net"))
    os.link(os.path.join(root, "proc/1/ns/net"), os.path.join(root, "proc/50/ns/net"))
    _put(root, "/run/netns/netns-28476392", "podman")          # podman's named netns of its container
    for pid in (700, 701):
        os.makedirs(os.path.join(root, "proc/%d/ns" % pid))
        os.link(os.path.join(root, "run/netns/netns-28476392"), os.path.join(root, "proc/%d/ns/net" % pid))
        _put(root, "/proc/%d/comm" % pid, "leaky-app\n" if pid == 700 else "sh\n")
        _put(root, "/proc/%d/status" % pid, "Name:\tx\nUid:\t0\t0\t0\t0\n")
        _put(root, "/proc/%d/cgroup" % pid, "0::/libpod_parent/libpod-%s\n" % PODMAN_ID)
    _put(root, "/proc/900/ns/net", "pod")
    _put(root, "/proc/900/comm", "nginx\n")
    _put(root, "/proc/900/status", "Uid:\t101\t101\t101\t101\n")
    _put(root, "/proc/900/cgroup", "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod%s.slice/cri-containerd-%s.scope\n"
         % (POD_UID.replace("-", "_"), CRI_ID))
    _put(root, "/run/netns/lab", "lab")
    _put(root, "/var/lib/containers/storage/overlay-containers/containers.json",
         json.dumps([{"id": PODMAN_ID, "names": ["leaky"]}]))
    os.makedirs(os.path.join(root, "var/log/pods/shop_web-7d4b9_%s/nginx" % POD_UID))


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
