# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tcp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Decide a profile run: what to write, skip, refuse, restore, which files, what boot will do. Never writes.

Every function here reads (the ``/proc/sys`` tree, configuration files through ``_sysctl/conf.py``, the profile's own
files) and returns a decision; the readings that do not come from those two are inputs: the other agents that write
keys (``writers``, detected before the run, outside the transaction) and the local listening ports (``listeners``).
``_sysctl/apply.py`` carries a decision out (a :class:`Transaction`); ``_sysctl/profile.py`` strings the steps
together and turns a decision into the module's result.
"""

import json
import os
from typing import NamedTuple

from ansible_collections.linuxnet.tcp.plugins.module_utils import _common as common
from ansible_collections.linuxnet.tcp.plugins.module_utils._agents import writers as agents
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import catalog
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import conf
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import files
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import keys
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import safety
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import tree as systree
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.files import ProfileError
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.keys import SysctlError

OWNED_BY_AGENT = "owned_by_agent"
RANGE_KEY = "net.ipv4.ip_local_port_range"
RESERVED_KEY = "net.ipv4.ip_local_reserved_ports"


class Setting(NamedTuple):
    """One validated setting: the key as written (``requested``), the key it applies to, ``=``/``>=``/``<=``, the value."""
    requested: str
    key: str
    op: str
    value: str


class Change(NamedTuple):
    """One runtime write: the value before and after."""
    key: str
    before: str
    after: str


class FileChange(NamedTuple):
    """One file written (``new`` None: removed), with its text before (None: absent) and its mode."""
    path: str
    old: object
    new: object
    mode: int


class Transaction(object):
    """Everything a run writes, decided before its first write.

    ``runtime`` ``[Change]``; ``files`` ``[FileChange]``; ``state`` the state file's text after the run (None
    removes it) when ``state_change``, else it stays; ``originals`` the originals that text holds; ``rmdirs``
    directories to remove once empty (a revert).
    """

    def __init__(self, action, runtime=(), file_changes=(), state_change=False, state=None, originals=None, rmdirs=()):
        self.action = action
        self.runtime = [Change(*c) for c in runtime]
        self.files = [FileChange(*f) for f in file_changes]
        self.state_change = state_change
        self.state = state
        self.originals = dict(originals or {})
        self.rmdirs = list(rmdirs)


# ---------------------------------------------------------------------------------------------
# The settings: validate, classify, resolve, refuse.

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
    """Validate and name every setting: ``[Setting]`` plus ``renamed``. Writes nothing."""
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
        parsed.append(Setting(key, target_key, op, value))
    return parsed, renamed


def named_keys(settings):
    """Every key the settings may apply to, in both spellings of a renamed key (what agent detection looks for).

    Keys that do not validate are left out: the plan refuses them with its own message.
    """
    named = set()
    for raw_key in (settings if isinstance(settings, dict) else {}):
        try:
            key = keys.canonical_key(raw_key)
        except SysctlError:
            continue  # parse_settings() refuses it, with the message that names the rule
        named.update((key, catalog.renamed_to(key) or key))
    return sorted(named)


def build_plan(settings, tree, unsupported="skip", allow_unsafe=False, reserve_listener_ports=False, writers=None, force=(),
               listeners=()):
    """Validate, map, classify and resolve every setting; decide what would change. Writes nothing.

    With ``reserve_listener_ports``, a profile that sets ip_local_port_range also reserves the ports of
    local listeners (``listeners``, the TCP ports in LISTEN state, read by the caller) inside the new range (added
    to ip_local_reserved_ports, never removing one); the listeners are also what the safety rule checks a new range
    against. ``writers`` (``_agents.writers_for()``) name other agents that set keys at runtime: a key one of them
    would rewrite (``_agents.conflicts()``: another exact value, a raise-only write above the wanted value, a value it
    decides itself) is skipped as ``owned_by_agent``, unless named in ``force``.

    Returns a dict: ``entries`` (ok keys in input order: key, requested, op, before, after, change,
    module), ``managed`` (every key of the settings, by its applied name), ``skipped``, ``refused``,
    ``renamed``, ``unsafe_allowed``, ``reserved_for_listeners``, ``forced`` (keys of ``entries`` that another
    agent would rewrite and that are applied only because ``force`` names them), ``requested`` (``{key: (op, value)}``).
    """
    parsed, renamed = parse_settings(settings, tree)
    entries, skipped, forced = [], [], []
    for setting in parsed:
        key, op, value = setting.key, setting.op, setting.value
        cls = systree.classify(tree, key)
        if cls["classification"] != systree.OK:
            item = {"key": key, "classification": cls["classification"], "reason": cls["reason"]}
            if tree.exists(key):
                # Read-only here but already right (for example set by the runtime's --sysctl): say so,
                # so nobody chases a value that is in fact in place. Only a note: a value that cannot be read or
                # resolved simply gets none.
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
        owner = other_writer(key, after, writers)
        if owner and key in force:
            forced.append(key)
        elif owner:
            skipped.append({"key": key, "classification": OWNED_BY_AGENT, "reason": owner})
            continue
        entries.append({"key": key, "requested": setting.requested, "op": op, "value": value, "before": before, "after": after,
                        "change": not keys.values_equal(before, after), "module": catalog.module_for(key)})

    if skipped and unsupported == "fail":
        raise SysctlError("unsupported keys (unsupported=fail): " + "; ".join(
            "%s: %s (%s)" % (s["key"], s["classification"], s["reason"]) for s in skipped))

    listeners = set(listeners or ()) if any(e["key"] == RANGE_KEY for e in entries) else set()
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
                pass  # a key the rules cannot read is judged without it (safety.refusals(): "a key may be missing")
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
    managed = set(s.key for s in parsed) | set(e["key"] for e in entries)
    kept = set(e["key"] for e in entries)
    return {"entries": entries, "managed": managed, "skipped": skipped, "refused": refused, "renamed": renamed,
            "unsafe_allowed": unsafe_allowed, "reserved_for_listeners": reserved_for_listeners,
            "forced": [key for key in forced if key in kept],
            "requested": dict((s.key, (s.op, s.value)) for s in parsed)}


def other_writer(key, value, writers):
    """Why another agent owns ``key`` (it would rewrite ``value``), or None."""
    fought = fights(writers, key, value)
    if not fought:
        return None
    parts = []
    for writer in fought:
        value = "a value it decides at runtime" if writer["value"] is None else writer["value"]
        advice = writer["advice"].strip()
        parts.append("%s, to %s. %s" % (writer["source"], value, advice if advice.endswith(".") else advice + "."))
    return " ".join(parts) + " Skipped so the two do not take turns (force_owned_keys applies it anyway)."


def fights(writers, key, value):
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
            return []  # unreadable: no reservation is planned, and the safety rule refuses a range over a listener
        if not inside and not catalog.port_set(before):
            return []
        entry = {"key": RESERVED_KEY, "requested": RESERVED_KEY, "op": ">=", "value": catalog.fold_ports(inside),
                 "before": before, "after": before, "change": False, "module": None, "for_listeners": True}
        entries.append(entry)
    entry["after"] = catalog.fold_ports(catalog.port_set(entry["after"]) | inside)
    entry["change"] = not keys.values_equal(entry["before"], entry["after"])
    return sorted(inside)


# ---------------------------------------------------------------------------------------------
# Kernel modules: which to load now, and what boot does for the keys of the others.

def modules_to_load(tree, kernel, modules, apply, load):
    """``(can_load, to_load)``: whether this run may load modules, and the listed ones not loaded yet.

    Loading is left to the host inside a container, and pointless where no key can be written.
    """
    can_load = bool(apply and load and kernel["initial_netns"] and kernel["proc_sys_writable"])
    return can_load, ([m for m in modules if not tree.module_loaded(m)] if can_load else [])


def note_check_mode_loads(skipped, to_load):
    """The skipped keys, those of a module a real run would load first noted so (check mode cannot load it)."""
    out = []
    for item in skipped:
        if item["classification"] == systree.MODULE_NOT_LOADED and catalog.module_for(item["key"]) in to_load:
            item = dict(item, reason=item["reason"] + "; a real run loads it with modprobe first (check mode cannot)")
        out.append(item)
    return out


def split_boot_only(skipped, requested, modules):
    """Of the skipped keys, those to persist for boot: ``(still_skipped, boot_only)``.

    Keys of a listed module that this run does not load (load_modules or apply false) are persisted for the next
    boot, when the profile's modules-load.d file loads the module before systemd-sysctl runs. Only '=' settings:
    '>=' and '<=' need the running value, which exists once the module is loaded.
    """
    still, boot_only = [], []
    listed = set(conf.module_name(m) for m in modules)
    for item in skipped:
        module = catalog.module_for(item["key"])
        op, value = requested[item["key"]]
        if item["classification"] != systree.MODULE_NOT_LOADED or not module or conf.module_name(module) not in listed:
            still.append(item)
        elif op != "=":
            still.append(dict(item, reason=item["reason"] + "; not persisted for boot: '%s %s' needs the running value, "
                                                            "which exists once %s is loaded" % (op, value, module)))
        else:
            boot_only.append({"key": item["key"], "after": value, "module": module})
    return still, boot_only


def boot_file_changes(root, name, modules, options):
    """The profile's modules-load.d and modprobe.d files to write or remove: ``[FileChange]``.

    Refuses (``_sysctl/files.py``) a file at our path that is not ours, before anything is loaded or written.
    """
    out = []
    for boot_path, boot_text in ((files.modules_load_path(name), files.render_modules(name, modules) if modules else None),
                                 (files.modprobe_path(name), files.render_modprobe(name, options) if options else None)):
        change = files.boot_file_change(root, boot_path, boot_text)
        if change:
            out.append(FileChange(*(change + (0o644,))))
    return out


# ---------------------------------------------------------------------------------------------
# The whole run of state=present.

class PresentPlan(NamedTuple):
    """What a state=present run does and reports, decided before its first write.

    ``transaction`` is what it writes; ``entries`` the applied keys (build_plan), ``boot_only`` keys persisted for the
    boot that loads their module, ``skipped`` (plan and restore skips), ``boot`` the BootConfig as it will be after
    the run, ``restores`` the originals put back (keys dropped from the profile), ``not_restored`` dropped keys left
    to another file, ``boot_files`` ``{path: text after}`` of the module files, ``dropin_text`` the drop-in's text
    after the run (None when not persisted).
    """
    transaction: Transaction
    entries: list
    boot_only: list
    skipped: list
    boot: object
    restores: list
    not_restored: list
    boot_files: dict
    dropin_text: object


def plan_present(root, tree, state, settled, plan, name, path, persist, apply, can_load, kernel, modules, old_text, boot_changes):
    """Decide the files, the restores of dropped keys and the state file of a state=present run: :class:`PresentPlan`.

    ``plan`` is build_plan()'s on the tree as it is now (after modprobe), ``persist`` already false where nothing can
    be persisted, ``old_text`` the drop-in's text, ``boot_changes`` the module files to change (boot_file_changes()).
    """
    entries = plan["entries"]
    changes = [Change(e["key"], e["before"], e["after"]) for e in entries if e["change"]] if apply else []
    boot_only, skipped = [], plan["skipped"]
    if persist and kernel["initial_netns"] and not can_load:
        skipped, boot_only = split_boot_only(plan["skipped"], plan["requested"], modules)

    new_text = files.render(name, [(e["key"], e["after"], bool(e["module"])) for e in entries + boot_only]) if persist else None
    file_changes = ([FileChange(path, old_text, new_text, 0o644)] if persist and new_text != old_text else []) + boot_changes
    boot = conf.BootConfig(root, {path: new_text} if persist else None)

    saved = dict(state["originals"]) if state else {}
    # Keys dropped from the profile since the run that saved them get their original back.
    dropped = set(saved) - plan["managed"]
    restores, restored_keys, not_restored, restore_skipped = [], [], [], []
    if apply and kernel["proc_sys_writable"]:
        restores, restored_keys, not_restored, restore_skipped = restore_plan(tree, saved, dropped, boot)
    handed_over = set(restored_keys) | set(n["key"] for n in not_restored)
    # Saved originals stay for keys still in the profile and for dropped keys that could not be restored now.
    originals = dict((k, v) for k, v in saved.items() if k not in handed_over)
    for change in changes:
        originals.setdefault(change.key, change.before)
    # With apply=false the next boot makes the change: keep the running value now, so that absent gives it back then.
    for entry in entries if persist and not apply else ():
        if entry["change"]:
            originals.setdefault(entry["key"], entry["before"])
    state_text = files.state_text(name, path, originals) if (originals or state) else None
    state_changes = state_text is not None and state_text != settled
    restore_skipped = [dict(item, reason="dropped from the profile, its saved value %s is kept for later: %s"
                            % (saved[item["key"]], item["reason"])) for item in restore_skipped]
    txn = Transaction("present", changes + restores, file_changes, state_changes, state_text, originals)
    return PresentPlan(txn, entries, boot_only, skipped + restore_skipped, boot, restores, not_restored,
                       dict((c.path, c.new) for c in boot_changes), new_text)


# ---------------------------------------------------------------------------------------------
# Putting originals back: state=absent, keys dropped from a profile, state=reverted.

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
    changes, done, skipped = put_back(tree, dict((key, originals[key]) for key in own))
    return changes, done, not_restored, skipped


def put_back(tree, wanted):
    """Plan writing ``{key: value}`` back: ``([Change], done, skipped)``; a key this kernel cannot take now is skipped."""
    changes, done, skipped = [], [], []
    for key in sorted(wanted):
        cls = systree.classify(tree, key)
        if cls["classification"] != systree.OK:
            skipped.append(dict(key=key, **cls))
            continue
        before = tree.read(key)
        if not keys.values_equal(before, wanted[key]):
            changes.append(Change(key, before, wanted[key]))
        done.append(key)
    return changes, done, skipped


def plan_absent(root, tree, kernel, state, name, path, persist, apply):
    """The Transaction of state=absent and what it reports: ``(Transaction, not_restored, skipped)``."""
    old_text = files.read_owned(root, path, "remove") if persist else None
    originals = state["originals"] if state else {}
    changes, not_restored, skipped = [], [], []
    if apply:
        changes, _done, not_restored, skipped = restore_plan(tree, originals, originals, conf.BootConfig(root, {path: None}))
    # The saved originals are kept until they could be restored (a read-only /proc/sys restores nothing).
    remove_state = apply and state is not None and kernel["proc_sys_writable"]
    file_changes = []
    if persist:
        if old_text is not None:
            file_changes.append(FileChange(path, old_text, None, 0o644))
        for boot_path in (files.modules_load_path(name), files.modprobe_path(name)):
            change = files.boot_file_change(root, boot_path, None)
            if change:
                file_changes.append(FileChange(*(change + (0o644,))))
    txn = Transaction("absent", changes, file_changes, remove_state, None, {} if remove_state else originals)
    return txn, not_restored, skipped


def check_revert(name, file, revert):
    """Validate a revert document against this profile's own paths; return (runtime, files, state, directories)."""
    if not isinstance(revert, dict) or revert.get("profile") != name:
        raise ProfileError("revert must be the 'revert' result of a sysctl_profile run of profile %r" % name)
    own = {files.dropin_path(name, file), files.dropin_path(name), files.modules_load_path(name), files.modprobe_path(name)}
    runtime = revert.get("runtime") or {}
    texts = revert.get("files") or {}
    state = revert.get("state") or {}
    if not isinstance(runtime, dict) or not isinstance(texts, dict) or not isinstance(state, dict):
        raise ProfileError("revert: runtime and files must be mappings and state a mapping with changed and text")
    checked_runtime = {}
    for key, value in runtime.items():
        checked_runtime[keys.canonical_key(key)] = keys.normalise_value(value, "revert.runtime.%s" % key)
    for path, text in texts.items():
        if path not in own:
            raise ProfileError("revert.files: %s is not a file of profile %r; only its own files are put back" % (path, name))
        if text is not None and (not isinstance(text, str) or not text.startswith(files.MARKER)):
            raise ProfileError("revert.files: the saved text of %s is not one of this collection's files" % path)
    state_text = state.get("text")
    if state.get("changed") and state_text is not None:
        try:
            data = json.loads(state_text)
        except (TypeError, ValueError):
            data = None  # refused just below, with the message that says what the text should be
        if not isinstance(data, dict) or not isinstance(data.get("originals"), dict):
            raise ProfileError("revert.state: the saved state file text is not a state file of this collection")
    parents = set()
    for path in own | {files.state_path(name)}:
        directory = os.path.dirname(path)
        while directory not in ("", "/"):
            parents.add(directory)
            directory = os.path.dirname(directory)
    directories = revert.get("directories") or []
    if not isinstance(directories, list) or any(d not in parents for d in directories):
        raise ProfileError("revert.directories: only directories that hold this profile's files are removed")
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


def plan_reverted(root, tree, settled, name, runtime, texts, state_doc, directories):
    """The Transaction of state=reverted (put back exactly what one earlier run changed): ``(Transaction, skipped)``."""
    changes, _done, skipped = put_back(tree, runtime)
    file_changes = []
    for target in sorted(texts):
        current = files.read_owned(root, target)
        if current != texts[target]:
            file_changes.append(FileChange(target, current, texts[target], 0o644))
    state_changes = bool(state_doc.get("changed")) and settled != state_doc.get("text")
    # Directories the reverted run created go too, when nothing else has come to live in them (the lock file is
    # removed last, with the state directory when it is empty then).
    removed = [target for target in texts if texts[target] is None] + [files.LOCK_PATH]
    if state_changes and state_doc.get("text") is None:
        removed.append(files.state_path(name))
    empty = _emptied(root, directories, removed)
    txn = Transaction("reverted", changes, file_changes, state_changes, state_doc.get("text"),
                      files.state_text_originals(state_doc.get("text")), empty)
    return txn, skipped
