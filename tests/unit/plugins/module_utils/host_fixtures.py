"""Shared helpers for the _host and _tcp unit tests: fake /proc trees of processes and of a host with containers."""
import json
import os


def make_proc(root, procs):
    """procs: {pid: (comm, netns_link, [fd targets])}"""
    base = os.path.join(root, "proc")
    os.makedirs(base, exist_ok=True)
    os.makedirs(os.path.join(base, "sys"), exist_ok=True)  # non-numeric entries are ignored
    for pid, (comm, netns, targets) in procs.items():
        pdir = os.path.join(base, str(pid))
        os.makedirs(os.path.join(pdir, "fd"))
        os.makedirs(os.path.join(pdir, "ns"))
        with open(os.path.join(pdir, "comm"), "w", encoding="ascii") as handle:
            handle.write(comm + "\n")
        os.symlink(netns, os.path.join(pdir, "ns", "net"))
        for fd, target in enumerate(targets):
            os.symlink(target, os.path.join(pdir, "fd", str(fd)))
    return root


def sockets_tree(root):
    """Four processes in two namespaces holding sockets 101-104 and 500 (101 shared after fork)."""
    return make_proc(root, {
        1: ("init", "net:[1]", ["/dev/null", "socket:[500]"]),
        20: ("web", "net:[2]", ["/dev/null", "pipe:[9]", "socket:[101]", "socket:[102]"]),
        30: ("worker", "net:[2]", ["socket:[101]", "anon_inode:[eventpoll]", "socket:[103]"]),
        40: ("other", "net:[1]", ["socket:[104]"]),
    })


def fake_fd_counts(monkeypatch, sizes):
    """Make st_size of /proc/PID/fd report ``sizes[pid]`` descriptors, as Linux 6.2+ does."""
    real_stat = os.stat

    def fake_stat(path, *args, **kwargs):
        parts = str(path).rstrip("/").split("/")
        if parts[-1] == "fd" and parts[-2] in sizes:
            return os.stat_result((0o40555, 0, 0, 2, 0, 0, sizes[parts[-2]], 0, 0, 0))
        return real_stat(path, *args, **kwargs)
    monkeypatch.setattr(os, "stat", fake_stat)


PODMAN_ID = "86bef0b4fed8a9ae2e55fc52a42c174e290e914a14e452d6bd01985fc872ccef"
DOCKER_ID = "4c01db0b339c3f0f0f1d2a6b6a3c1e8f7d5b3a2c1e0f9d8c7b6a5f4e3d2c1b0a"
CRI_ID = "9f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e"
POD_UID = "3a1f5c2e-8b4d-4e6f-9a0b-1c2d3e4f5a6b"


def put(root, path, text):
    full = os.path.join(root, path.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as handle:
        handle.write(text)


def fake_host(root):
    """Host netns (pids 1, 50), a podman container (pids 700, 701), a pod (900), a named netns without processes."""
    put(root, "/proc/1/ns/net", "host")
    put(root, "/proc/self/ns/net", "x")
    os.unlink(os.path.join(root, "proc/self/ns/net"))
    os.link(os.path.join(root, "proc/1/ns/net"), os.path.join(root, "proc/self/ns/net"))
    put(root, "/proc/50/ns/net", "x")
    os.unlink(os.path.join(root, "proc/50/ns/net"))
    os.link(os.path.join(root, "proc/1/ns/net"), os.path.join(root, "proc/50/ns/net"))
    put(root, "/run/netns/netns-28476392", "podman")          # podman's named netns of its container
    for pid in (700, 701):
        os.makedirs(os.path.join(root, "proc/%d/ns" % pid))
        os.link(os.path.join(root, "run/netns/netns-28476392"), os.path.join(root, "proc/%d/ns/net" % pid))
        put(root, "/proc/%d/comm" % pid, "leaky-app\n" if pid == 700 else "sh\n")
        put(root, "/proc/%d/status" % pid, "Name:\tx\nUid:\t0\t0\t0\t0\n")
        put(root, "/proc/%d/cgroup" % pid, "0::/libpod_parent/libpod-%s\n" % PODMAN_ID)
    put(root, "/proc/900/ns/net", "pod")
    put(root, "/proc/900/comm", "nginx\n")
    put(root, "/proc/900/status", "Uid:\t101\t101\t101\t101\n")
    put(root, "/proc/900/cgroup", "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod%s.slice/cri-containerd-%s.scope\n"
        % (POD_UID.replace("-", "_"), CRI_ID))
    put(root, "/run/netns/lab", "lab")
    put(root, "/var/lib/containers/storage/overlay-containers/containers.json",
        json.dumps([{"id": PODMAN_ID, "names": ["leaky"]}]))
    os.makedirs(os.path.join(root, "var/log/pods/shop_web-7d4b9_%s/nginx" % POD_UID))
