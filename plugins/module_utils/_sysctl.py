# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tcp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Runtime sysctl engine: the only code in the collection that writes under ``/proc/sys``.

It reads and writes ``/proc/sys`` directly (no ``sysctl`` binary: procps exits 0 on some failures and
BusyBox reports false success), normalises values, validates input, classifies every key before
any write, and applies a batch as a transaction with read-back and rollback.
"""
from __future__ import annotations

import errno
import fnmatch
import os
import re

from ansible_collections.linuxnet.tcp.plugins.module_utils import _catalog as catalog
from ansible_collections.linuxnet.tcp.plugins.module_utils import _sockets as sockets

OK = "ok"
REMOVED = "removed"
MODULE_NOT_LOADED = "module_not_loaded"
GLOBAL_IN_CHILD_NETNS = "global_in_child_netns"
READ_ONLY = "read_only"
PROC_SYS_READ_ONLY = "proc_sys_read_only"
INVALID_VALUE = "invalid_value"
UNKNOWN_KEY = "unknown_key"
CLASSIFICATIONS = (OK, REMOVED, MODULE_NOT_LOADED, GLOBAL_IN_CHILD_NETNS, READ_ONLY, PROC_SYS_READ_ONLY, INVALID_VALUE, UNKNOWN_KEY)

GLOBAL_REASON = "global key: set this on the host"
RANGE_KEY = "net.ipv4.ip_local_port_range"
RESERVED_KEY = "net.ipv4.ip_local_reserved_ports"

# sysctl.d(5) keys: path components of /proc/sys. Interface names may carry dots, dashes, '@', ':', '+'.
_KEY_RE = re.compile(r"^[A-Za-z0-9_.:@+/-]+$")
_GLOB_CHARS = set("*?[]")
# A value containing these would inject lines or comments into a sysctl.d file ('=' separates key
# and value; '#' and ';' start comments) or cannot be written to /proc/sys at all.
_FORBIDDEN_VALUE_CHARS = {"\n": "a newline", "\r": "a carriage return", "\x00": "a NUL byte", "=": "'='", "#": "'#'", ";": "';'"}


class SysctlError(Exception):
    """Bad input or an unsupported key under ``unsupported=fail``; raised before anything changes."""


class ApplyError(Exception):
    """A runtime write failed; every key already written was restored before this is raised."""

    def __init__(self, message, key=None, classification=None, rollback_failures=None):
        super(ApplyError, self).__init__(message)
        self.key = key
        self.classification = classification
        self.rollback_failures = rollback_failures or []


def canonical_key(key, allow_glob=False):
    """Validate a key and return its canonical spelling.

    sysctl.d(5): '.' and '/' both separate components; when the first separator is '.', dots and
    slashes are swapped (so ``net.ipv4.conf.eth0/100.forwarding`` names interface ``eth0.100``).
    The canonical form is dotted, or slashed when a component itself contains a dot.
    """
    if isinstance(key, bool) or not isinstance(key, str):
        raise SysctlError("key %r must be a string" % (key,))
    text = key.strip()
    if not text:
        raise SysctlError("key %r is empty" % (key,))
    if not allow_glob and _GLOB_CHARS & set(text):
        raise SysctlError("key %r: glob patterns are not accepted here, name each key" % (key,))
    plain = "".join(c for c in text if c not in _GLOB_CHARS)
    if plain and not _KEY_RE.match(plain):
        raise SysctlError("key %r contains characters outside letters, digits and _ . / - : @ + (sysctl.d key rules)" % (key,))
    if text.startswith(("/", "-")):
        raise SysctlError("key %r must be relative to /proc/sys and must not start with '/' or '-'" % (key,))
    first = min((i for i in (text.find("."), text.find("/")) if i >= 0), default=-1)
    if first >= 0 and text[first] == ".":
        text = text.translate(str.maketrans("./", "/."))
    parts = text.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise SysctlError("key %r has an empty, '.' or '..' component" % (key,))
    return join_parts(parts)


def join_parts(parts):
    """Canonical key for a list of /proc/sys path components."""
    if any("." in p for p in parts):
        return "/".join(parts)
    return ".".join(parts)


def key_parts(key):
    """Path components of a canonical key."""
    return key.split("/") if "/" in key else key.split(".")


_OCTAL_RE = re.compile(r"^[+-]?0[0-9]+$")


def _normalise_tokens(text, strict=False):
    tokens = []
    for tok in text.split():
        if strict and _OCTAL_RE.match(tok):
            # The kernel parses integers with base 0, so "010" would be octal 8: refuse to guess.
            raise ValueError("'%s' has a leading zero, which the kernel reads as octal; write it in decimal" % tok)
        ints = catalog.as_ints(tok)
        tokens.append(str(ints[0]) if ints else tok)
    return " ".join(tokens)


def normalise_value(value, key="value"):
    """Return the canonical string of a setting value: single spaces, integers in decimal.

    Refuses booleans, floats and containers (YAML ``yes`` would silently become 1) and characters
    that would inject lines into a sysctl.d file.
    """
    if isinstance(value, bool):
        raise SysctlError("%s: boolean %s is not a sysctl value; write 1 or 0 (quote it if you mean the text)" % (key, value))
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, str):
        raise SysctlError("%s: value must be a string or an integer, got %s" % (key, type(value).__name__))
    for char, name in _FORBIDDEN_VALUE_CHARS.items():
        if char in value:
            raise SysctlError("%s: value must not contain %s (it would inject lines into the sysctl.d file)" % (key, name))
    try:
        return _normalise_tokens(value, strict=True)
    except ValueError as exc:
        raise SysctlError("%s: %s" % (key, exc))


_PORT_LIST_RE = re.compile(r"^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$")


def values_equal(left, right):
    """Compare two values as the kernel would: whitespace-insensitive, integers numerically, port lists as sets."""
    if left is None or right is None:
        return left is right
    a, b = catalog.as_ints(left), catalog.as_ints(right)
    if a is not None and b is not None:
        return a == b
    if " ".join(left.split()) == " ".join(right.split()):
        return True
    dense_left, dense_right = "".join(left.split()), "".join(right.split())
    if _PORT_LIST_RE.match(dense_left) and _PORT_LIST_RE.match(dense_right):
        return catalog.port_set(dense_left) == catalog.port_set(dense_right)
    return False


def parse_setting(key, raw):
    """Split a requested value into (operator, normalised value); operator is '=', '>=' or '<='."""
    op = "="
    if isinstance(raw, str):
        stripped = raw.strip()
        if stripped.startswith((">=", "<=")):
            op, raw = stripped[:2], stripped[2:]
    value = normalise_value(raw, key)
    port_list = (catalog.info(key) or {}).get("kind") == catalog.PORT_LIST
    if op != "=" and not port_list:
        ints = catalog.as_ints(value)
        if not ints:
            raise SysctlError("%s: '%s N' needs integer(s) after the operator" % (key, op))
    elif value == "" and not port_list:
        raise SysctlError("%s: empty value" % key)
    msg = catalog.validate_value(key, value)
    if msg:
        raise SysctlError(msg)
    if port_list:
        # The kernel prints the list ascending with runs folded; write it that way so it reads back equal.
        value = catalog.fold_ports(catalog.port_set(value))
    return op, value


class SysctlTree(object):
    """A ``/proc/sys`` tree under ``root`` (``/`` on a host, a fake tree in tests)."""

    def __init__(self, root="/"):
        self.root = root
        self.proc_sys = os.path.join(root, "proc", "sys")
        self._child = None

    def path(self, key):
        return os.path.join(self.proc_sys, *key_parts(key))

    def exists(self, key):
        return os.path.isfile(self.path(key))

    def read(self, key):
        with open(self.path(key), "rb") as handle:
            return _normalise_tokens(handle.read().decode("utf-8", "replace"))

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
            return False

    def module_loaded(self, name):
        # Built-in drivers with parameters show up under /sys/module too, and /proc/modules does not
        # list them, so /sys/module is the better probe.
        return os.path.isdir(os.path.join(self.root, "sys", "module", name.replace("-", "_")))

    def kernel_release(self):
        try:
            with open(os.path.join(self.proc_sys, "kernel", "osrelease")) as handle:
                return handle.read().strip()
        except OSError:
            return None

    def listening_ports(self):
        """TCP ports in LISTEN state in this network namespace.

        A LISTEN-only sock_diag dump walks the listening hash alone, so it costs the same on a host with
        a million established sockets; /proc/net/tcp{,6} is the fallback (and the source on a fake root).
        """
        backends = [sockets.ProcBackend(self.root)]
        if os.path.realpath(self.root) == "/":
            backends.insert(0, sockets.NetlinkBackend())
        counts = [0] * 32
        for backend in backends:
            try:
                ports = set()
                for family in (sockets.AF_INET, sockets.AF_INET6):
                    ports.update(record[1] for record in backend.listeners(family, counts))
                return ports
            except sockets.CollectError:
                continue
        return set()

    def expand(self, pattern):
        """Existing readable keys matching a canonical key pattern (globs per component)."""
        found = []

        def walk(base, parts, done):
            if not parts:
                if os.path.isfile(base) and os.access(base, os.R_OK) and os.stat(base).st_mode & 0o444:
                    found.append(join_parts(done))
                return
            head, rest = parts[0], parts[1:]
            if _GLOB_CHARS & set(head):
                try:
                    names = sorted(os.listdir(base))
                except OSError:
                    return
                for name in names:
                    if fnmatch.fnmatchcase(name, head):
                        walk(os.path.join(base, name), rest, done + [name])
            else:
                walk(os.path.join(base, head), rest, done + [head])

        walk(self.proc_sys, key_parts(pattern), [])
        return found


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
    return {"classification": UNKNOWN_KEY, "reason": "%s does not exist on this kernel (%s)" % (key, tree.kernel_release() or "unknown release")}


def _resolve(key, op, value, current):
    """Target value for '=', '>=' (raise only) and '<=' (lower only), element-wise for vectors.

    For a port list, '>=' adds the ports to the running set (never removes one) and '<=' keeps only
    running ports that are also listed.
    """
    if op == "=":
        return value
    if (catalog.info(key) or {}).get("kind") == catalog.PORT_LIST:
        want, have = catalog.port_set(value), catalog.port_set(current or "")
        return catalog.fold_ports(want | have if op == ">=" else want & have)
    want, have = catalog.as_ints(value), catalog.as_ints(current or "")
    if have is None or len(have) != len(want):
        raise SysctlError("'%s %s' needs a running value with %d integer(s), found '%s'" % (op, value, len(want), current))
    pick = max if op == ">=" else min
    return " ".join(str(pick(w, h)) for w, h in zip(want, have))


def build_plan(settings, tree, unsupported="skip", allow_unsafe=False, reserve_listener_ports=False):
    """Validate, map, classify and resolve every setting; decide what would change. Writes nothing.

    With ``reserve_listener_ports``, a profile that sets ip_local_port_range also reserves the ports of
    local listeners inside the new range (added to ip_local_reserved_ports, never removing one).

    Returns a dict: ``entries`` (ok keys in input order: key, requested, op, before, after, change,
    module), ``skipped``, ``refused``, ``renamed``, ``unsafe_allowed``, ``reserved_for_listeners``.
    """
    if not isinstance(settings, dict) or not settings:
        raise SysctlError("settings must be a non-empty mapping of sysctl keys to values")
    parsed, seen, renamed = [], {}, []
    for raw_key, raw_value in settings.items():
        key = canonical_key(raw_key)
        modern = catalog.renamed_to(key)
        target_key = key
        if modern and not tree.exists(key):
            target_key = canonical_key(modern)
            renamed.append({"key": key, "to": target_key})
        if target_key in seen:
            raise SysctlError("%s is set twice (as %r and %r)" % (target_key, seen[target_key], raw_key))
        seen[target_key] = raw_key
        op, value = parse_setting(target_key, raw_value)
        parsed.append((key, target_key, op, value))

    entries, skipped = [], []
    for requested, key, op, value in parsed:
        cls = classify(tree, key)
        if cls["classification"] != OK:
            item = {"key": key, "classification": cls["classification"], "reason": cls["reason"]}
            if tree.exists(key):
                # Read-only here but already right (for example set by the runtime's --sysctl): say so,
                # so nobody chases a value that is in fact in place.
                try:
                    current = tree.read(key)
                    if values_equal(current, _resolve(key, op, value, current)):
                        item["reason"] += "; the running value %s already matches" % current
                except (OSError, SysctlError):
                    pass
            if cls.get("replacement"):
                item["replacement"] = cls["replacement"]
            skipped.append(item)
            continue
        try:
            before = tree.read(key)
        except OSError as exc:
            skipped.append({"key": key, "classification": READ_ONLY, "reason": "cannot read %s: %s" % (key, exc.strerror)})
            continue
        after = _resolve(key, op, value, before)
        entries.append({"key": key, "requested": requested, "op": op, "value": value, "before": before, "after": after,
                        "change": not values_equal(before, after), "module": catalog.module_for(key)})

    if skipped and unsupported == "fail":
        raise SysctlError("unsupported keys (unsupported=fail): " + "; ".join(
            "%s: %s (%s)" % (s["key"], s["classification"], s["reason"]) for s in skipped))

    listeners = tree.listening_ports() if any(e["key"] == RANGE_KEY for e in entries) else set()
    reserved_for_listeners = _reserve_listeners(tree, entries, listeners) if reserve_listener_ports else []

    targets = dict((e["key"], e["after"]) for e in entries)
    current = dict((e["key"], e["before"]) for e in entries)
    for key in catalog.SAFETY_RULE_KEYS + ("net.ipv4.ip_unprivileged_port_start", RESERVED_KEY):
        if key not in current and tree.exists(key):
            try:
                current[key] = tree.read(key)
            except OSError:
                pass
    refusals = catalog.safety_refusals(targets, current, listeners)
    refused, unsafe_allowed = [], []
    if allow_unsafe:
        unsafe_allowed = refusals
    else:
        refused = refusals
        bad = set(r["key"] for r in refused)
        if RANGE_KEY in bad:
            # Reservations made only for the refused range are not wanted either.
            bad.update(e["key"] for e in entries if e.get("for_listeners"))
            reserved_for_listeners = []
        entries = [e for e in entries if e["key"] not in bad]
    return {"entries": entries, "skipped": skipped, "refused": refused, "renamed": renamed, "unsafe_allowed": unsafe_allowed,
            "reserved_for_listeners": reserved_for_listeners}


def _reserve_listeners(tree, entries, listeners):
    """Add the listeners inside the planned port range to the ip_local_reserved_ports entry (made if needed).

    A new entry is '>=' (the running reservations are kept, so once a port is reserved later runs keep it
    and stay idempotent); an entry the settings already have keeps its operator's meaning, with the
    listeners added. Returns the listener ports inside the range.
    """
    rng = next((e for e in entries if e["key"] == RANGE_KEY), None)
    bounds = catalog.as_ints(rng["after"]) if rng else None
    if not bounds or len(bounds) != 2:
        return []
    inside = set(p for p in listeners if bounds[0] <= p <= bounds[1])
    entry = next((e for e in entries if e["key"] == RESERVED_KEY), None)
    if entry is None:
        if classify(tree, RESERVED_KEY)["classification"] != OK:
            return []  # the safety rule then refuses a range over a listener
        try:
            before = tree.read(RESERVED_KEY)
        except OSError:
            return []
        if not inside and not catalog.port_set(before):
            return []
        entry = {"key": RESERVED_KEY, "requested": RESERVED_KEY, "op": ">=", "value": catalog.fold_ports(inside),
                 "before": before, "after": before, "change": False, "module": None, "for_listeners": True}
        entries.append(entry)
    entry["after"] = catalog.fold_ports(catalog.port_set(entry["after"]) | inside)
    entry["change"] = not values_equal(entry["before"], entry["after"])
    return sorted(inside)


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
            if not values_equal(tree.read(key), original):
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
            raise ApplyError("writing %s = %s failed: %s [%s]; %s" % (key, after, why, cls, _rollback_note(written, failures)),
                             key, cls, failures)
        if not values_equal(got, after):
            failures = rollback(tree, written)
            note = _rollback_note(written, failures)
            raise ApplyError("%s: the kernel kept '%s' after writing '%s' [%s]; %s" % (key, got, after, INVALID_VALUE, note),
                             key, INVALID_VALUE, failures)


def _rollback_note(written, failures):
    if failures:
        return "ROLLBACK INCOMPLETE, check these keys by hand: %s" % ", ".join(failures)
    return "rolled back %d key(s), the runtime is unchanged" % len(written)
