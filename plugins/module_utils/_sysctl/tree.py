# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tcp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``/proc/sys`` tree: read, classify, write, roll back. The only code that writes under ``/proc/sys``.

It reads and writes ``/proc/sys`` directly (no ``sysctl`` binary: procps exits 0 on some failures and
BusyBox reports false success). Every key is classified against the running kernel before any write, and a
batch is applied as a transaction with read-back and rollback.
"""

import errno
import os

from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import catalog
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import keys
from ansible_collections.linuxnet.tcp.plugins.module_utils._common import LinuxnetError

OK = "ok"
REMOVED = "removed"
MODULE_NOT_LOADED = "module_not_loaded"
GLOBAL_IN_CHILD_NETNS = "global_in_child_netns"
READ_ONLY = "read_only"
PROC_SYS_READ_ONLY = "proc_sys_read_only"
INVALID_VALUE = "invalid_value"
UNKNOWN_KEY = "unknown_key"

GLOBAL_REASON = "global key: set this on the host"


class ApplyError(LinuxnetError):
    """A runtime write failed; every key already written was restored before this is raised."""

    def __init__(self, message, key=None, classification=None, rollback_failures=None):
        super(ApplyError, self).__init__(message)
        self.key = key
        self.classification = classification
        self.rollback_failures = rollback_failures or []


class SysctlTree(object):
    """A ``/proc/sys`` tree under ``root`` (``/`` on a host, a fake tree in tests)."""

    def __init__(self, root="/"):
        self.root = root
        self.proc_sys = os.path.join(root, "proc", "sys")
        self._child = None

    def path(self, key):
        return os.path.join(self.proc_sys, *keys.parts_of(key))

    def exists(self, key):
        return os.path.isfile(self.path(key))

    def read(self, key):
        with open(self.path(key), "rb") as handle:
            return keys.normalise_read(handle.read().decode("utf-8", "replace"))

    def write(self, key, value):
        # One write() of the whole value: proc handlers parse a vector only from a single write at
        # offset 0. No O_CREAT, so a missing key fails with ENOENT here as it does in the kernel.
        fd = os.open(self.path(key), os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, (value + "\n").encode("utf-8"))
        finally:
            os.close(fd)

    def mode_writable(self, key):
        return bool(os.stat(self.path(key)).st_mode & 0o222)

    def settable(self, key):
        """True when the key exists with a write bit: what a glob line of systemd-sysctl can set."""
        try:
            return os.path.isfile(self.path(key)) and self.mode_writable(key)
        except OSError:
            return False  # gone between the two calls (a netdev removed): nothing a glob line can set

    def in_child_netns(self):
        """True inside a network namespace other than the initial one.

        net.core.netdev_max_backlog is registered for init_net only on every kernel seen; rmem_default
        is not a safe probe since 6.11 made it visible read-only in child namespaces (gVisor #10704).
        """
        if self._child is None:
            core = os.path.join(self.proc_sys, "net", "core")
            self._child = os.path.isdir(core) and not os.path.exists(os.path.join(core, "netdev_max_backlog"))
        return self._child

    def proc_sys_read_only(self, key=None):
        """True when the mount holding ``key`` (or /proc/sys itself) is read-only.

        Asked per key because runtimes may mount /proc/sys read-only but a sub-tree read-write.
        """
        try:
            return bool(os.statvfs(self.path(key) if key else self.proc_sys).f_flag & os.ST_RDONLY)
        except OSError:
            return False  # nothing to stat: classify() then calls the key unknown, and a write names its errno

    def module_loaded(self, module):
        # Built-in drivers with parameters show up under /sys/module too, and /proc/modules does not
        # list them, so /sys/module is the better probe.
        return os.path.isdir(os.path.join(self.root, "sys", "module", module.replace("-", "_")))

    def kernel_release(self):
        try:
            with open(os.path.join(self.proc_sys, "kernel", "osrelease")) as handle:
                return handle.read().strip()
        except OSError:
            return None  # reported as an unknown release: only messages and the kernel fact use it

    def expand(self, pattern, writable=False):
        """Existing readable keys matching a pattern (either spelling, globs per component), sorted.

        With ``writable``, only keys whose mode has a write bit: the ones systemd-sysctl can set from a glob.
        """
        found = set()
        want = 0o222 if writable else 0o444
        # A stack, not recursion: a pattern's depth comes from its text.
        todo = [(self.proc_sys, list(alternative), []) for alternative in keys.Pattern(pattern).prefixes()]
        while todo:
            base, parts, done = todo.pop()
            if not parts:
                try:
                    mode = os.stat(base).st_mode
                except OSError:
                    continue  # vanished while walking: a glob matches what exists
                if os.path.isfile(base) and mode & 0o444 and mode & want and os.access(base, os.R_OK):
                    found.add(keys.name(done))
                continue
            head, rest = parts[0], parts[1:]
            if isinstance(head, str):
                todo.append((os.path.join(base, head), rest, done + [head]))
                continue
            try:
                names = os.listdir(base)
            except OSError:
                continue  # not a directory, or unreadable: a glob matches nothing under it, as in systemd-sysctl
            for entry in names:
                # glob(3) never lets a wildcard match a leading dot; /proc/sys has no such entries anyway.
                if not entry.startswith(".") and head.match(entry):
                    todo.append((os.path.join(base, entry), rest, done + [entry]))
        return sorted(found)


def context(tree):
    """Where a run happens: kernel release, initial netns or not, writability of /proc/sys and /proc/sys/net."""
    return {
        "release": tree.kernel_release(),
        "initial_netns": not tree.in_child_netns(),
        "proc_sys_writable": not tree.proc_sys_read_only(),
        "proc_sys_net_writable": not tree.proc_sys_read_only("net"),
    }


def classify(tree, key):
    """Classify a key on this kernel before any write. Returns a dict with classification and reason."""
    scope = catalog.scope_of(key)
    child = tree.in_child_netns()
    if tree.exists(key):
        if not tree.mode_writable(key):
            if child and scope in (catalog.GLOBAL, catalog.READONLY_IN_CHILD):
                return {"classification": GLOBAL_IN_CHILD_NETNS, "reason": GLOBAL_REASON}
            return {"classification": READ_ONLY, "reason": "%s is read-only here (file mode has no write bit)" % key}
        if tree.proc_sys_read_only(key):
            return {"classification": PROC_SYS_READ_ONLY,
                    "reason": "/proc/sys is mounted read-only (container runtime); set namespaced net.* keys with podman --sysctl "
                              "or securityContext.sysctls"}
        return {"classification": OK, "reason": ""}
    rem = catalog.removed(key)
    if rem:
        return {"classification": REMOVED, "reason": rem["reason"], "replacement": rem["advice"]}
    module = catalog.module_for(key)
    if module and not tree.module_loaded(module):
        if child:
            reason = "needs kernel module %s, which the host has not loaded (a container cannot load it: load it on the host)" % module
        else:
            reason = ("needs kernel module %s, which is not loaded; list it in the profile's modules (loaded now and at boot "
                      "through modules-load.d) or run modprobe %s" % (module, module))
        return {"classification": MODULE_NOT_LOADED, "reason": reason}
    if child and scope in (catalog.GLOBAL, catalog.READONLY_IN_CHILD):
        return {"classification": GLOBAL_IN_CHILD_NETNS, "reason": GLOBAL_REASON}
    reason = "%s does not exist on this kernel (%s)" % (key, tree.kernel_release() or "unknown release")
    hint = keys.interface_hint(key)
    if hint and tree.exists(hint):
        reason = "%s does not exist: in dotted keys a dot inside an interface name is written '/', so write %s" % (key, hint)
    return {"classification": UNKNOWN_KEY, "reason": reason}


def _errno_class(tree, key, exc):
    if exc.errno == errno.EROFS:
        return PROC_SYS_READ_ONLY, "/proc/sys is mounted read-only"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return READ_ONLY, "permission denied (needs CAP_NET_ADMIN in the namespace's owner, or an LSM denied it)"
    if exc.errno == errno.ENOENT and tree.exists(key):
        # write(2) returns ENOENT for a value naming something absent, e.g. a congestion-control
        # algorithm whose module is not loaded (tcp_set_default_congestion_control).
        return INVALID_VALUE, "the kernel has no such item (for example a congestion-control module that is not loaded)"
    if exc.errno == errno.ENOENT:
        return UNKNOWN_KEY, "the key disappeared"
    return INVALID_VALUE, "the kernel rejected the value (%s)" % (exc.strerror or exc)


def rollback(tree, written):
    """Restore ``[(key, original), ...]`` in reverse order; return the keys that could not be restored."""
    failures = []
    for key, original in reversed(written):
        try:
            tree.write(key, original)
            if not keys.values_equal(tree.read(key), original):
                failures.append(key)
        except OSError:
            failures.append(key)
    return failures


def apply_changes(tree, changes):
    """Write ``[(key, before, after), ...]`` as one transaction.

    Each write is read back. On the first failure every key already written (including the failing
    one, in case the kernel stored part of it) is restored and ApplyError is raised.
    """
    written = []
    for key, before, after in changes:
        written.append((key, before))
        try:
            tree.write(key, after)
            got = tree.read(key)
        except OSError as exc:
            cls, why = _errno_class(tree, key, exc)
            failures = rollback(tree, written)
            raise ApplyError("writing %s = %s failed: %s [%s]; %s" % (key, after, why, cls, rollback_note(written, failures)),
                             key, cls, failures)
        if not keys.values_equal(got, after):
            failures = rollback(tree, written)
            note = rollback_note(written, failures)
            raise ApplyError("%s: the kernel kept '%s' after writing '%s' [%s]; %s" % (key, got, after, INVALID_VALUE, note),
                             key, INVALID_VALUE, failures)


def rollback_note(written, failures):
    if failures:
        return "ROLLBACK INCOMPLETE, check these keys by hand: %s" % ", ".join(failures)
    return "rolled back %d key(s), the runtime is unchanged" % len(written)
