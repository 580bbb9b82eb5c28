# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fake /proc/sys trees and file helpers shared by the sysctl engine's unit tests."""
import errno
import os

from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.tree import SysctlTree

# A host (init netns) as seen on the 6.18 reference machine, trimmed.
HOST = {
    "kernel/osrelease": "6.18.44-test",
    "net/core/somaxconn": "4096", "net/core/netdev_max_backlog": "1000", "net/core/rmem_max": "4194304",
    "net/ipv4/tcp_fin_timeout": "60", "net/ipv4/tcp_tw_reuse": "2", "net/ipv4/tcp_timestamps": "1",
    "net/ipv4/tcp_max_tw_buckets": "131072", "net/ipv4/tcp_max_orphans": "131072", "net/ipv4/tcp_keepalive_time": "7200",
    "net/ipv4/tcp_syn_retries": "6", "net/ipv4/ip_local_port_range": "32768\t60999",
    "net/ipv4/ip_unprivileged_port_start": "1024", "net/ipv4/ip_local_reserved_ports": "",
    "net/ipv4/tcp_rmem": "4096\t131072\t33554432", "net/ipv4/tcp_available_congestion_control": "reno cubic",
    "net/ipv4/conf/eth0.100/forwarding": "0",
    "net/netfilter/nf_conntrack_max": "262144", "net/netfilter/nf_conntrack_tcp_timeout_established": "432000",
}
READ_ONLY_HOST = ("net/ipv4/tcp_available_congestion_control",)


def make_tree(base, files=None, read_only=READ_ONLY_HOST, modules=("nf_conntrack",), child=False):
    """Write a fake /proc/sys (and /sys/module) under ``base``; return the root path."""
    files = dict(HOST if files is None else files)
    read_only = tuple(read_only)
    if child:
        # Child netns on 6.18: init_net-only keys absent, globals visible read-only.
        for key in ("net/core/netdev_max_backlog", "net/ipv4/tcp_max_orphans"):
            files.pop(key, None)
        read_only += ("net/core/rmem_max", "net/netfilter/nf_conntrack_max")
    root = str(base)
    for key, value in files.items():
        path = os.path.join(root, "proc", "sys", key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(value + "\n")
        os.chmod(path, 0o444 if key in read_only else 0o644)
    for module in modules:
        os.makedirs(os.path.join(root, "sys", "module", module), exist_ok=True)
    return root


def raw(root, key):
    with open(os.path.join(root, "proc", "sys", key)) as handle:
        return handle.read()


class FakeKernel(SysctlTree):
    """A tree whose writes behave like kernel handlers: errno for rejected values, optional clamping."""

    def __init__(self, root, reject=None, clamp=None):
        super(FakeKernel, self).__init__(root)
        self.reject = reject or {}
        self.clamp = clamp or {}
        self.writes = []

    def write(self, key, value):
        self.writes.append((key, value))
        if key in self.reject and value in self.reject[key]:
            raise OSError(self.reject[key][value], os.strerror(self.reject[key][value]))
        super(FakeKernel, self).write(key, self.clamp.get(key, {}).get(value, value))


LISTEN_TAIL = " 00000000:00000000 00:00000000 00000000     0        0 %d 1 0000000000000000 100 0 0 10 0\n"


def with_listeners(root, ports):
    """Add /proc/net/tcp with LISTEN sockets on ``ports`` to a fake root."""
    os.makedirs(os.path.join(root, "proc", "net"), exist_ok=True)
    with open(os.path.join(root, "proc", "net", "tcp"), "w") as handle:
        handle.write("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n")
        for number, port in enumerate(ports):
            handle.write("%4d: 00000000:%04X 00000000:0000 0A" % (number, port) + LISTEN_TAIL % (number + 1))
    return root


def put(root, path, text):
    full = os.path.join(root, path.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as handle:
        handle.write(text)


def read(root, path):
    full = os.path.join(root, path.lstrip("/"))
    if not os.path.exists(full):
        return None
    with open(full) as handle:
        return handle.read()


def dirs(root):
    """Every directory under root, relative: to prove a run left no directory behind."""
    return sorted(os.path.relpath(base, root) for base, _dirs, _files in os.walk(root))


def snapshot(root):
    """Every file under root with its content and mtime, to prove a run wrote nothing."""
    out = {}
    for base, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(base, name)
            with open(path, "rb") as handle:
                out[path] = (handle.read(), os.stat(path).st_mtime_ns)
    return out


DROPIN = "/etc/sysctl.d/90-linuxnet-web.conf"
STATE = "/var/lib/linuxnet-tcp/sysctl-web.json"


MODULES_FILE = "/etc/modules-load.d/90-linuxnet-web.conf"
MODPROBE_FILE = "/etc/modprobe.d/90-linuxnet-web.conf"
CONNTRACK = {"net.netfilter.nf_conntrack_tcp_timeout_established": 86400}


class FakeModprobe(object):
    """modprobe(argv) that 'loads' a module by creating /sys/module/NAME, or fails for the names in ``broken``."""

    def __init__(self, root, broken=(), keys=None):
        self.root, self.broken, self.keys, self.calls = root, broken, keys or {}, []

    def __call__(self, argv):
        self.calls.append(list(argv))
        name = argv[-1]
        if name in self.broken:
            return 1, "", "modprobe: FATAL: Module %s not found in directory /lib/modules/6.18.44-test\n" % name
        os.makedirs(os.path.join(self.root, "sys", "module", name))
        for key, value in self.keys.get(name, {}).items():
            put(self.root, "/proc/sys/" + key, value + "\n")
        return 0, "", ""


def conntrack_host(tmp_path):
    """A host where nf_conntrack is not loaded yet: its keys appear when the fake modprobe loads it."""
    files = dict((k, v) for k, v in HOST.items() if not k.startswith("net/netfilter/"))
    root = make_tree(tmp_path, files, modules=())
    return root, FakeModprobe(root, keys={"nf_conntrack": {"net/netfilter/nf_conntrack_tcp_timeout_established": "432000"}})


class DiskFault(object):
    """One directory of a fake root turned full (``ENOSPC``: write(2) into a file there fails) or read-only (``EROFS``:
    creating, renaming, removing there fails), as a real file system does; installed with ``monkeypatch``.

    The file a descriptor writes to is read from /proc/self/fd, so the fault hits the temporary files the code makes.
    """

    def __init__(self, monkeypatch, root, directory, err=errno.ENOSPC):
        self.base = os.path.join(root, directory.strip("/")) + "/"
        self.err, self.hits = err, []
        real = dict((n, getattr(os, n)) for n in ("write", "open", "replace", "rename", "unlink", "mkdir", "rmdir"))

        def inside(path):
            return os.path.abspath(path).startswith(self.base)

        def fail(path):
            self.hits.append(path)
            raise OSError(self.err, os.strerror(self.err), path)

        def write(fd, data):
            if self.err == errno.ENOSPC and inside(os.readlink("/proc/self/fd/%d" % fd)):
                fail(os.readlink("/proc/self/fd/%d" % fd))
            return real["write"](fd, data)

        def open_(path, flags, *args, **kwargs):
            if self.err == errno.EROFS and flags & (os.O_CREAT | os.O_WRONLY | os.O_RDWR) and inside(path):
                fail(path)
            return real["open"](path, flags, *args, **kwargs)

        def path_op(name):
            def op(path, *args, **kwargs):
                targets = [path] + [a for a in args if isinstance(a, str)]
                if self.err == errno.EROFS and any(inside(t) for t in targets):
                    fail(path)
                return real[name](path, *args, **kwargs)
            return op

        monkeypatch.setattr(os, "write", write)
        monkeypatch.setattr(os, "open", open_)
        for name in ("replace", "rename", "unlink", "mkdir", "rmdir"):
            monkeypatch.setattr(os, name, path_op(name))


def reference_layout(root):
    """The precedence scenario verified with systemd 252 and procps 4.0.2 (docs/sysctl.md)."""
    put(root, "/usr/lib/sysctl.d/50-a.conf", "net.ipv4.tcp_fin_timeout = 10\n")
    put(root, "/run/sysctl.d/50-a.conf", "net.ipv4.tcp_fin_timeout = 15\n")
    put(root, "/etc/sysctl.d/50-a.conf", "net.ipv4.tcp_fin_timeout = 20\n")
    put(root, "/etc/sysctl.d/10-c.conf", "net.ipv4.tcp_keepalive_time = 200\n")
    put(root, "/usr/lib/sysctl.d/60-b.conf", "net.ipv4.tcp_keepalive_time = 100\n")
    put(root, "/etc/sysctl.d/99-z.conf", "net.ipv4.tcp_keepalive_intvl = 40\n")
    put(root, "/etc/sysctl.conf", "net.ipv4.tcp_keepalive_intvl = 30\n")
    put(root, "/etc/sysctl.d/README.sysctl", "net.ipv4.tcp_keepalive_intvl = 1\n")
    put(root, "/etc/sysctl.d/.hidden.conf", "net.ipv4.tcp_keepalive_intvl = 2\n")
