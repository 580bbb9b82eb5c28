# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tcp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The three runs of a profile (present, absent, reverted): read, plan, apply, report.

Each run reads what does not belong to the transaction first, without the lock: the other agents that write
the settings' keys (:func:`agent_writers`, so a detector's parser bug cannot change a write half-way) and the local
listening ports (:func:`listening_ports`). Then, under the host lock (``_sysctl/apply.run``), it decides everything
(``_sysctl/plan.py``: a Transaction and what boot will do), builds its result here, and unless in check mode
carries the Transaction out (``_sysctl/apply.commit``).
"""

import os

from ansible_collections.linuxnet.tcp.plugins.module_utils import _common as common
from ansible_collections.linuxnet.tcp.plugins.module_utils._agents import writers as agents
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import apply as act
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import conf
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import files
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import keys
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import plan as planning
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import tree as systree
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.files import ProfileError
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp import sockets


# ---------------------------------------------------------------------------------------------
# Readings outside the transaction.

def agent_writers(root, settings):
    """The other agents' writes of the keys ``settings`` name (``_agents.writers_for()``), detected in this netns.

    Called before a run (the module calls it and passes the result as ``writers``), so the transaction only reads it.
    """
    named = planning.named_keys(settings)
    return agents.writers_for(named, agents.in_this_netns(agents.detect(root), root)) if named else {}


def listening_ports(root):
    """TCP ports in LISTEN state in this network namespace (the range rule and ``reserve_listener_ports``).

    A LISTEN-only sock_diag dump walks the listening hash alone, so it costs the same on a host with
    a million established sockets; /proc/net/tcp{,6} is the fallback (and the source on a fake root).
    """
    backends = [sockets.ProcBackend(root)]
    if os.path.realpath(root) == "/":
        backends.insert(0, sockets.NetlinkBackend())
    counts = [0] * 32
    for backend in backends:
        try:
            ports = set()
            for family in (sockets.AF_INET, sockets.AF_INET6):
                ports.update(record.sport for record in backend.listeners(family, counts))
            return ports
        except sockets.CollectError:
            continue  # sock_diag refused (a seccomp filter, an old kernel): the next backend reads /proc
    return set()


# ---------------------------------------------------------------------------------------------
# Results.

def _runtime_diff(changes):
    return {
        "before_header": "runtime (/proc/sys)", "after_header": "runtime (/proc/sys)",
        "before": "".join("%s = %s\n" % (c.key, c.before) for c in changes),
        "after": "".join("%s = %s\n" % (c.key, c.after) for c in changes),
    }


def _diff(runtime_changes, file_changes):
    out = [_runtime_diff(runtime_changes)] if runtime_changes else []
    for change in file_changes:
        out.append({"before_header": change.path, "after_header": change.path, "before": change.old or "", "after": change.new or ""})
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
    written = [change.path for change in file_changes if change.new is not None]
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
        "runtime": dict((change.key, change.before) for change in runtime_changes),
        "files": dict((change.path, change.old) for change in file_changes),
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
# Runs.

def profile_present(root, name, settings, persist=True, apply=True, file=None, unsupported="skip", allow_unsafe=False,
                    check_mode=False, tree=None, modules=None, module_options=None, load=True,
                    reserve_listener_ports=False, modprobe=None, force_owned_keys=None, lock_timeout=files.LOCK_TIMEOUT,
                    writers=None, listeners=None):
    """Plan and (unless check mode) apply a profile. Raises SysctlError before any change, ApplyError after rollback.

    ``modules`` are listed in the profile's modules-load.d file and, with ``load`` in the initial network
    namespace, loaded now through ``modprobe(argv) -> (rc, out, err)`` before the keys are classified.
    ``module_options`` (``{module: {param: value}}``) go to the profile's modprobe.d file.
    A key that an earlier run of this profile changed and that ``settings`` no longer name gets its saved
    original back (``restored``), unless another file now sets it at boot.
    A key that another agent on the host would rewrite (kube-proxy, dockerd, TuneD, ...; ``writers``, from
    :func:`agent_writers`, detected here before the run when None) is skipped as ``owned_by_agent`` unless listed in
    ``force_owned_keys``. ``listeners`` (:func:`listening_ports`, read here when None and the settings set the
    local port range) are the ports the range rule and ``reserve_listener_ports`` look at.
    ``tree`` defaults to ``SysctlTree(root)``; tests pass a tree that models kernel write errors.
    The run holds the host lock (``_sysctl/files.HostLock``), waiting at most ``lock_timeout`` seconds for it.
    """
    path = files.dropin_path(name, file)
    if unsupported not in ("skip", "fail"):
        raise ProfileError("unsupported must be 'skip' or 'fail'")
    modules = files.validate_modules(modules)
    options = files.validate_module_options(module_options)
    if writers is None:
        writers = agent_writers(root, settings)
    if listeners is None:
        listeners = listening_ports(root) if planning.RANGE_KEY in planning.named_keys(settings) else set()
    force = set(keys.canonical_key(k) for k in (force_owned_keys or []))

    def plan_now(tree):
        """The settings planned on the tree as it is now."""
        return planning.build_plan(settings, tree, unsupported=unsupported, allow_unsafe=allow_unsafe,
                                   reserve_listener_ports=reserve_listener_ports, writers=writers, force=force, listeners=listeners)

    def planner(tree, state, settled, lock):
        kernel = systree.context(tree)
        # The first plan validates every key and value, so bad input fails before a module is loaded.
        plan = plan_now(tree)
        # Nothing can take a value on a read-only /proc/sys, and systemd-sysctl skips it at boot
        # (ConditionPathIsReadWrite=/proc/sys/net/), so no file is written either.
        persisting = persist and kernel["proc_sys_writable"]
        old_text = files.read_owned(root, path) if persisting else None
        boot_changes = planning.boot_file_changes(root, name, modules, options) if persisting else []
        can_load, to_load = planning.modules_to_load(tree, kernel, modules, apply, load)
        modules_loaded, warnings = [], []
        if to_load and check_mode:
            modules_loaded = to_load  # what a real run would load
            plan["skipped"] = planning.note_check_mode_loads(plan["skipped"], to_load)
        elif to_load:
            modules_loaded, warnings = act.load_modules(tree, to_load, modprobe)
            if modules_loaded:
                # The second plan, made by the same planner on the tree as modprobe left it: the keys of a module
                # just loaded exist now, with their running values.
                plan = plan_now(tree)
        decided = planning.plan_present(root, tree, state, settled, plan, name, path, persisting, apply, can_load, kernel,
                                        modules, old_text, boot_changes)
        result = _present_result(root, tree, kernel, name, path, persisting, apply, modules, options, plan, decided,
                                 modules_loaded, warnings, writers, settled, lock.created)
        return decided.transaction, result
    return act.run(root, name, path, "present", check_mode, lock_timeout, tree, planner)


def _present_result(root, tree, kernel, name, path, persist, apply, modules, options, plan, decided, modules_loaded, warnings,
                    writers, settled, lock_created):
    """The result of state=present for its plan (``plan``, build_plan()'s) and decision (``decided``, a PresentPlan)."""
    txn, entries = decided.transaction, decided.entries
    warnings = list(warnings) + conf.config_warnings(root, "systemd", {path: decided.dropin_text} if persist else None)
    if persist and os.path.dirname(path) not in conf.SYSTEMD_DIRS:
        warnings.append("%s is not in a directory systemd-sysctl reads; it will not be applied at boot" % path)
    for item in plan["unsafe_allowed"]:
        warnings.append("allow_unsafe: applying %s = %s although %s" % (item["key"], item["value"], item["reason"]))
    # Only the keys the plan really applied because they were forced: not one the agent sets to the same value, nor
    # one skipped or refused anyway.
    targets = dict((e["key"], e["after"]) for e in entries)
    for key in plan["forced"]:
        warnings.append("force_owned_keys: applying %s although %s also sets it; it writes its own value again when it "
                        "restarts" % (key, ", ".join(w["agent"] for w in planning.fights(writers, key, targets[key]))))
    for item in plan["refused"]:
        warnings.append("refused %s = %s: %s; %s" % (item["key"], item["value"], item["reason"], item["suggestion"]))

    applied = {}
    for e in entries:
        applied[e["key"]] = {"before": e["before"], "after": e["after"] if apply else e["before"]}
    return _result(
        # In check mode modules_loaded lists what a real run would load.
        changed=bool(txn.runtime or txn.files or txn.state_change or modules_loaded),
        applied=applied,
        restored=_restored(decided.restores),
        skipped_keys=decided.skipped,
        pending_reboot=_pending_reboot(entries, decided.boot_only, apply) if persist else [],
        lost_at_boot=_lost_at_boot(root, tree, kernel, entries, decided.boot_files) if persist else [],
        needs_module_reload=_needs_reload(root, tree, options),
        refused=plan["refused"],
        renamed=plan["renamed"],
        reserved_for_listeners=plan["reserved_for_listeners"],
        modules_loaded=modules_loaded,
        persisted_file=path if persist else None,
        modules_file=files.modules_load_path(name) if persist and modules else None,
        modprobe_file=files.modprobe_path(name) if persist and options else None,
        overridden_at_boot=_overridden(decided.boot, path, entries) if persist else [],
        not_restored=decided.not_restored,
        kernel=kernel,
        diff=_diff(txn.runtime, txn.files),
        revert=_revert_doc(root, name, txn.runtime, txn.files, settled, txn.state_change, lock_created),
        warnings=warnings,
    )


def _restored(changes):
    return dict((c.key, {"before": c.before, "after": c.after}) for c in changes)


def profile_absent(root, name, persist=True, apply=True, file=None, check_mode=False, tree=None, lock_timeout=files.LOCK_TIMEOUT):
    """Remove a profile's files and restore the saved runtime originals, unless another file now sets them.

    The state file goes last, once every value it could restore is back (see ``_sysctl/apply.commit``).
    """
    path = files.dropin_path(name, file)

    def planner(tree, state, settled, lock):
        kernel = systree.context(tree)
        txn, not_restored, skipped = planning.plan_absent(root, tree, kernel, state, name, path, persist, apply)
        restored = _restored(txn.runtime)
        return txn, _result(
            changed=bool(txn.runtime or txn.files or txn.state_change),
            # applied: the keys restored, as before the restored result existed.
            applied=restored,
            restored=restored,
            skipped_keys=skipped,
            not_restored=not_restored,
            kernel=kernel,
            diff=_diff(txn.runtime, txn.files),
            revert=_revert_doc(root, name, txn.runtime, txn.files, settled, txn.state_change, lock.created),
            warnings=conf.config_warnings(root, "systemd", {path: None}) if apply else [],
        )
    return act.run(root, name, path, "absent", check_mode, lock_timeout, tree, planner)


def profile_reverted(root, name, revert, file=None, check_mode=False, tree=None, lock_timeout=files.LOCK_TIMEOUT):
    """Put back exactly what one earlier run changed (its ``revert`` result): runtime values, files, state file."""
    path = files.dropin_path(name, file)
    runtime, texts, state_doc, directories = planning.check_revert(name, file, revert)

    def planner(tree, state, settled, lock):
        kernel = systree.context(tree)
        txn, skipped = planning.plan_reverted(root, tree, settled, name, runtime, texts, state_doc, directories)
        return txn, _result(
            changed=bool(txn.runtime or txn.files or txn.state_change or txn.rmdirs),
            restored=_restored(txn.runtime),
            skipped_keys=skipped,
            kernel=kernel,
            diff=_diff(txn.runtime, txn.files),
        )
    return act.run(root, name, path, "reverted", check_mode, lock_timeout, tree, planner)
