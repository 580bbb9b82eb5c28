# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tcp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Carry out a profile run's plan: the host lock, the journal, the runtime writes, the files, the rollback.

A run holds the host lock (``_sysctl/files.HostLock``) from its plan to its last write (:func:`run`). Unless in
check mode it then writes ahead (:func:`commit`): the state file as a journal holding the original of every value the
run may change, the runtime values as one transaction, the files as one unit, and last the state file at rest, which
only then drops the originals of values put back. A failure rolls back what was written, so a run changes all of it
or nothing; a kill at any instant leaves every original on disk, and the next run finds the journal and reports it
(``recovered``). Loading kernel modules (:func:`load_modules`) is the one act of a plan's run before its decision.
"""

import errno
import os

from ansible_collections.linuxnet.tcp.plugins.module_utils import _common as common
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import files
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import keys
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import tree as systree
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.files import ProfileError
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.keys import SysctlError
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.tree import ApplyError


class CommitError(ApplyError):
    """A write failed with an OS error (``path``, ``errno`` its name); what had been written is rolled back first."""

    def __init__(self, message, exc, rollback_failures=None):
        super(CommitError, self).__init__(message, rollback_failures=rollback_failures)
        self.path = exc.filename
        self.errno = errno.errorcode.get(exc.errno, str(exc.errno))


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
# One run under the host lock.

def check_timeout(lock_timeout):
    if isinstance(lock_timeout, bool) or not isinstance(lock_timeout, (int, float)) or not 0 <= lock_timeout <= 86400:
        raise ProfileError("lock_timeout must be a number of seconds from 0 to 86400, got %r" % (lock_timeout,))


def own_paths(name, path):
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
            continue  # a key gone (its module unloaded) was not left written: nothing to report for it
        if keys.values_equal(now, after) and not keys.values_equal(now, before):
            out["runtime_written"][key] = {"before": before, "after": after}
    own = own_paths(name, path)
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


def run(root, name, path, action, check_mode, lock_timeout, tree, planner):
    """One run: take the host lock, read what is on disk (an interrupted run's journal too), plan, then commit.

    ``planner(tree, state, settled, lock)`` decides everything without writing (modprobe aside) and returns
    ``(Transaction, result)``; ``state`` is the state file as read (its ``transaction`` set when a run was
    interrupted), ``settled`` its text at rest (without a journal). The lock is held from before the plan to after
    the last write.
    """
    check_timeout(lock_timeout)
    tree = tree or systree.SysctlTree(root)
    with files.HostLock(root, shared=check_mode, timeout=lock_timeout) as lock:
        try:
            raw_state = common.read_text(root, files.state_path(name))
            state = files.load_state(root, name)
            settled = raw_state
            if state is not None and state["transaction"] is not None:
                settled = files.dump_state(dict((k, v) for k, v in state.items() if k != "transaction"))
            txn, result = planner(tree, state, settled, lock)
            temps = files.leftover_temp_files(root, set(os.path.dirname(p) for p in own_paths(name, path)),
                                              [os.path.basename(p) for p in own_paths(name, path)])
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
            for change in txn.runtime:
                originals.setdefault(change.key, change.before)
            journal = files.journal_text(name, (state or {}).get("file", path), originals, action, txn.runtime, txn.files)
            lock.remove_on_release.extend(txn.rmdirs)
            commit(root, tree, name, txn, journal, raw_state, temps)
    return result


# ---------------------------------------------------------------------------------------------
# Write ahead, then act.

def commit(root, tree, name, txn, journal, old_state, temps):
    """Write ahead, then act: journal, runtime transaction, files as one unit, state file at rest; undo all on a failure.

    The journal (``_sysctl/files.journal_text()``) is on disk before the first runtime or file change, and the
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
        files.remove_empty_dirs(root, txn.rmdirs)
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
        failures = systree.rollback(tree, [(change.key, change.before) for change in txn.runtime])
        failures += files.undo_files(root, [(change.path, change.old, change.mode) for change in file_list])
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
    files.remove_empty_dirs(root, txn.rmdirs)
