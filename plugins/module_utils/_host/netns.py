# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Enter a network namespace by path for a block of work, and always come back.

setns(2) with CLONE_NEWNET moves only the calling thread; netlink sockets, /proc/net and /proc/sys/net
opened afterwards belong to the new namespace. The original namespace is kept open as a file descriptor
and restored in ``finally``, so no exception can leave the process in the container's namespace.
"""

import errno
import fcntl
import os
import re
from contextlib import contextmanager
from ansible_collections.linuxnet.tcp.plugins.module_utils._common import LinuxnetError

CLONE_NEWNET = 0x40000000
# NS_GET_NSTYPE = _IO(0xb7, 0x3) from include/uapi/linux/nsfs.h (Linux 4.11+).
NS_GET_NSTYPE = 0xB703
# init_net's fixed inode number, PROC_NET_INIT_INO in include/linux/proc_ns.h, since the nsfs changes merged
# for Linux 6.18 (net_ns_net_init() in net/core/net_namespace.c). Older kernels allocate it like any other
# namespace; there we compare with PID 1's namespace instead.
PROC_NET_INIT_INO = 0xEFFFFFF9
FIXED_INO_SINCE = (6, 18)


class NetnsError(LinuxnetError):
    """The path is not a usable network namespace, or entering/leaving it failed."""


class NetnsReturnError(NetnsError):
    """Coming back to the original network namespace failed: nothing else may run, the process must stop."""


_LIBC = []  # the ctypes handle of libc, loaded on the first setns() of a process without os.setns


def _setns(fd):
    if hasattr(os, "setns"):  # Python 3.12+
        os.setns(fd, CLONE_NEWNET)
        return
    # Imported here: ctypes costs more than the rest of a facts run's imports, and only a netns run needs it.
    # CDLL(None) is the running program, whose symbols include libc's setns().
    import ctypes  # pylint: disable=import-outside-toplevel

    if not _LIBC:
        _LIBC.append(ctypes.CDLL(None, use_errno=True))
    if _LIBC[0].setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def open_netns(path):
    """Open ``path`` and check that it is a network namespace; return the fd (caller closes)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise NetnsError("netns: cannot open %s: %s" % (path, exc.strerror)) from exc
    try:
        kind = fcntl.ioctl(fd, NS_GET_NSTYPE)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.ENOTTY, errno.EINVAL):
            raise NetnsError("netns: %s is not a namespace file; expected a path such as /run/netns/NAME "
                             "or /proc/PID/ns/net" % path) from None
        raise NetnsError("netns: cannot inspect %s: %s" % (path, exc.strerror)) from exc
    if kind != CLONE_NEWNET:
        os.close(fd)
        raise NetnsError("netns: %s is a namespace but not a network namespace; expected a path such as "
                         "/run/netns/NAME or /proc/PID/ns/net" % path)
    return fd


@contextmanager
def entered(path, root="/"):
    """Run the block inside the network namespace at ``path`` (no-op when ``path`` is None)."""
    if path is None:
        yield
        return
    target = open_netns(path)
    try:
        home = os.open(os.path.join(root, "proc", "thread-self", "ns", "net"), os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        os.close(target)
        raise NetnsError("netns: cannot save the current network namespace: %s" % exc.strerror) from exc
    try:
        try:
            _setns(target)
        except OSError as exc:
            raise NetnsError("netns: cannot enter %s: %s (entering another network namespace needs "
                             "CAP_SYS_ADMIN)" % (path, exc.strerror)) from exc
        try:
            yield
        finally:
            try:
                _setns(home)
            except OSError as exc:
                # Nothing else may run in the wrong namespace: stop here with the reason.
                raise NetnsReturnError("netns: cannot return to the original network namespace: %s" % exc.strerror) from exc
    finally:
        os.close(target)
        os.close(home)


def is_initial(root="/", path=None):
    """True/False when the namespace at ``path`` (default: this thread's) is (not) the host's initial one,
    None if unknown. Call it from the original namespace: after setns(2) the kernel refuses access to
    /proc/*/ns links whose namespace differs (EACCES)."""
    try:
        here = os.stat(path or os.path.join(root, "proc", "thread-self", "ns", "net")).st_ino
    except OSError:
        return None
    if here == PROC_NET_INIT_INO:
        return True
    if kernel_version() >= FIXED_INO_SINCE:
        return False
    try:
        return here == os.stat(os.path.join(root, "proc", "1", "ns", "net")).st_ino
    except OSError:
        return None


def kernel_version(release=None):
    """(major, minor) of a kernel release string such as ``6.1.0-18-amd64``; (0, 0) if unparsable."""
    release = release or os.uname().release
    match = re.match(r"(\d+)\.(\d+)", release)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)
