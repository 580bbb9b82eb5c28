# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tcp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The files a profile owns: render, check ownership, write atomically, save the runtime originals.

The only code in the collection that writes files. A profile ``NAME`` owns:

- the drop-in ``/etc/sysctl.d/90-linuxnet-NAME.conf`` (or the path given as ``file``);
- ``/etc/modules-load.d/90-linuxnet-NAME.conf``, read by systemd-modules-load before systemd-sysctl runs;
- ``/etc/modprobe.d/90-linuxnet-NAME.conf`` with the profile's module parameters;
- the state file ``/var/lib/linuxnet-tcp/sysctl-NAME.json``, the runtime values found before the first change.

Every owned file but the state file starts with :data:`MARKER`; a file at one of these paths without it
belongs to someone else and is never overwritten.
"""

import json
import os
import re
import tempfile

from ansible_collections.linuxnet.tcp.plugins.module_utils import _sysctl_keys as keys
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl_conf import SYSCTL_CONF, host_path, read_text
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl_keys import SysctlError

DEFAULT_DIR = "/etc/sysctl.d"
MODULES_LOAD_DIR = "/etc/modules-load.d"
MODPROBE_DIR = "/etc/modprobe.d"
STATE_DIR = "/var/lib/linuxnet-tcp"
MARKER = "# Managed by linuxnet.tcp.sysctl_profile"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# Kernel module names: MODULE_NAME_LEN is 56 including the NUL; '-' and '_' are interchangeable.
_MODULE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,54}$")
_PARAM_RE = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_PARAM_VALUE_RE = re.compile(r"^[A-Za-z0-9_.,:/+-]{1,256}$")


# ---------------------------------------------------------------------------------------------
# Paths and input.

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


# ---------------------------------------------------------------------------------------------
# Content.

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


def is_owned(text):
    return text is None or text.startswith(MARKER)


def check_owned(path, text, action="overwrite"):
    """Refuse to touch a file at one of our paths that lacks our header (``text`` is its content or None)."""
    if not is_owned(text):
        raise SysctlError("%s exists and is not managed by linuxnet.tcp (no '%s' header); refusing to %s it" % (path, MARKER, action))


def boot_file_change(root, path, new_text):
    """``(path, old, new)`` for one of the profile's module files, or None when nothing is to change.

    A file at our path without our header is never overwritten; when we would only remove it, it is
    left alone (unlike a foreign drop-in, which stops the run: the keys it sets are what we manage).
    """
    old = read_text(root, path)
    if new_text is None and not is_owned(old):
        return None
    check_owned(path, old)
    return None if old == new_text else (path, old, new_text)


# ---------------------------------------------------------------------------------------------
# Writing.

def write_atomic(root, path, text, mode=0o644):
    """Write through a temp file in the target directory and rename over the target."""
    full = host_path(root, path)
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
        os.unlink(host_path(root, path))
    except FileNotFoundError:
        pass


def write_files(root, changes):
    """Write or remove ``[(path, old_text, new_text, mode)]`` (new None removes) as one unit.

    Each file is replaced atomically; when one fails, the files already changed get their old text
    back before the error is raised, so no run leaves half of its files behind.
    """
    done = []
    try:
        for path, old, new, mode in changes:
            if new is None:
                remove_file(root, path)
            else:
                write_atomic(root, path, new, mode)
            done.append((path, old, mode))
    except OSError:
        for path, old, mode in reversed(done):
            try:
                if old is None:
                    remove_file(root, path)
                else:
                    write_atomic(root, path, old, mode)
            except OSError:
                pass
        raise


# ---------------------------------------------------------------------------------------------
# State file.

def load_state(root, name):
    """The saved originals ``{"profile", "file", "originals": {key: value}}`` or None; keys in the collection's spelling.

    State files written before keys were spelled the sysctl(8) way (``net/ipv4/conf/eth0.100/x``) read the same.
    """
    path = state_path(name)
    text = read_text(root, path)
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        raise SysctlError("state file %s is not valid JSON; move it away to continue" % path)
    if not isinstance(data, dict) or not isinstance(data.get("originals"), dict):
        raise SysctlError("state file %s has no 'originals' mapping; move it away to continue" % path)
    originals = {}
    for key, value in data["originals"].items():
        # Validated like any key given as an option: a '..' component or a stray character would direct the
        # restore of this original outside /proc/sys.
        try:
            originals[keys.canonical_key(key)] = value
        except SysctlError as exc:
            raise SysctlError("state file %s names an invalid key (%s); move it away to continue" % (path, exc))
    data["originals"] = originals
    return data


def dump_state(data):
    return json.dumps(data, indent=2, sort_keys=True) + "\n"
