# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which of the processes holding a listening socket accepts its connections.

After fork() every worker of a prefork server (nginx, Apache, php-fpm, gunicorn, uWSGI) holds the same listening
socket as its master, and the /proc walk of _host/processes.py stops at whichever holder it meets first. For an accept
queue that does not drain, the process to name is the one that should take connections off it, so the holders are
completed from the first one's relatives (its parent, children and siblings: the master and the workers) and
ranked by what the kernel shows of how each waits on the socket:

* ``accept``: a thread is blocked in accept()/accept4() on one of the socket's descriptors
  (``/proc/PID/task/TID/syscall``: the syscall number, then its arguments, the first being the fd);
* ``epoll``: one of the holder's epoll instances watches one of the socket's descriptors (``/proc/PID/fdinfo/EPFD``
  has a ``tfd: N`` line per watched descriptor, ep_show_fdinfo() in fs/eventpoll.c): an event loop that accepts
  when the socket is readable (nginx workers, most async servers);
* ``none``: it holds the socket without waiting on it (a master that only forks and supervises workers), or waits
  in a way not visible here (poll/select).

The state letter of ``/proc/PID/stat`` comes with each holder: a stopped (``T``) or traced (``t``) acceptor never
drains its queue, whatever it waits on. Reading another user's syscall and fdinfo files needs root (ptrace access);
what cannot be read counts as ``none``.
"""

import os

from ansible_collections.linuxnet.tcp.plugins.module_utils._host.processes import user_name

# accept and accept4 by machine (arch/x86/entry/syscalls/syscall_64.tbl, include/uapi/asm-generic/unistd.h).
_ACCEPT_SYSCALLS = {"x86_64": (43, 288), "aarch64": (202, 242), "riscv64": (202, 242), "s390x": (None, 364),
                    "ppc64le": (330, 344)}
_STATES = {"R": "running", "S": "sleeping", "D": "waiting for I/O", "T": "stopped", "t": "stopped by a tracer",
           "Z": "zombie", "X": "dead", "I": "idle"}
_RANK = {"accept": 0, "epoll": 0, "none": 1}
HOLDERS_CAP = 8


def _read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("ascii", "replace")
    except OSError:
        return None


def _stat(proc, pid):
    """(state letter, ppid) from /proc/PID/stat, or (None, None); comm may hold spaces and parentheses."""
    text = _read(os.path.join(proc, str(pid), "stat"))
    if not text or ")" not in text:
        return None, None
    fields = text[text.rindex(")") + 2:].split()
    try:
        return fields[0], int(fields[1])
    except (IndexError, ValueError):
        return None, None


def _parents(proc):
    """{pid: ppid} of every process (one small read per process; only done for a listener in trouble)."""
    out = {}
    for name in os.listdir(proc):
        if name.isdigit():
            _state, ppid = _stat(proc, name)
            if ppid is not None:
                out[int(name)] = ppid
    return out


def _socket_fds(proc, pid, inode):
    """Descriptor numbers of socket ``inode`` in process ``pid`` (empty when none or unreadable)."""
    fds = []
    path = os.path.join(proc, str(pid), "fd")
    target = "socket:[%d]" % inode
    try:
        names = os.listdir(path)
    except OSError:
        return fds
    for fd in names:
        try:
            if os.readlink(os.path.join(path, fd)) == target:
                fds.append(int(fd))
        except OSError:
            continue
    return fds


def _waits(proc, pid, fds):
    """How ``pid`` waits on descriptors ``fds``: "accept", "epoll" or "none"."""
    accepts = _ACCEPT_SYSCALLS.get(os.uname().machine, ())
    wanted = set(fds)
    task_dir = os.path.join(proc, str(pid), "task")
    try:
        tids = os.listdir(task_dir)
    except OSError:
        tids = []
    for tid in tids:
        words = (_read(os.path.join(task_dir, tid, "syscall")) or "").split()
        if len(words) >= 2 and words[0].isdigit() and int(words[0]) in accepts:
            try:
                if int(words[1], 16) in wanted:
                    return "accept"
            except ValueError:
                continue
    fd_dir = os.path.join(proc, str(pid), "fd")
    try:
        names = os.listdir(fd_dir)
    except OSError:
        return "none"
    for fd in names:
        try:
            if os.readlink(os.path.join(fd_dir, fd)) != "anon_inode:[eventpoll]":
                continue
        except OSError:
            continue
        for line in (_read(os.path.join(proc, str(pid), "fdinfo", fd)) or "").splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] == "tfd:" and words[1].isdigit() and int(words[1]) in wanted:
                return "epoll"
    return "none"


def rank(root, inode, holders, fds, table=None, netns=None):
    """The holders of listening socket ``inode``, completed and ranked: those that wait on it first (accept or
    epoll), then the others; a stopped or traced one after the running ones of the same rank; then by pid.

    ``holders`` are the ``{pid, name, user}`` found by owners.find_owners(), ``fds`` its ``{(inode, pid): [fd]}``.
    In a scan of every namespace, ``table`` is the scan's _host.processes.ProcessTable and ``netns`` the ``net:[N]`` of the
    socket's namespace: the parents are read once for the scan, and only relatives in that namespace are looked
    at (fork keeps the namespace; on a node where every container's processes are children of one runtime, the
    siblings in other namespaces would otherwise have their descriptors read for each listener in trouble).
    Returns ``(ranked, total)``: at most HOLDERS_CAP dicts ``{pid, name, user, state, waits, ppid}``, and how many
    processes hold the socket.
    """
    proc = os.path.join(root, "proc")
    known = {holder["pid"]: dict(holder) for holder in holders}
    socket_fds = {pid: list(fds.get((inode, pid)) or []) for pid in known}
    if table is None:
        parents, peers = _parents(proc), None
    else:
        parents, peers = table.kept("parents", lambda: _parents(proc)), table.pids_in(netns)
    users = {}
    # Relatives of the holders found: their parent, children and siblings (not the children of init or of pid 0).
    for _round in range(2):
        ups = {parents.get(pid) for pid in known} - {None, 0, 1}
        candidates = {pid for pid, ppid in parents.items() if ppid in known or ppid in ups or pid in ups}
        if peers is not None:
            candidates &= peers
        new = False
        for pid in sorted(candidates - set(known)):
            found = _socket_fds(proc, pid, inode)
            if found:
                comm = (_read(os.path.join(proc, str(pid), "comm")) or "").rstrip("\n") or None
                uid = _owner_uid(proc, pid)
                known[pid] = {"pid": pid, "name": comm, "user": None if uid is None else user_name(uid, users)}
                socket_fds[pid] = found
                new = True
        if not new:
            break
    rows = []
    for pid, holder in known.items():
        letter, ppid = _stat(proc, pid)
        waits = _waits(proc, pid, socket_fds.get(pid) or _socket_fds(proc, pid, inode))
        rows.append(dict(holder, state=_STATES.get(letter, letter), waits=waits, ppid=ppid))
    rows.sort(key=lambda row: (_RANK[row["waits"]], row["state"] in ("stopped", "stopped by a tracer", "zombie"),
                               row["pid"]))
    return rows[:HOLDERS_CAP], len(rows)


def _owner_uid(proc, pid):
    try:
        return os.stat(os.path.join(proc, str(pid))).st_uid
    except OSError:
        return None
