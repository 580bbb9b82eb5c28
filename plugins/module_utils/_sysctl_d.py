# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tcp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Persistent sysctl configuration: the only code in the collection that writes sysctl files.

Precedence follows systemd-sysctl and procps ``sysctl --system`` (sysctl.d(5), systemd
man/standard-conf.xml, procps-ng sysctl(8)): ``*.conf`` files from /etc, /run, /usr/local/lib,
/usr/lib (and /lib for procps) sysctl.d are sorted by file name regardless of directory; for the
same name the first directory wins; a later file wins per key; procps then applies
/etc/sysctl.conf last, while systemd-sysctl reads it only through the usual
``/etc/sysctl.d/99-sysctl.conf`` symlink.

This module also owns the profile drop-in (``/etc/sysctl.d/90-linuxnet-<name>.conf``), the
profile's boot-time kernel module files (``/etc/modules-load.d/90-linuxnet-<name>.conf`` and
``/etc/modprobe.d/90-linuxnet-<name>.conf``), the saved runtime originals
(``/var/lib/linuxnet-tcp/sysctl-<name>.json``) and the orchestration of a profile run: validate and
plan, load missing modules, plan again, then (unless check mode) state file, runtime transaction, files.
"""
from __future__ import annotations

import fnmatch
import json
import os
import re
import tempfile

from ansible_collections.linuxnet.tcp.plugins.module_utils import _catalog as catalog
from ansible_collections.linuxnet.tcp.plugins.module_utils import _sysctl as sysctl
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import ApplyError, SysctlError

MODULES_LOAD_DIR = "/etc/modules-load.d"
MODPROBE_DIR = "/etc/modprobe.d"
SYSTEMD_DIRS = ("/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d")
PROCPS_DIRS = SYSTEMD_DIRS + ("/lib/sysctl.d",)
SYSCTL_CONF = "/etc/sysctl.conf"
STATE_DIR = "/var/lib/linuxnet-tcp"
DEFAULT_DIR = "/etc/sysctl.d"
MARKER = "# Managed by linuxnet.tcp.sysctl_profile"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# Kernel module names: MODULE_NAME_LEN is 56 including the NUL; '-' and '_' are interchangeable.
_MODULE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,54}$")
_PARAM_RE = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_PARAM_VALUE_RE = re.compile(r"^[A-Za-z0-9_.,:/+-]{1,256}$")


def _host(root, path):
    """Map an absolute target path into ``root``."""
    return os.path.join(root, path.lstrip("/"))


def _read_text(root, path):
    """Read a file of the target, following one symlink level inside ``root``. None if absent."""
    full = _host(root, path)
    if os.path.islink(full):
        target = os.readlink(full)
        if target == "/dev/null":
            return ""
        if os.path.isabs(target):
            full = _host(root, target)
    try:
        with open(full, "rb") as handle:
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return None


def parse_conf(text):
    """Parse sysctl.d text into entries ``{key, value, ignore_failure, glob, exclude, line}``."""
    entries = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        ignore = line.startswith("-")
        body = line[1:].strip() if ignore else line
        if "=" not in body:
            if ignore and body:
                # "-key" without "=" excludes the key from glob assignments (sysctl.d(5)).
                try:
                    entries.append({"key": sysctl.canonical_key(body, allow_glob=True), "value": None, "ignore_failure": True,
                                    "glob": False, "exclude": True, "line": number})
                except SysctlError:
                    pass
            continue
        key, value = body.split("=", 1)
        try:
            key = sysctl.canonical_key(key, allow_glob=True)
        except SysctlError:
            continue
        entries.append({"key": key, "value": " ".join(value.split()), "ignore_failure": ignore,
                        "glob": bool(set("*?[") & set(key)), "exclude": False, "line": number})
    return entries


def config_files(root="/", tool="systemd", replace=None):
    """Files in application order as ``[(path, text)]``.

    ``replace`` maps a path to the text it would have (None: the file would not exist), so a run
    can resolve precedence as it will be after its own write, in check mode too.
    """
    replace = replace or {}
    dirs = SYSTEMD_DIRS if tool == "systemd" else PROCPS_DIRS
    chosen = {}
    for directory in dirs:
        names = set()
        try:
            names.update(n for n in os.listdir(_host(root, directory)) if n.endswith(".conf"))
        except OSError:
            pass
        names.update(os.path.basename(p) for p in replace if os.path.dirname(p) == directory)
        for name in names:
            path = directory + "/" + name
            if path in replace and replace[path] is None:
                continue
            chosen.setdefault(name, path)
    files = []
    real_seen = set()
    for name in sorted(chosen):
        path = chosen[name]
        text = replace[path] if path in replace else _read_text(root, path)
        if text is None:
            continue
        files.append((path, text))
        real_seen.add(os.path.realpath(_host(root, path)))
    if tool == "procps":
        text = replace.get(SYSCTL_CONF) if SYSCTL_CONF in replace else _read_text(root, SYSCTL_CONF)
        if text is not None and os.path.realpath(_host(root, SYSCTL_CONF)) not in real_seen:
            files.append((SYSCTL_CONF, text))
    return files


def resolve(root="/", tool="systemd", replace=None):
    """Per key, every explicit assignment in application order: ``{key: [{file, value, ignore_failure}]}``.

    Glob lines are returned separately as ``[(file, entry)]``; use :func:`effective`.
    """
    explicit, globs = {}, []
    for path, text in config_files(root, tool, replace):
        for entry in parse_conf(text):
            if entry["glob"] or entry["exclude"]:
                globs.append((path, entry))
            else:
                explicit.setdefault(entry["key"], []).append(
                    {"file": path, "value": entry["value"], "ignore_failure": entry["ignore_failure"]})
    return explicit, globs


def effective(key, explicit, globs):
    """The assignment boot applies to ``key``: the last explicit one, else the last matching glob."""
    if key in explicit:
        return explicit[key][-1]
    if any(e["exclude"] and e["key"] == key for _path, e in globs):
        return None
    match = None
    for path, entry in globs:
        if not entry["exclude"] and fnmatch.fnmatchcase(key, entry["key"]):
            match = {"file": path, "value": entry["value"], "ignore_failure": entry["ignore_failure"]}
    return match


# ---------------------------------------------------------------------------------------------
# Owned drop-in and state file.

def validate_name(name):
    if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name:
        raise SysctlError("name %r must be 1-64 characters of letters, digits, '_', '-', '.', start with a letter or digit "
                          "and contain no '..' (it becomes a file name under %s)" % (name, DEFAULT_DIR))
    return name


def dropin_path(name, file=None):
    """Target path of a profile's drop-in, validated."""
    validate_name(name)
    if file is None:
        return "%s/90-linuxnet-%s.conf" % (DEFAULT_DIR, name)
    if not isinstance(file, str) or not file.startswith("/") or not file.endswith(".conf"):
        raise SysctlError("file %r must be an absolute path ending in .conf" % (file,))
    norm = os.path.normpath(file)
    if norm != file or "/../" in file + "/" or "\n" in file:
        raise SysctlError("file %r must be a normalised absolute path without '..'" % (file,))
    if norm == SYSCTL_CONF or os.path.basename(norm) == "99-sysctl.conf":
        raise SysctlError("file %r: this collection never edits /etc/sysctl.conf; use a drop-in under %s" % (file, DEFAULT_DIR))
    return norm


def state_path(name):
    return "%s/sysctl-%s.json" % (STATE_DIR, validate_name(name))


def render(name, entries):
    """Drop-in text for ``[(key, value, needs_module)]``; stable, so identical input gives identical bytes."""
    lines = [
        '%s (profile "%s"). Local edits are overwritten.' % (MARKER, name),
        "# Remove it with state=absent, which also restores the runtime values saved before the first apply.",
        '# A leading "-" marks keys that need a kernel module: boot never fails when the module is absent.',
    ]
    for key, value, needs_module in sorted(entries):
        lines.append("%s%s = %s" % ("-" if needs_module else "", key, value))
    return "\n".join(lines) + "\n"


def is_owned(text):
    return text is None or text.startswith(MARKER)


def check_owned(path, text, action="overwrite"):
    """Refuse to touch a file at one of our paths that lacks our header (``text`` is its content or None)."""
    if not is_owned(text):
        raise SysctlError("%s exists and is not managed by linuxnet.tcp (no '%s' header); refusing to %s it" % (path, MARKER, action))


def modules_load_path(name):
    return "%s/90-linuxnet-%s.conf" % (MODULES_LOAD_DIR, validate_name(name))


def modprobe_path(name):
    return "%s/90-linuxnet-%s.conf" % (MODPROBE_DIR, validate_name(name))


def validate_modules(modules, option="modules"):
    """Kernel module names, in order, without duplicates; errors name ``option``."""
    if modules is None:
        return []
    if not isinstance(modules, (list, tuple)):
        raise SysctlError("%s must be a list of kernel module names" % option)
    out = []
    for item in modules:
        if not isinstance(item, str) or not _MODULE_RE.match(item):
            raise SysctlError("%s: %r is not a kernel module name (letters, digits, '_' and '-', at most 55)" % (option, item))
        if item not in out:
            out.append(item)
    return out


def validate_module_options(options):
    """``{module: {param: value}}`` with every name and value checked, values as strings."""
    if not options:
        return {}
    if not isinstance(options, dict):
        raise SysctlError("module_options must map kernel module names to {parameter: value} mappings")
    out = {}
    for module, params in options.items():
        validate_modules([module], "module_options")
        if not isinstance(params, dict) or not params:
            raise SysctlError("module_options.%s must be a non-empty mapping of parameter names to values" % module)
        checked = {}
        for param, value in params.items():
            if not isinstance(param, str) or not _PARAM_RE.match(param):
                raise SysctlError("module_options.%s: %r is not a module parameter name (letters, digits, '_')" % (module, param))
            if isinstance(value, bool) or not isinstance(value, (int, str)) or not _PARAM_VALUE_RE.match(str(value)):
                raise SysctlError("module_options.%s.%s: value %r must be an integer or a token of letters, digits and "
                                  "_ . , : / + - (no spaces, newlines or comment characters)" % (module, param, value))
            checked[param] = str(value)
        out[module] = checked
    return out


def render_modules(name, modules):
    """modules-load.d(5) text: one module per line, loaded by systemd-modules-load before systemd-sysctl."""
    lines = ['%s (profile "%s"). Local edits are overwritten.' % (MARKER, name),
             "# Loaded by systemd-modules-load before systemd-sysctl, so the profile's keys exist at boot."]
    return "\n".join(lines + list(modules)) + "\n"


def render_modprobe(name, options):
    """modprobe.d(5) text: one ``options`` line per module."""
    lines = ['%s (profile "%s"). Local edits are overwritten.' % (MARKER, name)]
    for module in sorted(options):
        params = options[module]
        lines.append("options %s %s" % (module, " ".join("%s=%s" % (k, params[k]) for k in sorted(params))))
    return "\n".join(lines) + "\n"


def kernel_context(tree):
    return {
        "release": tree.kernel_release(),
        "initial_netns": not tree.in_child_netns(),
        "proc_sys_writable": not tree.proc_sys_read_only(),
        "proc_sys_net_writable": not tree.proc_sys_read_only("net"),
    }


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


def write_files(root, changes):
    """Write or remove ``[(path, old_text, new_text)]`` (new None removes) as one unit.

    Each file is replaced atomically; when one fails, the files already changed get their old text
    back before the error is raised, so no run leaves half of its files behind.
    """
    done = []
    try:
        for path, old, new in changes:
            if new is None:
                remove_file(root, path)
            else:
                write_atomic(root, path, new)
            done.append((path, old))
    except OSError:
        for path, old in reversed(done):
            try:
                if old is None:
                    remove_file(root, path)
                else:
                    write_atomic(root, path, old)
            except OSError:
                pass
        raise


def write_atomic(root, path, text, mode=0o644):
    """Write through a temp file in the target directory and rename over the target."""
    full = _host(root, path)
    directory = os.path.dirname(full)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(full) + ".")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, full)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def remove_file(root, path):
    try:
        os.unlink(_host(root, path))
    except FileNotFoundError:
        pass


def load_state(root, name):
    text = _read_text(root, state_path(name))
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        raise SysctlError("state file %s is not valid JSON; move it away to continue" % state_path(name))
    if not isinstance(data, dict) or not isinstance(data.get("originals"), dict):
        raise SysctlError("state file %s has no 'originals' mapping; move it away to continue" % state_path(name))
    return data


def dump_state(data):
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


# ---------------------------------------------------------------------------------------------
# Profile runs.

def _runtime_diff(changes):
    return {
        "before_header": "runtime (/proc/sys)", "after_header": "runtime (/proc/sys)",
        "before": "".join("%s = %s\n" % (c[0], c[1]) for c in changes),
        "after": "".join("%s = %s\n" % (c[0], c[2]) for c in changes),
    }


def _file_diff(path, before, after):
    return {"before_header": path, "after_header": path, "before": before or "", "after": after or ""}


def _overridden(root, path, new_text, keys):
    """Keys of our drop-in that another file wins at boot (systemd-sysctl order)."""
    explicit, globs = resolve(root, "systemd", {path: new_text})
    out = []
    for key in sorted(keys):
        eff = effective(key, explicit, globs)
        if eff is not None and eff["file"] != path:
            out.append({"key": key, "file": eff["file"], "value": eff["value"]})
    return out


def _boot_file(root, path, new_text):
    """``(path, old, new)`` for one of the profile's module files, or None when nothing is to change.

    A file at our path without our header is never overwritten; when we would only remove it, it is
    left alone (unlike a foreign drop-in, which stops the run: the keys it sets are what we manage).
    """
    old = _read_text(root, path)
    if new_text is None and not is_owned(old):
        return None
    check_owned(path, old)
    return None if old == new_text else (path, old, new_text)


def profile_present(root, name, settings, persist=True, apply=True, file=None, unsupported="skip", allow_unsafe=False,
                    check_mode=False, tree=None, modules=None, module_options=None, load=True,
                    reserve_listener_ports=False, modprobe=None):
    """Plan and (unless check mode) apply a profile. Raises SysctlError before any change, ApplyError after rollback.

    ``modules`` are listed in the profile's modules-load.d file and, with ``load`` in the initial network
    namespace, loaded now through ``modprobe(argv) -> (rc, out, err)`` before the keys are classified.
    ``module_options`` (``{module: {param: value}}``) go to the profile's modprobe.d file.
    ``tree`` defaults to ``SysctlTree(root)``; tests pass a tree that models kernel write errors.
    """
    path = dropin_path(name, file)
    if unsupported not in ("skip", "fail"):
        raise SysctlError("unsupported must be 'skip' or 'fail'")
    modules = validate_modules(modules)
    options = validate_module_options(module_options)
    tree = tree or sysctl.SysctlTree(root)
    kernel = kernel_context(tree)

    def plan_now():
        return sysctl.build_plan(settings, tree, unsupported=unsupported, allow_unsafe=allow_unsafe,
                                 reserve_listener_ports=reserve_listener_ports)

    # The first plan validates every key and value, so bad input fails before a module is loaded.
    plan = plan_now()
    warnings = []
    read_only = not kernel["proc_sys_writable"]
    if read_only:
        # Nothing can take a value here, and systemd-sysctl skips a read-only /proc/sys at boot
        # (ConditionPathIsReadWrite=/proc/sys/net/), so no file is written either.
        persist = False
    old_text = _read_text(root, path) if persist else None
    if persist:
        check_owned(path, old_text)
    boot_changes = []
    if persist:
        for boot_path, boot_text in ((modules_load_path(name), render_modules(name, modules) if modules else None),
                                     (modprobe_path(name), render_modprobe(name, options) if options else None)):
            change = _boot_file(root, boot_path, boot_text)
            if change:
                boot_changes.append(change)

    # Loading is left to the host inside a container, and pointless where no key can be written.
    can_load = apply and load and kernel["initial_netns"] and not read_only
    to_load = [m for m in modules if not tree.module_loaded(m)] if can_load else []
    modules_loaded = []
    if to_load and check_mode:
        modules_loaded = to_load
        for item in plan["skipped"]:
            if item["classification"] == sysctl.MODULE_NOT_LOADED and catalog.module_for(item["key"]) in to_load:
                item["reason"] += "; a real run loads it with modprobe first (check mode cannot)"
    elif to_load:
        modules_loaded, load_warnings = load_modules(tree, to_load, modprobe)
        warnings.extend(load_warnings)
        if modules_loaded:
            plan = plan_now()
    entries = plan["entries"]
    changes = [(e["key"], e["before"], e["after"]) for e in entries if e["change"]] if apply else []

    new_text = render(name, [(e["key"], e["after"], bool(e["module"])) for e in entries]) if persist else None
    file_changes = ([(path, old_text, new_text)] if persist and new_text != old_text else []) + boot_changes

    old_state = load_state(root, name)
    originals = dict(old_state["originals"]) if old_state else {}
    keys = set(e["key"] for e in entries)
    originals = dict((k, v) for k, v in originals.items() if k in keys)
    for key, before, _after in changes:
        originals.setdefault(key, before)
    new_state = {"profile": name, "file": path, "originals": originals}
    state_text = dump_state(new_state) if (originals or old_state) else None
    old_state_text = _read_text(root, state_path(name))
    state_changes = state_text is not None and state_text != old_state_text

    if persist and os.path.dirname(path) not in SYSTEMD_DIRS:
        warnings.append("%s is not in a directory systemd-sysctl reads; it will not be applied at boot" % path)
    for item in plan["unsafe_allowed"]:
        warnings.append("allow_unsafe: applying %s = %s although %s" % (item["key"], item["value"], item["reason"]))
    for item in plan["refused"]:
        warnings.append("refused %s = %s: %s; %s" % (item["key"], item["value"], item["reason"], item["suggestion"]))

    if not check_mode:
        if state_changes:
            write_atomic(root, state_path(name), state_text, 0o600)
        try:
            sysctl.apply_changes(tree, changes)
            write_files(root, file_changes)
        except (ApplyError, OSError) as exc:
            if not isinstance(exc, ApplyError):
                failures = sysctl.rollback(tree, [(c[0], c[1]) for c in changes])
                exc = ApplyError("writing the profile's files failed: %s; files restored, runtime %s" % (
                    exc, "rolled back" if not failures else "ROLLBACK INCOMPLETE: %s" % ", ".join(failures)))
            if state_changes:
                if old_state_text is None:
                    remove_file(root, state_path(name))
                else:
                    write_atomic(root, state_path(name), old_state_text, 0o600)
            raise exc

    applied = {}
    for e in entries:
        after = e["after"] if apply else e["before"]
        applied[e["key"]] = {"before": e["before"], "after": after}
    diff = []
    if changes:
        diff.append(_runtime_diff(changes))
    for change_path, before, after in file_changes:
        diff.append(_file_diff(change_path, before, after))
    return {
        # In check mode modules_loaded lists what a real run would load.
        "changed": bool(changes or file_changes or state_changes or modules_loaded),
        "applied": applied,
        "skipped_keys": plan["skipped"],
        "refused": plan["refused"],
        "renamed": plan["renamed"],
        "reserved_for_listeners": plan["reserved_for_listeners"],
        "modules_loaded": modules_loaded,
        "persisted_file": path if persist else None,
        "modules_file": modules_load_path(name) if persist and modules else None,
        "modprobe_file": modprobe_path(name) if persist and options else None,
        "overridden_at_boot": _overridden(root, path, new_text, keys) if persist else [],
        "not_restored": [],
        "kernel": kernel,
        "diff": diff,
        "warnings": warnings,
    }


def profile_absent(root, name, persist=True, apply=True, file=None, check_mode=False, tree=None):
    """Remove a profile's files and restore the saved runtime originals, unless another file now sets them."""
    path = dropin_path(name, file)
    tree = tree or sysctl.SysctlTree(root)
    kernel = kernel_context(tree)
    old_text = _read_text(root, path) if persist else None
    if persist:
        check_owned(path, old_text, "remove")
    state = load_state(root, name)
    originals = state["originals"] if state else {}
    explicit, globs = resolve(root, "systemd", {path: None})
    changes, not_restored, skipped = [], [], []
    for key in sorted(originals):
        other = effective(key, explicit, globs)
        if other is not None:
            not_restored.append({"key": key, "file": other["file"], "value": other["value"]})
            continue
        cls = sysctl.classify(tree, key)
        if cls["classification"] != sysctl.OK:
            skipped.append(dict(key=key, **cls))
            continue
        before = tree.read(key)
        if not sysctl.values_equal(before, originals[key]):
            changes.append((key, before, originals[key]))
    if not apply:
        changes, not_restored, skipped = [], [], []
    # The saved originals are kept until they could be restored (a read-only /proc/sys restores nothing).
    remove_state = apply and state is not None and kernel["proc_sys_writable"]
    file_changes = []
    if persist:
        if old_text is not None:
            file_changes.append((path, old_text, None))
        for boot_path in (modules_load_path(name), modprobe_path(name)):
            change = _boot_file(root, boot_path, None)
            if change:
                file_changes.append(change)
    if not check_mode:
        sysctl.apply_changes(tree, changes)
        write_files(root, file_changes)
        if remove_state:
            remove_file(root, state_path(name))
    diff = []
    if changes:
        diff.append(_runtime_diff(changes))
    for change_path, before, _after in file_changes:
        diff.append(_file_diff(change_path, before, ""))
    return {
        "changed": bool(changes or file_changes or remove_state),
        "applied": dict((k, {"before": b, "after": a}) for k, b, a in changes),
        "skipped_keys": skipped,
        "refused": [],
        "renamed": [],
        "reserved_for_listeners": [],
        "modules_loaded": [],
        "persisted_file": None,
        "modules_file": None,
        "modprobe_file": None,
        "overridden_at_boot": [],
        "not_restored": not_restored,
        "kernel": kernel,
        "diff": diff,
        "warnings": [],
    }


# ---------------------------------------------------------------------------------------------
# Facts.

def default_fact_keys():
    return catalog.group_keys(catalog.GROUP_TCP, catalog.GROUP_CORE)


def gather_facts(root="/", keys=None, persisted=True):
    """Build ``ansible_facts.sysctl``: values, missing, persisted, drift, overrides, kernel."""
    tree = sysctl.SysctlTree(root)
    patterns = [sysctl.canonical_key(k, allow_glob=True) for k in (keys or default_fact_keys())]
    values, missing = {}, {}

    def note_missing(key):
        cls = sysctl.classify(tree, key)
        if cls["classification"] == sysctl.OK:
            cls = {"classification": sysctl.READ_ONLY, "reason": "%s is not readable" % key}
        missing[key] = cls

    for pattern in patterns:
        if set("*?[") & set(pattern):
            for key in tree.expand(pattern):
                values[key] = tree.read(key)
            for key in catalog.KEYS:
                if fnmatch.fnmatchcase(key, pattern) and key not in values:
                    note_missing(key)
        else:
            try:
                values[pattern] = tree.read(pattern)
            except OSError:
                note_missing(pattern)

    def wanted(key):
        return any(fnmatch.fnmatchcase(key, p) for p in patterns)

    facts = {"values": values, "missing": missing, "persisted": {}, "drift": {}, "overrides": {}}
    if persisted:
        explicit, globs = resolve(root, "systemd")
        for key in sorted(set(explicit) | set(values) | set(missing)):
            if not wanted(key):
                continue
            eff = effective(key, explicit, globs)
            if eff is None:
                continue
            facts["persisted"][key] = {"value": eff["value"], "file": eff["file"]}
            if key in values and not sysctl.values_equal(values[key], eff["value"]):
                facts["drift"][key] = {"runtime": values[key], "persisted": eff["value"], "file": eff["file"]}
        explicit_all = resolve(root, "procps")[0]
        for key, items in explicit_all.items():
            if wanted(key) and len(set(i["file"] for i in items)) > 1:
                facts["overrides"][key] = [{"file": i["file"], "value": i["value"]} for i in items]
    facts["kernel"] = kernel_context(tree)
    return facts
