# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tcp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The profile transaction: plan, apply, persist, restore, diff. Built from the tree and the owned files.

A run holds the host lock (``_sysctl_files.HostLock``) from its plan to its last write. It decides everything first
(validate every key and value, classify it against this kernel, resolve ``>=``/``<=``, apply the safety rules, work
out every file's new text: a :class:`Transaction`), then, unless in check mode, writes ahead (``_commit``): the state
file as a journal holding the original of every value the run may change, the runtime values as one transaction,
the files as one unit, and last the state file at rest, which only then drops the originals of values put back. A
failure rolls back what was written, so a run changes all of it or nothing; a kill at any instant leaves every
original on disk, and the next run finds the journal and reports it (``recovered``).
"""

import errno
import json
import os

from ansible_collections.linuxnet.tcp.plugins.module_utils import _common as common
from ansible_collections.linuxnet.tcp.plugins.module_utils._agents import writers as agents
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import catalog
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import conf
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import files
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import keys
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import safety
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import tree as systree
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.keys import SysctlError
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.tree import ApplyError

OWNED_BY_AGENT = "owned_by_agent"
RANGE_KEY = "net.ipv4.ip_local_port_range"
RESERVED_KEY = "net.ipv4.ip_local_reserved_ports"


# ---------------------------------------------------------------------------------------------
# Plan.

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


def parse_settings(settings, tree):
    """Validate and name every setting: ``[(requested, key, op, value)]`` plus ``renamed``. Writes nothing."""
    if not isinstance(settings, dict) or not settings:
        raise SysctlError("settings must be a non-empty mapping of sysctl keys to values")
    parsed, seen, renamed = [], {}, []
    for raw_key, raw_value in settings.items():
        key = keys.canonical_key(raw_key)
        modern = catalog.renamed_to(key)
        target_key = key
        if modern and not tree.exists(key):
            target_key = keys.canonical_key(modern)
            renamed.append({"key": key, "to": target_key})
        if target_key in seen:
            raise SysctlError("%s is set twice (as %r and %r)" % (target_key, seen[target_key], raw_key))
        seen[target_key] = raw_key
        op, value = keys.parse_setting(target_key, raw_value)
        parsed.append((key, target_key, op, value))
    return parsed, renamed


def build_plan(settings, tree, unsupported="skip", allow_unsafe=False, reserve_listener_ports=False, writers=None, force=()):
    """Validate, map, classify and resolve every setting; decide what would change. Writes nothing.

    With ``reserve_listener_ports``, a profile that sets ip_local_port_range also reserves the ports of
    local listeners inside the new range (added to ip_local_reserved_ports, never removing one).
    ``writers`` (``_agents.writers_for()``) name other agents that set keys at runtime: a key one of them would
    rewrite (``_agents.conflicts()``: another exact value, a raise-only write above the wanted value, a value it
    decides itself) is skipped as ``owned_by_agent``, unless named in ``force``.

    Returns a dict: ``entries`` (ok keys in input order: key, requested, op, before, after, change,
    module), ``managed`` (every key of the settings, by its applied name), ``skipped``, ``refused``,
    ``renamed``, ``unsafe_allowed``, ``reserved_for_listeners``, ``forced`` (keys of ``entries`` that another
    agent would rewrite and that are applied only because ``force`` names them).
    """
    parsed, renamed = parse_settings(settings, tree)
    entries, skipped, forced = [], [], []
    for requested, key, op, value in parsed:
        cls = systree.classify(tree, key)
        if cls["classification"] != systree.OK:
            item = {"key": key, "classification": cls["classification"], "reason": cls["reason"]}
            if tree.exists(key):
                # Read-only here but already right (for example set by the runtime's --sysctl): say so,
                # so nobody chases a value that is in fact in place.
                try:
                    current = tree.read(key)
                    if keys.values_equal(current, _resolve(key, op, value, current)):
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
            skipped.append({"key": key, "classification": systree.READ_ONLY, "reason": "cannot read %s: %s" % (key, exc.strerror)})
            continue
        after = _resolve(key, op, value, before)
        owner = _other_writer(key, after, writers, ())
        if owner and key in force:
            forced.append(key)
        elif owner:
            skipped.append({"key": key, "classification": OWNED_BY_AGENT, "reason": owner})
            continue
        entries.append({"key": key, "requested": requested, "op": op, "value": value, "before": before, "after": after,
                        "change": not keys.values_equal(before, after), "module": catalog.module_for(key)})

    if skipped and unsupported == "fail":
        raise SysctlError("unsupported keys (unsupported=fail): " + "; ".join(
            "%s: %s (%s)" % (s["key"], s["classification"], s["reason"]) for s in skipped))

    listeners = tree.listening_ports() if any(e["key"] == RANGE_KEY for e in entries) else set()
    # The reservations as the settings ask for them, before listeners are added: put back if the range is refused.
    asked = dict((e["key"], (e["after"], e["change"])) for e in entries if e["key"] == RESERVED_KEY)
    reserved_for_listeners = _reserve_listeners(tree, entries, listeners) if reserve_listener_ports else []

    targets = dict((e["key"], e["after"]) for e in entries)
    current = dict((e["key"], e["before"]) for e in entries)
    for key in safety.CONTEXT_KEYS:
        if key not in current and tree.exists(key):
            try:
                current[key] = tree.read(key)
            except OSError:
                pass
    refusals = safety.refusals(targets, current, listeners)
    refused, unsafe_allowed = [], []
    if allow_unsafe:
        unsafe_allowed = refusals
    else:
        refused = refusals
        bad = set(r["key"] for r in refused)
        if RANGE_KEY in bad:
            # Reservations made only for the refused range are not wanted either, and listeners added to the
            # settings' own ip_local_reserved_ports are taken out again.
            bad.update(e["key"] for e in entries if e.get("for_listeners"))
            reserved_for_listeners = []
            for entry in entries:
                if entry["key"] in asked:
                    entry["after"], entry["change"] = asked[entry["key"]]
        entries = [e for e in entries if e["key"] not in bad]
    managed = set(key for _requested, key, _op, _value in parsed) | set(e["key"] for e in entries)
    kept = set(e["key"] for e in entries)
    return {"entries": entries, "managed": managed, "skipped": skipped, "refused": refused, "renamed": renamed,
            "unsafe_allowed": unsafe_allowed, "reserved_for_listeners": reserved_for_listeners,
            "forced": [key for key in forced if key in kept],
            "requested": dict((key, (op, value)) for _requested, key, op, value in parsed)}


def _other_writer(key, value, writers, force):
    """Why another agent owns ``key`` (it would rewrite ``value``), or None. Keys in ``force`` are never owned."""
    if not writers or key in force:
        return None
    fights = _fights(writers, key, value)
    if not fights:
        return None
    parts = []
    for writer in fights:
        value = "a value it decides at runtime" if writer["value"] is None else writer["value"]
        advice = writer["advice"].strip()
        parts.append("%s, to %s. %s" % (writer["source"], value, advice if advice.endswith(".") else advice + "."))
    return " ".join(parts) + " Skipped so the two do not take turns (force_owned_keys applies it anyway)."


def _fights(writers, key, value):
    """The writers of ``key`` that would rewrite ``value`` (``_agents.conflicts()``: exact, raise-only or lower-only writes,
    agents that yield to sysctl.d or to any write)."""
    return [w for w in (writers or {}).get(key, ()) if agents.conflicts(w, value)]


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
        if systree.classify(tree, RESERVED_KEY)["classification"] != systree.OK:
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
    entry["change"] = not keys.values_equal(entry["before"], entry["after"])
    return sorted(inside)


def restore_plan(tree, originals, candidates, boot):
    """Plan restoring the saved originals of ``candidates``: ``(changes, done, not_restored, skipped)``.

    A key that another file sets at boot (``boot`` is the BootConfig as it will be after the run) is left
    alone and reported; a key this kernel cannot take now is skipped and stays saved. ``done`` lists the keys
    whose original is back in place after the run (restored now or already equal).
    """
    not_restored, own = [], []
    for key in sorted(candidates):
        other = boot.effective(key, tree.settable)
        if other is not None:
            not_restored.append({"key": key, "file": other["file"], "value": other["value"]})
        else:
            own.append(key)
    changes, done, skipped = _put_back(tree, dict((key, originals[key]) for key in own))
    return changes, done, not_restored, skipped


def _put_back(tree, wanted):
    """Plan writing ``{key: value}`` back: ``(changes, done, skipped)``; a key this kernel cannot take now is skipped."""
    changes, done, skipped = [], [], []
    for key in sorted(wanted):
        cls = systree.classify(tree, key)
        if cls["classification"] != systree.OK:
            skipped.append(dict(key=key, **cls))
            continue
        before = tree.read(key)
        if not keys.values_equal(before, wanted[key]):
            changes.append((key, before, wanted[key]))
        done.append(key)
    return changes, done, skipped


def load_modules(tree, modules, modprobe):
    """Load ``modules`` (none of them loaded yet) with ``modprobe(argv) -> (rc, out, err)``.

    Returns ``(loaded, warnings)``. A module that fails to load is reported, not fatal: its keys are
    then skipped as module_not_loaded.
    """
    loaded, warnings = [], []
    for module in modules:
        if modprobe is None:
            warnings.append("modprobe is not installed, so %s was not loaded now; its keys are skipped" % module)
            continue
        rc, out, err = modprobe([module])
        if rc != 0:
            warnings.append("modprobe %s failed (rc=%s): %s; its keys are skipped" % (module, rc, (err or out).strip()))
        elif tree.module_loaded(module):
            loaded.append(module)
        else:
            warnings.append("modprobe %s succeeded but /sys/module/%s is absent; its keys are skipped" % (module, module))
    return loaded, warnings


# ---------------------------------------------------------------------------------------------
# Results.

def _runtime_diff(changes):
    return {
        "before_header": "runtime (/proc/sys)", "after_header": "runtime (/proc/sys)",
        "before": "".join("%s = %s\n" % (c[0], c[1]) for c in changes),
        "after": "".join("%s = %s\n" % (c[0], c[2]) for c in changes),
    }


def _diff(runtime_changes, file_changes):
    out = [_runtime_diff(runtime_changes)] if runtime_changes else []
    for path, before, after, _mode in file_changes:
        out.append({"before_header": path, "after_header": path, "before": before or "", "after": after or ""})
    return out


def _overridden(boot, path, entries):
    """Keys of our drop-in whose boot value comes from another file (systemd-sysctl order).

    A later ``-key`` line of another file replaces our assignment in systemd-sysctl's map, so boot does not set the
    key at all: reported with that file and value None.
    """
    out = []
    for entry in sorted(entries, key=lambda e: e["key"]):
        eff = boot.effective(entry["key"])
        if eff is None:
            own = boot.entry(entry["key"])
            if own is not None and own["exclude"] and own["file"] != path:
                out.append({"key": entry["key"], "file": own["file"], "value": None})
        elif eff["file"] != path and not keys.values_equal(eff["value"], entry["after"]):
            out.append({"key": entry["key"], "file": eff["file"], "value": eff["value"]})
    return out


def _revert_doc(root, name, runtime_changes, file_changes, old_state_text, state_changes, lock_created=()):
    """What a later ``state=reverted`` run needs to put this run's changes back exactly.

    ``directories`` are the ones this run creates for its files (write_atomic makes missing parents; the host lock
    makes the state directory before the plan, ``lock_created``), deepest first, so that a revert leaves no empty
    directory behind.
    """
    written = [path for path, _old, new, _mode in file_changes if new is not None]
    if state_changes:
        written.append(files.state_path(name))
    created = [d for d in lock_created if state_changes]
    for path in written:
        directory = os.path.dirname(path)
        while directory not in ("", "/") and not os.path.isdir(common.host_path(root, directory)) and directory not in created:
            created.append(directory)
            directory = os.path.dirname(directory)
    return {
        "profile": name,
        "runtime": dict((key, before) for key, before, _after in runtime_changes),
        "files": dict((path, old) for path, old, _new, _mode in file_changes),
        "state": {"changed": bool(state_changes), "text": old_state_text},
        "directories": sorted(set(created), key=lambda d: (-d.count("/"), d)),
    }


def _pending_reboot(entries, boot_only, apply):
    """Keys persisted with a value the runtime does not have after this run: boot will set them."""
    out = [{"key": e["key"], "value": e["after"], "reason": "apply=false: persisted only, the running value is %s" % e["before"]}
           for e in entries if e["change"] and not apply]
    out.extend({"key": e["key"], "value": e["after"], "reason": "%s is not loaded now; the profile's modules-load.d file loads it at "
                "the next boot, before systemd-sysctl applies this value" % e["module"]} for e in boot_only)
    return sorted(out, key=lambda item: item["key"])


def _lost_at_boot(root, tree, kernel, entries, boot_files):
    """Keys applied now that boot would not set again: their module is not there when systemd-sysctl runs."""
    modules = conf.ModuleBoot(root, tree.kernel_release(), boot_files)
    out = []
    for entry in entries:
        applies, _module, _by, reason = conf.boot_reason(modules, entry["key"], kernel)
        if not applies:
            out.append({"key": entry["key"], "reason": reason})
    return out


def _needs_reload(root, tree, options):
    """The profile's module options that a loaded module does not have yet (read from /sys/module)."""
    want = dict((conf.module_name(m), dict((p, {"value": v, "file": None}) for p, v in params.items())) for m, params in options.items())
    return [dict((k, row[k]) for k in ("module", "param", "value", "live"))
            for row in conf.module_options_state(root, tree.module_loaded, want) if row["needs_module_reload"]]


def _result(**fields):
    base = {
        "changed": False, "applied": {}, "restored": {}, "skipped_keys": [], "pending_reboot": [], "lost_at_boot": [],
        "needs_module_reload": [], "refused": [], "renamed": [],
        "reserved_for_listeners": [], "modules_loaded": [], "persisted_file": None, "modules_file": None,
        "modprobe_file": None, "overridden_at_boot": [], "not_restored": [], "kernel": None, "diff": [],
        "revert": None, "recovered": None, "warnings": [],
    }
    base.update(fields)
    return base


# ---------------------------------------------------------------------------------------------
# Act: the journal, the transaction, the host lock.

class CommitError(ApplyError):
    """A write failed with an OS error (``path``, ``errno`` its name); what had been written is rolled back first."""

    def __init__(self, message, exc, rollback_failures=None):
        super(CommitError, self).__init__(message, rollback_failures=rollback_failures)
        self.path = exc.filename
        self.errno = errno.errorcode.get(exc.errno, str(exc.errno))


class Transaction(object):
    """Everything a run writes, decided before its first write.

    ``runtime`` ``[(key, before, after)]``; ``files`` ``[(path, old_text, new_text, mode)]`` (new None removes);
    ``state`` the state file's text after the run (None removes it) when ``state_change``, else it stays;
    ``originals`` the originals that text holds; ``rmdirs`` directories to remove once empty (a revert).
    """

    def __init__(self, action, runtime=(), file_changes=(), state_change=False, state=None, originals=None, rmdirs=()):
        self.action = action
        self.runtime = list(runtime)
        self.files = list(file_changes)
        self.state_change = state_change
        self.state = state
        self.originals = dict(originals or {})
        self.rmdirs = list(rmdirs)


def _check_timeout(lock_timeout):
    if isinstance(lock_timeout, bool) or not isinstance(lock_timeout, (int, float)) or not 0 <= lock_timeout <= 86400:
        raise SysctlError("lock_timeout must be a number of seconds from 0 to 86400, got %r" % (lock_timeout,))


def _own_paths(name, path):
    return [path, files.modules_load_path(name), files.modprobe_path(name), files.state_path(name)]


def _recovered(root, tree, name, path, state, temps):
    """What an interrupted run left (its journal in the state file, temporary files): the ``recovered`` result."""
    txn = state["transaction"] if state else None
    if txn is None and not temps:
        return None
    out = {"action": None, "pid": None, "started": None, "runtime_written": {}, "files_written": [],
           "temporary_files": list(temps)}
    if txn is None:
        return out
    out.update(action=txn["action"], pid=txn["pid"], started=txn["started"])
    for key in sorted(txn["runtime"]):
        before, after = txn["runtime"][key]
        try:
            now = tree.read(key)
        except (OSError, SysctlError):
            continue
        if keys.values_equal(now, after) and not keys.values_equal(now, before):
            out["runtime_written"][key] = {"before": before, "after": after}
    own = _own_paths(name, path)
    for target in sorted(txn["files"]):
        old, new = txn["files"][target]
        if target in own and old != new and files.text_digest(common.read_text(root, target)) == new:
            out["files_written"].append(target)
    return out


def _recovered_warning(name, recovered):
    parts = []
    if recovered["action"] is not None or recovered["pid"] is not None:
        parts.append("a run of profile %s (state=%s, pid %s, started %s) was interrupted after writing %d runtime value(s) "
                     "and %d file(s); its journal kept every original, and this run took the profile on from there"
                     % (name, recovered["action"], recovered["pid"], recovered["started"], len(recovered["runtime_written"]),
                        len(recovered["files_written"])))
    if recovered["temporary_files"]:
        parts.append("removed the temporary file(s) a killed run left: %s" % ", ".join(recovered["temporary_files"]))
    return "; ".join(parts)


def _run(root, name, path, action, check_mode, lock_timeout, tree, planner):
    """One run: take the host lock, read what is on disk (an interrupted run's journal too), plan, then commit.

    ``planner(tree, state, settled, lock)`` decides everything without writing and returns ``(Transaction, result)``;
    ``state`` is the state file as read (its ``transaction`` set when a run was interrupted), ``settled`` its text
    at rest (without a journal). The lock is held from before the plan to after the last write.
    """
    _check_timeout(lock_timeout)
    tree = tree or systree.SysctlTree(root)
    with files.HostLock(root, shared=check_mode, timeout=lock_timeout) as lock:
        try:
            raw_state = common.read_text(root, files.state_path(name))
            state = files.load_state(root, name)
            settled = raw_state
            if state is not None and state["transaction"] is not None:
                settled = files.dump_state(dict((k, v) for k, v in state.items() if k != "transaction"))
            txn, result = planner(tree, state, settled, lock)
            temps = files.leftover_temp_files(root, set(os.path.dirname(p) for p in _own_paths(name, path)),
                                              [os.path.basename(p) for p in _own_paths(name, path)])
            recovered = _recovered(root, tree, name, path, state, temps)
        except OSError as exc:
            raise SysctlError("reading %s failed" % files.describe(exc))
        if settled != raw_state and not txn.state_change:
            txn.state_change, txn.state = True, settled  # only the journal is to go
        if recovered:
            result["warnings"].append(_recovered_warning(name, recovered))
        result["recovered"] = recovered
        result["changed"] = bool(result["changed"] or recovered)
        if not result["changed"]:
            result["revert"] = None
        if not check_mode:
            # Every original on disk while the run writes: the saved ones, the ones after the run, and the value before
            # the run of each key it writes.
            originals = dict(txn.originals)
            originals.update(state["originals"] if state else {})
            for key, before, _after in txn.runtime:
                originals.setdefault(key, before)
            journal = files.journal_text(name, (state or {}).get("file", path), originals, action, txn.runtime, txn.files)
            lock.remove_on_release.extend(txn.rmdirs)
            _commit(root, tree, name, txn, journal, raw_state, temps)
    return result


def _remove_dirs(root, directories):
    for directory in directories:
        try:
            os.rmdir(common.host_path(root, directory))
        except OSError:
            pass  # something was put there meanwhile (or the lock file, removed last): keep it


def _commit(root, tree, name, txn, journal, old_state, temps):
    """Write ahead, then act: journal, runtime transaction, files as one unit, state file at rest; undo all on a failure.

    The journal (``_sysctl_files.journal_text()``) is on disk before the first runtime or file change, and the
    state file drops an original only in the last step, once every value it could undo is in place. A kill at any
    instant therefore leaves every original on disk, and the journal tells the next run this one was interrupted.
    Any OS error becomes a CommitError naming the path and the errno, after the rollback.
    """
    state_file = files.state_path(name)
    for path in temps:
        try:
            files.remove_file(root, path)
        except OSError as exc:
            raise CommitError("removing a leftover temporary file failed: %s; nothing else was changed" % files.describe(exc), exc)
    if not (txn.runtime or txn.files):
        if txn.state_change:
            try:
                files.put_file(root, state_file, txn.state, 0o600)
            except OSError as exc:
                raise CommitError("writing the state file failed: %s; nothing was changed" % files.describe(exc), exc)
        _remove_dirs(root, txn.rmdirs)
        return
    try:
        files.write_atomic(root, state_file, journal, 0o600)
    except OSError as exc:
        raise CommitError("writing the journal to the state file failed: %s; nothing was changed" % files.describe(exc), exc)

    def restore_state():
        try:
            files.put_file(root, state_file, old_state, 0o600)
        except OSError as exc:
            return "the state file keeps this run's journal with every original (%s)" % files.describe(exc)
        return "the state file is as before"

    def undo(file_list, files_put_back=0):
        """Roll the runtime and ``file_list`` back; ``(note, keys and files not put back)``."""
        failures = systree.rollback(tree, [(key, before) for key, before, _after in txn.runtime])
        failures += files.undo_files(root, [(p, old, mode) for p, old, _new, mode in file_list])
        note = "rolled back %d runtime value(s) and %d file(s)" % (len(txn.runtime), len(file_list) + files_put_back)
        if failures:
            # The journal stays: it holds the original of everything that could not be put back.
            return (note + "; ROLLBACK INCOMPLETE, check these by hand: %s; the state file keeps this run's journal with "
                    "every original" % ", ".join(failures)), failures
        return note + "; " + restore_state(), failures

    try:
        systree.apply_changes(tree, txn.runtime)
    except ApplyError as exc:
        note = restore_state() if not exc.rollback_failures else "the state file keeps this run's journal with every original"
        raise ApplyError("%s; %s" % (exc, note), exc.key, exc.classification, exc.rollback_failures)
    try:
        files.write_files(root, txn.files)
    except OSError as exc:
        not_put_back = getattr(exc, "rollback_failures", [])
        note, failures = undo([], len(getattr(exc, "rolled_back", [])))
        if not_put_back:
            note += "; files not put back, check them by hand: %s" % ", ".join(not_put_back)
        raise CommitError("writing the profile's files failed: %s; %s" % (files.describe(exc), note), exc, failures + not_put_back)
    try:
        files.put_file(root, state_file, txn.state if txn.state_change else old_state, 0o600)
    except OSError as exc:
        note, failures = undo(txn.files)
        raise CommitError("writing the state file failed: %s; %s" % (files.describe(exc), note), exc, failures)
    _remove_dirs(root, txn.rmdirs)


# ---------------------------------------------------------------------------------------------
# Runs.

def profile_present(root, name, settings, persist=True, apply=True, file=None, unsupported="skip", allow_unsafe=False,
                    check_mode=False, tree=None, modules=None, module_options=None, load=True,
                    reserve_listener_ports=False, modprobe=None, force_owned_keys=None, lock_timeout=files.LOCK_TIMEOUT):
    """Plan and (unless check mode) apply a profile. Raises SysctlError before any change, ApplyError after rollback.

    ``modules`` are listed in the profile's modules-load.d file and, with ``load`` in the initial network
    namespace, loaded now through ``modprobe(argv) -> (rc, out, err)`` before the keys are classified.
    ``module_options`` (``{module: {param: value}}``) go to the profile's modprobe.d file.
    A key that an earlier run of this profile changed and that ``settings`` no longer name gets its saved
    original back (``restored``), unless another file now sets it at boot.
    A key that another agent on the host would rewrite (kube-proxy, dockerd, TuneD, ...; see ``build_plan``) is skipped
    as ``owned_by_agent`` unless listed in ``force_owned_keys``.
    ``tree`` defaults to ``SysctlTree(root)``; tests pass a tree that models kernel write errors.
    The run holds the host lock (``_sysctl_files.HostLock``), waiting at most ``lock_timeout`` seconds for it.
    """
    path = files.dropin_path(name, file)
    if unsupported not in ("skip", "fail"):
        raise SysctlError("unsupported must be 'skip' or 'fail'")
    modules = files.validate_modules(modules)
    options = files.validate_module_options(module_options)

    def planner(tree, state, settled, lock):
        return _plan_present(root, tree, state, settled, lock, name, path, settings, persist, apply, unsupported, allow_unsafe,
                             check_mode, modules, options, load, reserve_listener_ports, modprobe, force_owned_keys)
    return _run(root, name, path, "present", check_mode, lock_timeout, tree, planner)


def _plan_present(root, tree, state, settled, lock, name, path, settings, persist, apply, unsupported, allow_unsafe,
                  check_mode, modules, options, load, reserve_listener_ports, modprobe, force_owned_keys):
    """The plan of state=present: ``(Transaction, result)``. Writes nothing but loads the modules (unless check mode)."""
    kernel = systree.context(tree)
    force = set(keys.canonical_key(k) for k in (force_owned_keys or []))
    named = set()
    for raw_key in (settings if isinstance(settings, dict) else {}):
        key = keys.canonical_key(raw_key)
        named.update((key, catalog.renamed_to(key) or key))
    writers = agents.writers_for(sorted(named), agents.in_this_netns(agents.detect(root), root)) if named else {}

    def plan_now():
        return build_plan(settings, tree, unsupported=unsupported, allow_unsafe=allow_unsafe,
                          reserve_listener_ports=reserve_listener_ports, writers=writers, force=force)

    # The first plan validates every key and value, so bad input fails before a module is loaded.
    plan = plan_now()
    warnings = []
    read_only = not kernel["proc_sys_writable"]
    if read_only:
        # Nothing can take a value here, and systemd-sysctl skips a read-only /proc/sys at boot
        # (ConditionPathIsReadWrite=/proc/sys/net/), so no file is written either.
        persist = False
    old_text = files.read_owned(root, path) if persist else None
    boot_changes = []
    if persist:
        for boot_path, boot_text in ((files.modules_load_path(name), files.render_modules(name, modules) if modules else None),
                                     (files.modprobe_path(name), files.render_modprobe(name, options) if options else None)):
            change = files.boot_file_change(root, boot_path, boot_text)
            if change:
                boot_changes.append(change + (0o644,))

    # Loading is left to the host inside a container, and pointless where no key can be written.
    can_load = apply and load and kernel["initial_netns"] and not read_only
    to_load = [m for m in modules if not tree.module_loaded(m)] if can_load else []
    modules_loaded = []
    if to_load and check_mode:
        modules_loaded = to_load
        for item in plan["skipped"]:
            if item["classification"] == systree.MODULE_NOT_LOADED and catalog.module_for(item["key"]) in to_load:
                item["reason"] += "; a real run loads it with modprobe first (check mode cannot)"
    elif to_load:
        modules_loaded, load_warnings = load_modules(tree, to_load, modprobe)
        warnings.extend(load_warnings)
        if modules_loaded:
            plan = plan_now()
    entries = plan["entries"]
    changes = [(e["key"], e["before"], e["after"]) for e in entries if e["change"]] if apply else []
    # Keys of a listed module that this run does not load (load_modules or apply false) are persisted for the next
    # boot, when the profile's modules-load.d file loads the module before systemd-sysctl runs.
    boot_only, skipped = [], plan["skipped"]
    if persist and kernel["initial_netns"] and not can_load:
        skipped = []
        listed = set(conf.module_name(m) for m in modules)
        for item in plan["skipped"]:
            module = catalog.module_for(item["key"])
            op, value = plan["requested"][item["key"]]
            if item["classification"] != systree.MODULE_NOT_LOADED or not module or conf.module_name(module) not in listed:
                skipped.append(item)
            elif op != "=":
                skipped.append(dict(item, reason=item["reason"] + "; not persisted for boot: '%s %s' needs the running value, "
                                                                  "which exists once %s is loaded" % (op, value, module)))
            else:
                boot_only.append({"key": item["key"], "after": value, "module": module})

    new_text = files.render(name, [(e["key"], e["after"], bool(e["module"])) for e in entries + boot_only]) if persist else None
    file_changes = ([(path, old_text, new_text, 0o644)] if persist and new_text != old_text else []) + boot_changes
    boot = conf.BootConfig(root, {path: new_text} if persist else None)
    warnings.extend(conf.config_warnings(root, "systemd", {path: new_text} if persist else None))

    saved = dict(state["originals"]) if state else {}
    # Keys dropped from the profile since the run that saved them get their original back.
    dropped = set(saved) - plan["managed"]
    restores, restored_keys, not_restored, restore_skipped = [], [], [], []
    if apply and not read_only:
        restores, restored_keys, not_restored, restore_skipped = restore_plan(tree, saved, dropped, boot)
    handed_over = set(restored_keys) | set(n["key"] for n in not_restored)
    # Saved originals stay for keys still in the profile and for dropped keys that could not be restored now.
    originals = dict((k, v) for k, v in saved.items() if k not in handed_over)
    for key, before, _after in changes:
        originals.setdefault(key, before)
    # With apply=false the next boot makes the change: keep the running value now, so that absent gives it back then.
    for entry in entries if persist and not apply else ():
        if entry["change"]:
            originals.setdefault(entry["key"], entry["before"])
    state_text = files.state_text(name, path, originals) if (originals or state) else None
    state_changes = state_text is not None and state_text != settled
    runtime_changes = changes + restores

    if persist and os.path.dirname(path) not in conf.SYSTEMD_DIRS:
        warnings.append("%s is not in a directory systemd-sysctl reads; it will not be applied at boot" % path)
    for item in plan["unsafe_allowed"]:
        warnings.append("allow_unsafe: applying %s = %s although %s" % (item["key"], item["value"], item["reason"]))
    # Only the keys the plan really applied because they were forced: not one the agent sets to the same value, nor
    # one skipped or refused anyway.
    targets = dict((e["key"], e["after"]) for e in entries)
    for key in plan["forced"]:
        warnings.append("force_owned_keys: applying %s although %s also sets it; it writes its own value again when it "
                        "restarts" % (key, ", ".join(w["agent"] for w in _fights(writers, key, targets[key]))))
    for item in plan["refused"]:
        warnings.append("refused %s = %s: %s; %s" % (item["key"], item["value"], item["reason"], item["suggestion"]))

    revert = _revert_doc(root, name, runtime_changes, file_changes, settled, state_changes, lock.created)
    txn = Transaction("present", runtime_changes, file_changes, state_changes, state_text, originals)
    applied = {}
    for e in entries:
        applied[e["key"]] = {"before": e["before"], "after": e["after"] if apply else e["before"]}
    for item in restore_skipped:
        item["reason"] = "dropped from the profile, its saved value %s is kept for later: %s" % (saved[item["key"]], item["reason"])
    changed = bool(runtime_changes or file_changes or state_changes or modules_loaded)
    boot_files = dict((c[0], c[2]) for c in boot_changes)
    return txn, _result(
        # In check mode modules_loaded lists what a real run would load.
        changed=changed,
        applied=applied,
        restored=dict((k, {"before": b, "after": a}) for k, b, a in restores),
        skipped_keys=skipped + restore_skipped,
        pending_reboot=_pending_reboot(entries, boot_only, apply) if persist else [],
        lost_at_boot=_lost_at_boot(root, tree, kernel, entries, boot_files) if persist else [],
        needs_module_reload=_needs_reload(root, tree, options),
        refused=plan["refused"],
        renamed=plan["renamed"],
        reserved_for_listeners=plan["reserved_for_listeners"],
        modules_loaded=modules_loaded,
        persisted_file=path if persist else None,
        modules_file=files.modules_load_path(name) if persist and modules else None,
        modprobe_file=files.modprobe_path(name) if persist and options else None,
        overridden_at_boot=_overridden(boot, path, entries) if persist else [],
        not_restored=not_restored,
        kernel=kernel,
        diff=_diff(runtime_changes, file_changes),
        revert=revert,
        warnings=warnings,
    )


def profile_absent(root, name, persist=True, apply=True, file=None, check_mode=False, tree=None, lock_timeout=files.LOCK_TIMEOUT):
    """Remove a profile's files and restore the saved runtime originals, unless another file now sets them.

    The state file goes last, once every value it could restore is back (see ``_commit``).
    """
    path = files.dropin_path(name, file)

    def planner(tree, state, settled, lock):
        kernel = systree.context(tree)
        old_text = files.read_owned(root, path, "remove") if persist else None
        originals = state["originals"] if state else {}
        changes, not_restored, skipped = [], [], []
        if apply:
            changes, _done, not_restored, skipped = restore_plan(tree, originals, originals, conf.BootConfig(root, {path: None}))
        warnings = conf.config_warnings(root, "systemd", {path: None}) if apply else []
        # The saved originals are kept until they could be restored (a read-only /proc/sys restores nothing).
        remove_state = apply and state is not None and kernel["proc_sys_writable"]
        file_changes = []
        if persist:
            if old_text is not None:
                file_changes.append((path, old_text, None, 0o644))
            for boot_path in (files.modules_load_path(name), files.modprobe_path(name)):
                change = files.boot_file_change(root, boot_path, None)
                if change:
                    file_changes.append(change + (0o644,))
        restored = dict((k, {"before": b, "after": a}) for k, b, a in changes)
        txn = Transaction("absent", changes, file_changes, remove_state, None, {} if remove_state else originals)
        return txn, _result(
            changed=bool(changes or file_changes or remove_state),
            # applied: the keys restored, as before the restored result existed.
            applied=restored,
            restored=restored,
            skipped_keys=skipped,
            not_restored=not_restored,
            kernel=kernel,
            diff=_diff(changes, file_changes),
            revert=_revert_doc(root, name, changes, file_changes, settled, remove_state, lock.created),
            warnings=warnings,
        )
    return _run(root, name, path, "absent", check_mode, lock_timeout, tree, planner)


def _check_revert(name, file, revert):
    """Validate a revert document against this profile's own paths; return (runtime, files, state, directories)."""
    if not isinstance(revert, dict) or revert.get("profile") != name:
        raise SysctlError("revert must be the 'revert' result of a sysctl_profile run of profile %r" % name)
    own = {files.dropin_path(name, file), files.dropin_path(name), files.modules_load_path(name), files.modprobe_path(name)}
    runtime = revert.get("runtime") or {}
    texts = revert.get("files") or {}
    state = revert.get("state") or {}
    if not isinstance(runtime, dict) or not isinstance(texts, dict) or not isinstance(state, dict):
        raise SysctlError("revert: runtime and files must be mappings and state a mapping with changed and text")
    checked_runtime = {}
    for key, value in runtime.items():
        checked_runtime[keys.canonical_key(key)] = keys.normalise_value(value, "revert.runtime.%s" % key)
    for path, text in texts.items():
        if path not in own:
            raise SysctlError("revert.files: %s is not a file of profile %r; only its own files are put back" % (path, name))
        if text is not None and (not isinstance(text, str) or not text.startswith(files.MARKER)):
            raise SysctlError("revert.files: the saved text of %s is not one of this collection's files" % path)
    state_text = state.get("text")
    if state.get("changed") and state_text is not None:
        try:
            data = json.loads(state_text)
        except (TypeError, ValueError):
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("originals"), dict):
            raise SysctlError("revert.state: the saved state file text is not a state file of this collection")
    parents = set()
    for path in own | {files.state_path(name)}:
        directory = os.path.dirname(path)
        while directory not in ("", "/"):
            parents.add(directory)
            directory = os.path.dirname(directory)
    directories = revert.get("directories") or []
    if not isinstance(directories, list) or any(d not in parents for d in directories):
        raise SysctlError("revert.directories: only directories that hold this profile's files are removed")
    return checked_runtime, texts, state, directories


def _emptied(root, directories, removed):
    """Of ``directories`` (deepest first), those with nothing left once ``removed`` and the emptied ones below are gone."""
    gone, out = set(removed), []
    for directory in directories:
        full = common.host_path(root, directory)
        if os.path.isdir(full) and all(os.path.join(directory, entry) in gone for entry in os.listdir(full)):
            out.append(directory)
            gone.add(directory)
    return out


def profile_reverted(root, name, revert, file=None, check_mode=False, tree=None, lock_timeout=files.LOCK_TIMEOUT):
    """Put back exactly what one earlier run changed (its ``revert`` result): runtime values, files, state file."""
    path = files.dropin_path(name, file)
    runtime, texts, state_doc, directories = _check_revert(name, file, revert)

    def planner(tree, state, settled, lock):
        kernel = systree.context(tree)
        changes, _done, skipped = _put_back(tree, runtime)
        file_changes = []
        for target in sorted(texts):
            current = files.read_owned(root, target)
            if current != texts[target]:
                file_changes.append((target, current, texts[target], 0o644))
        state_changes = bool(state_doc.get("changed")) and settled != state_doc.get("text")
        # Directories the reverted run created go too, when nothing else has come to live in them (the lock file is
        # removed last, with the state directory when it is empty then).
        removed = [target for target in texts if texts[target] is None] + [files.LOCK_PATH]
        if state_changes and state_doc.get("text") is None:
            removed.append(files.state_path(name))
        empty = _emptied(root, directories, removed)
        restored = dict((k, {"before": b, "after": a}) for k, b, a in changes)
        txn = Transaction("reverted", changes, file_changes, state_changes, state_doc.get("text"),
                          files.state_text_originals(state_doc.get("text")), empty)
        return txn, _result(
            changed=bool(changes or file_changes or state_changes or empty),
            restored=restored,
            skipped_keys=skipped,
            kernel=kernel,
            diff=_diff(changes, file_changes),
        )
    return _run(root, name, path, "reverted", check_mode, lock_timeout, tree, planner)
