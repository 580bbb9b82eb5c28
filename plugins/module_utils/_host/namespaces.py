# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tcp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every network namespace of a host, and who owns it, from what the host already has.

Namespaces are found by inode (what ``ip netns identify`` and ``lsns`` compare): the ``/proc/PID/ns/net`` link of
every process, and the bind-mounted files of ``ip netns`` under ``/run/netns`` (and ``/var/run/netns``, often the
same directory). Attribution reads, without any container runtime's client library:

- the processes in the namespace (pid, comm, user), fewest first in pid order;
- the cgroup of its first process (``/proc/PID/cgroup``, the unified ``0::`` line or the ``name=systemd`` one),
  parsed into a runtime and a container id for the layouts that runtimes write:
  podman (``libpod-<id>.scope``, ``/libpod_parent/libpod-<id>``), docker (``docker-<id>.scope``, ``/docker/<id>``),
  containerd and CRI-O under Kubernetes (``cri-containerd-<id>.scope``, ``crio-<id>.scope``, ``/kubepods/.../pod<uid>/<id>``,
  with the pod UID), systemd-nspawn (``systemd-nspawn@<name>.service``, ``machine-<name>.scope``) and LXC
  (``lxc.payload.<name>``);
- the container's name where the runtime keeps it on disk: podman's ``containers.json`` (rootful storage),
  docker's ``config.v2.json``, and for Kubernetes the pod's directory ``/var/log/pods/<namespace>_<pod>_<uid>``;
- the ``/run/netns`` name when there is one.

Everything is read under ``root`` (default ``/``) so tests run it on recorded trees. Unprivileged callers see only
their own processes' namespaces: the others are counted under ``not_permitted``.
"""

import errno
import json
import os
import re
import time

from ansible_collections.linuxnet.tcp.plugins.module_utils._host.processes import ProcessTable, user_name

NETNS_DIRS = ("/run/netns", "/var/run/netns")
_ID = r"([0-9a-f]{64})"
_CGROUP_RULES = (
    ("podman", re.compile(r"libpod-(?!conmon-)" + _ID + r"(?:\.scope)?(?:/|$)")),
    ("docker", re.compile(r"(?:docker-" + _ID + r"\.scope|/docker/" + _ID + r")(?:/|$)")),
    ("containerd", re.compile(r"cri-containerd-" + _ID + r"\.scope")),
    ("cri-o", re.compile(r"crio-" + _ID + r"\.scope")),
)
# Kubernetes pod UIDs in cgroup paths: kubepods-burstable-pod<uid with '_'>.slice (systemd) or /pod<uid>/ (cgroupfs).
_POD_RE = re.compile(r"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})")
_KUBE_CONTAINER_RE = re.compile(r"/kubepods[^ ]*/pod[0-9a-f_-]{36}(?:\.slice)?/(?:[a-z-]+-)?" + _ID)
_NSPAWN_RE = re.compile(r"(?:systemd-nspawn@([^/]+)\.service|machine-([^/]+)\.scope)")
_LXC_RE = re.compile(r"lxc\.payload\.([^/]+)")
PODMAN_CONTAINERS = ("/var/lib/containers/storage/overlay-containers/containers.json",)
DOCKER_CONTAINERS = "/var/lib/docker/containers"
KUBE_POD_LOGS = "/var/log/pods"


def _host(root, path):
    return os.path.join(root, path.lstrip("/"))


def _read(root, path, limit=65536):
    try:
        with open(_host(root, path), "rb") as handle:
            return handle.read(limit).decode("utf-8", "replace")
    except OSError:
        return None  # absent, or the process exited: that part of the owner is unknown (None), never a failure


def ns_inode(root, path):
    """``(device, inode)`` of a namespace file (a /proc/PID/ns/net link or an ip netns bind mount)."""
    st = os.stat(_host(root, path))
    return st.st_dev, st.st_ino


def parse_cgroup(text):
    """``{"cgroup", "runtime", "container_id", "pod_uid", "name"}`` from /proc/PID/cgroup (keys None when unknown)."""
    lines = (text or "").splitlines()
    path = ""
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3 and parts[0] == "0" and parts[2] not in ("", "/"):
            path = parts[2]
    if not path:
        for line in lines:
            parts = line.split(":", 2)
            if len(parts) == 3 and parts[1] in ("name=systemd", "memory", "pids") and parts[2] not in ("", "/"):
                path = parts[2]
                break
    out = {"cgroup": path or None, "runtime": None, "container_id": None, "pod_uid": None, "name": None}
    pod = _POD_RE.search(path)
    if pod:
        out["pod_uid"] = pod.group(1).replace("_", "-")
    for runtime, pattern in _CGROUP_RULES:
        match = pattern.search(path)
        if match:
            out["runtime"] = runtime
            out["container_id"] = next(g for g in match.groups() if g)
            break
    if out["runtime"] is None and pod:
        match = _KUBE_CONTAINER_RE.search(path)
        out["runtime"] = "kubernetes"
        out["container_id"] = match.group(1) if match else None
    if out["runtime"] is None:
        match = _NSPAWN_RE.search(path)
        if match:
            out["runtime"], out["name"] = "systemd-nspawn", (match.group(1) or match.group(2)).replace("\\x2d", "-")
        else:
            match = _LXC_RE.search(path)
            if match:
                out["runtime"], out["name"] = "lxc", match.group(1)
    return out


class Names(object):
    """Container and pod names the runtimes keep on disk, looked up lazily and once."""

    def __init__(self, root="/"):
        self.root = root
        self._podman = None
        self._pods = None

    def podman(self, container_id):
        if self._podman is None:
            self._podman = {}
            for path in PODMAN_CONTAINERS:
                try:
                    for item in json.loads(_read(self.root, path, 1 << 24) or "[]"):
                        if item.get("id") and item.get("names"):
                            self._podman[item["id"]] = item["names"][0]
                except (ValueError, TypeError, AttributeError):
                    continue  # not the JSON podman writes (a newer layout, a torn write): names unknown, ids still shown
        return self._podman.get(container_id)

    def docker(self, container_id):
        text = _read(self.root, "%s/%s/config.v2.json" % (DOCKER_CONTAINERS, container_id), 1 << 22)
        try:
            return (json.loads(text or "{}").get("Name") or "").lstrip("/") or None
        except (ValueError, AttributeError):
            return None  # not the JSON docker writes: the container is named by its id

    def pod(self, pod_uid):
        """``(kubernetes namespace, pod name)`` from /var/log/pods/<namespace>_<pod>_<uid>, or (None, None)."""
        if self._pods is None:
            self._pods = {}
            try:
                entries = os.listdir(_host(self.root, KUBE_POD_LOGS))
            except OSError:
                entries = []  # no kubelet on this host, or its logs elsewhere: pods are named by their UID
            for entry in entries:
                parts = entry.rsplit("_", 2)
                if len(parts) == 3:
                    self._pods[parts[2]] = (parts[0], parts[1])
        return self._pods.get(pod_uid, (None, None))


def _status_uid(text):
    for line in (text or "").splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    return None


# How many of the paths counted as not_permitted the scan names (a root run normally has none; an unprivileged one
# could have hundreds, which the count already says).
NOT_PERMITTED_SHOWN = 10


def not_permitted(scan, path):
    """Count ``path`` (a /proc/PID/ns/net link or a namespace file) as not permitted, and name it while there is room."""
    scan["not_permitted"] += 1
    if len(scan["not_permitted_paths"]) < NOT_PERMITTED_SHOWN:
        scan["not_permitted_paths"].append(path)


def enumerate_netns(root="/", limit=200, budget=None, clock=time.monotonic, table=None):
    """Every network namespace other than the caller's, with the processes and names that tell whose it is.

    Returns ``(namespaces, own_inode, scan)``: ``namespaces`` a list of
    ``{"inode", "path", "netns_name", "pids"}`` (``path`` a file to enter it by, the ``ip netns`` name if any, the
    pids in it sorted), ``scan`` counts of ``processes`` looked at, ``not_permitted`` (links the caller may not
    read; the first NOT_PERMITTED_SHOWN of them in ``not_permitted_paths``), ``vanished`` (processes that exited
    during the scan), ``stale`` (ip netns names left behind by a namespace that is gone) and ``left_out`` (namespaces
    beyond ``limit`` or found after ``budget`` seconds). The processes come from ``table`` (an
    ``processes.ProcessTable``, the one walk of /proc of a scan), read now when not given.
    """
    start = clock()
    scan = {"processes": 0, "not_permitted": 0, "not_permitted_paths": [], "vanished": 0, "stale": 0, "left_out": 0,
            "limit": limit, "timed_out": False}
    own_dev, own = ns_inode(root, "/proc/self/ns/net")
    found = {}

    def add(inode, path, pid=None, name=None):
        entry = found.get(inode)
        if entry is None:
            entry = found[inode] = {"inode": inode, "path": path, "netns_name": None, "pids": []}
        if pid is not None:
            entry["pids"].append(pid)
        if name and not entry["netns_name"]:
            entry["netns_name"] = name
            entry["path"] = path  # a bind mount outlives the processes: the surer way in

    for directory in NETNS_DIRS:
        try:
            names = sorted(os.listdir(_host(root, directory)))
        except OSError:
            continue  # no such directory: no ip netns names there
        for name in names:
            path = "%s/%s" % (directory, name)
            try:
                dev, inode = ns_inode(root, path)
            except OSError as exc:
                if exc.errno in (errno.EACCES, errno.EPERM):
                    not_permitted(scan, path)
                else:
                    scan["vanished"] += 1
                continue
            if dev != own_dev:
                # A file that is no namespace (an ip netns name whose namespace is gone leaves an empty file
                # behind): namespaces all live on the one nsfs device.
                scan["stale"] += 1
            elif inode != own:
                add(inode, path, name=name)
    try:
        rows = (table or ProcessTable(root)).rows
    except OSError:
        rows = []  # /proc cannot be listed (a recorded tree without it): the ip netns names are all there is
    for pid, _name, _uid, link in rows:
        if budget is not None and clock() - start > budget:
            scan["timed_out"] = True
            break
        scan["processes"] += 1
        if not isinstance(link, str):
            if link in (errno.EACCES, errno.EPERM):
                not_permitted(scan, "/proc/%d/ns/net" % pid)
            else:
                scan["vanished"] += 1
            continue
        inode = int(link[5:-1])  # net:[N]
        if inode != own:
            add(inode, "/proc/%d/ns/net" % pid, pid=pid)
    namespaces = sorted(found.values(), key=lambda e: (e["pids"][0] if e["pids"] else 1 << 30, e["inode"]))
    if len(namespaces) > limit:
        scan["left_out"] = len(namespaces) - limit
        namespaces = namespaces[:limit]
    return namespaces, own, scan


def owner(root, entry, names, users, max_processes=5):
    """Who holds a namespace: ``{processes, process_count, netns_name, runtime, container_id, container_name,
    pod_uid, pod_name, pod_namespace, cgroup}``; every part that cannot be told is None."""
    processes = []
    for pid in entry["pids"][:max_processes]:
        comm = _read(root, "/proc/%d/comm" % pid)
        uid = _status_uid(_read(root, "/proc/%d/status" % pid))
        if comm is None:
            continue
        processes.append({"pid": pid, "comm": comm.strip(), "user": None if uid is None else user_name(uid, users)})
    info = {"cgroup": None, "runtime": None, "container_id": None, "pod_uid": None, "name": None}
    for pid in entry["pids"][:max_processes]:
        info = parse_cgroup(_read(root, "/proc/%d/cgroup" % pid))
        if info["runtime"]:
            break
    container_name = info["name"]
    if info["runtime"] == "podman":
        container_name = names.podman(info["container_id"])
    elif info["runtime"] == "docker":
        container_name = names.docker(info["container_id"])
    pod_namespace, pod_name = names.pod(info["pod_uid"]) if info["pod_uid"] else (None, None)
    return {
        "processes": processes, "process_count": len(entry["pids"]), "netns_name": entry["netns_name"],
        "runtime": info["runtime"], "container_id": info["container_id"], "container_name": container_name,
        "pod_uid": info["pod_uid"], "pod_name": pod_name, "pod_namespace": pod_namespace, "cgroup": info["cgroup"],
    }


def label(own):
    """A short human name for an owner: container name or id, pod, netns name, or the first process."""
    if own.get("pod_name"):
        return "pod %s/%s" % (own["pod_namespace"], own["pod_name"])
    if own.get("container_name"):
        return "%s %s" % (own["runtime"], own["container_name"])
    if own.get("container_id"):
        return "%s %s" % (own["runtime"], own["container_id"][:12])
    if own.get("runtime"):
        return own["runtime"]
    if own.get("netns_name"):
        return "netns %s" % own["netns_name"]
    if own.get("processes"):
        first = own["processes"][0]
        return "%s (pid %d)" % (first["comm"], first["pid"])
    return "unnamed"
