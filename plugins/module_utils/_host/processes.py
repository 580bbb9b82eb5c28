# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The host's processes as the collection reads them from /proc: one walk of every process (``ProcessTable``),
a process's program (``program_of``), every process's command line (``commands``, what _agents detects other
programs by), user names, and namespace identities (``netns_link``).

Which process holds which socket is TCP's question: ``_tcp/owners.py`` answers it from this table.
"""

import errno
import os
import pwd

from ansible_collections.linuxnet.tcp.plugins.module_utils._common import read_text


def user_name(uid, cache):
    """The name of ``uid`` (its number as text when it has none), remembered in ``cache``."""
    name = cache.get(uid)
    if name is None:
        try:
            name = pwd.getpwuid(uid).pw_name
        except (KeyError, OverflowError):  # OverflowError: a uid beyond the C type (a corrupt status line)
            name = str(uid)
        cache[uid] = name
    return name


class ProcessTable(object):
    """One walk of /proc: each process's pid, owner uid and network namespace (and, on the first lookup, its
    descriptor count).

    A scan of every namespace of a host walks /proc once: the namespaces are found from this table
    (``namespaces.enumerate_netns``) and each namespace's owner lookup is ordered from it (``order()``); a
    lookup for one namespace reads its own. The descriptors themselves are read by ``_tcp.owners.find_owners`` when it needs
    them, never kept. The namespace is the ``net:[N]`` text of /proc/PID/ns/net, or the errno that refused it
    (EACCES for an unprivileged caller, ENOENT for a process that exited).
    """

    def __init__(self, root="/"):
        self.proc = os.path.join(root, "proc")
        self.rows = []  # (pid, name, uid, "net:[N]" or errno), in pid order
        self._nfds = None
        self._kept = {}
        for entry in os.scandir(self.proc):
            name = entry.name
            if not name.isdigit():
                continue
            try:
                uid = entry.stat().st_uid
            except OSError:
                continue  # the process exited
            self.rows.append((int(name), name, uid, _netns_of(os.path.join(self.proc, name, "ns", "net"))))
        self.rows.sort()

    def order(self, netns, uids):
        """Rows as (priority, fd count, pid, name, uid), most promising and cheapest first.

        ``netns`` is the ``net:[N]`` text of the inspected namespace. Within a priority, processes with fewer
        descriptors come first (shortest job first): a small process costs little to rule in or out, and the
        wanted sockets are often held by one of them. The count is the st_size of /proc/PID/fd (Linux 6.2+,
        commit f1f1f2569901 "fs/proc: add st_size support for /proc/<pid>/fd"); older kernels report 0 and
        the order falls back to pid order. It is read once per table, on the first lookup.
        """
        if self._nfds is None:
            counts = []  # complete before it is shared: lookups may run in several threads
            for _pid, name, _uid, _netns in self.rows:
                try:
                    counts.append(os.stat(os.path.join(self.proc, name, "fd")).st_size)
                except OSError:
                    counts.append(0)  # exited since the walk: sorts first and costs nothing to rule out
            self._nfds = counts
        order = []
        for (pid, name, uid, ns), nfds in zip(self.rows, self._nfds):
            prio = 2
            if netns is not None and ns == netns:
                prio = 0 if uid in uids else 1
            order.append((prio, nfds, pid, name, uid))
        order.sort()
        return order

    def pids_in(self, netns):
        """The pids whose network namespace is ``netns`` (``net:[N]``)."""
        return {pid for pid, _name, _uid, ns in self.rows if ns == netns}

    def kept(self, key, compute):
        """``compute()``, computed on the first call for ``key`` and kept for the rest of the scan (a map of every
        process's parent for _acceptors: one read of /proc per scan, not one per listener in trouble). Threads that
        race compute the same thing; either result is kept."""
        if key not in self._kept:
            self._kept[key] = compute()
        return self._kept[key]


def _netns_of(path):
    """``net:[N]`` of a /proc/PID/ns/net link, or the errno that refused it. A plain file (a recorded tree)
    gives its inode, as the link's target names the inode of the namespace file."""
    try:
        return os.readlink(path)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            return exc.errno
    try:
        return "net:[%d]" % os.stat(path).st_ino
    except OSError as exc:
        return exc.errno


def program_of(root, pid):
    """``(exe, cgroup)`` of a process: the path of its executable (``/proc/PID/exe``, readable for one's own
    processes or as root) and its cgroup v2 path (``0::/...`` of ``/proc/PID/cgroup``; on a v1-only host the
    systemd hierarchy's). Each is None when it cannot be read. Workers of one program share both, whatever
    their comm or pid: that is how a prefork server's leak is added up across its workers."""
    base = os.path.join(root, "proc", str(pid))
    try:
        exe = os.readlink(os.path.join(base, "exe"))
        if exe.endswith(" (deleted)"):
            exe = exe[:-10]  # the binary was upgraded under the running process: still the same program
    except OSError:
        exe = None
    cgroup = None
    try:
        with open(os.path.join(base, "cgroup"), "rb") as handle:
            for line in handle.read().decode("utf-8", "replace").splitlines():
                ident, _controllers, path = (line.split(":", 2) + ["", ""])[:3]
                if ident == "0" or (cgroup is None and "name=systemd" in _controllers):
                    cgroup = path
    except OSError:
        pass
    return exe, cgroup


def netns_link(root="/", path=None):
    """``net:[N]`` identity of ``path`` (a namespace file) or of this process; None if unreadable."""
    try:
        if path is None:
            return os.readlink(os.path.join(root, "proc", "self", "ns", "net"))
        return "net:[%d]" % os.stat(path).st_ino
    except OSError:
        return None


def commands(root="/"):
    """Every process of ``root``/proc as ``{pid, comm, argv}``, in the order of the names' sorted text; kernel
    threads have an empty argv. What _agents detects other programs by. /proc files are regular files, read with
    _common.read_text like any file of a target tree; a process that exits during the walk is left out."""
    proc = os.path.join(root, "proc")
    try:
        names = sorted(os.listdir(proc))
    except OSError:
        return []  # no /proc (an empty tree): no processes
    out = []
    for name in names:
        if not name.isdigit():
            continue
        comm = read_text(root, "/proc/%s/comm" % name)
        if comm is None:
            continue
        argv = (read_text(root, "/proc/%s/cmdline" % name) or "").split("\0")
        while argv and argv[-1] == "":
            argv.pop()
        out.append({"pid": int(name), "comm": comm.rstrip("\n"), "argv": argv})
    return out
