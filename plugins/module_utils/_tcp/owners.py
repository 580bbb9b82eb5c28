# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Map socket inodes to the processes holding them by walking /proc/PID/fd, stopping early.

Only the inodes asked for are looked up, and the walk ends as soon as every required one has an owner, so
the cost is the number of descriptors read before the last wanted socket is found, not every fd on the host.
Processes most likely to hold the sockets are read first: those in the inspected network namespace
whose owner uid matches a wanted socket's uid, then the rest of that namespace, then everything else
(a socket keeps the namespace it was created in, even when its holder later moves, so nothing is skipped);
within each group, processes with fewer open descriptors first (``_host.processes.ProcessTable.order``).

TIME_WAIT, SYN_RECV and orphaned FIN_WAIT2 sockets have inode 0: they have no owner and are never asked for.
"""

import os

from ansible_collections.linuxnet.tcp.plugins.module_utils._host.processes import ProcessTable, user_name

_SOCKET_PREFIX = "socket:["


def _comm(proc, pid):
    try:
        with open(os.path.join(proc, pid, "comm"), "rb") as handle:
            return handle.read().decode("utf-8", "replace").rstrip("\n")
    except OSError:
        return None


def find_owners(inodes, root="/", netns=None, uids=(), optional=(), budget=10000, table=None):
    """Owners of ``inodes`` (required) and, while it stays cheap, of ``optional`` inodes.

    The walk goes on until every required inode is found. Once only optional inodes are left, a process is
    read only if the descriptors read so far plus its own stay within ``budget``, so a host with hundreds of
    thousands of sockets does not pay a full descriptor walk for owners nobody is asking about.
    ``netns`` is the ``net:[N]`` link text of the inspected namespace and ``uids`` the socket owners' uids
    from the socket table (both only order the scan). ``table``: a ProcessTable read earlier (one for a scan of
    every namespace); by default one is read now.
    Returns ``(owners, info)``: ``owners`` maps inode -> list of ``{pid, name, user}`` (several processes
    share a socket after fork; all holders met before the walk ends are listed), ``info`` is
    ``{processes_scanned, processes_denied, fds_read, complete, fds}`` where ``complete`` tells whether every
    required inode was found and ``fds`` maps (inode, pid) to the descriptor numbers the socket has in that
    process (_tcp/acceptors.py reads what the process waits on through them).
    """
    required = set(inodes)
    required.discard(0)
    wanted = required | set(optional)
    wanted.discard(0)
    owners = {}
    info = {"processes_scanned": 0, "processes_denied": 0, "fds_read": 0, "complete": True, "fds": {}}
    if not wanted:
        return owners, info
    proc = os.path.join(root, "proc")
    users = {}
    missing = set(required)
    extra = wanted - required
    readlink = os.readlink
    for _prio, nfds, pid, name, uid in (table or ProcessTable(root)).order(netns, set(uids)):
        if not missing and (not extra or info["fds_read"] + nfds > budget):
            if not extra or not nfds:
                break
            continue  # too large to read for optional owners only; a smaller process may follow
        try:
            dfd = os.open(os.path.join(proc, name, "fd"), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except PermissionError:
            info["processes_denied"] += 1
            continue
        except OSError:
            continue  # exited, or a kernel thread without an fd table
        info["processes_scanned"] += 1
        found = []
        try:
            fds = os.listdir(dfd)
            info["fds_read"] += len(fds)
            for fd in fds:
                try:
                    target = readlink(fd, dir_fd=dfd)
                except OSError:
                    continue  # closed while we looked
                if target.startswith(_SOCKET_PREFIX):
                    ino = int(target[8:-1])
                    if ino in wanted:
                        found.append(ino)
                        info["fds"].setdefault((ino, pid), []).append(int(fd))
        except OSError:
            info["processes_denied"] += 1
        finally:
            os.close(dfd)
        if found:
            holder = {"pid": pid, "name": _comm(proc, name), "user": user_name(uid, users)}
            for ino in set(found):
                owners.setdefault(ino, []).append(holder)
            missing.difference_update(found)
            extra.difference_update(found)
    info["complete"] = not missing
    return owners, info
