# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tcp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Sysctl configuration files: parse, order, and resolve what boot applies. Read only.

Boot is systemd-sysctl (systemd 252 as on Debian 12 is the reference, src/sysctl/sysctl.c). What it does,
and what :class:`BootConfig` reproduces:

- ``*.conf`` files of /etc, /run, /usr/local/lib and /usr/lib ``sysctl.d`` (hidden names skipped), one per
  file name, the first directory winning; then sorted by file name regardless of directory
  (conf_files_list_strv()). /etc/sysctl.conf is read only through the usual ``99-sysctl.conf`` symlink.
- Each line is stripped of `` \\t\\n\\r``; empty lines and lines starting with ``#`` or ``;`` are skipped.
  ``key = value`` assigns, ``-key = value`` assigns and ignores a failure, ``-key`` alone excludes a key from
  glob assignments; any other line is ignored. Keys are normalised with sysctl_normalize().
- All assignments go into one ordered map keyed by the normalised key (a glob pattern is a key too). A later
  assignment with a different value replaces the entry and moves it to the end; one with the same value
  leaves it where it is. An exclusion is an entry without a value, so it replaces an assignment of the same
  key, and a later assignment replaces it.
- The map is applied in order. An explicit key is written. A glob is expanded over /proc/sys (glob(3) per
  path component, braces expanded, matches in sorted order) and written to every match that has no entry of
  its own in the map, so an explicit key or an exclusion always beats a glob, and of two globs the one later
  in the map wins.
- A value already there is not written at all (sysctl_write() uses WRITE_STRING_FILE_SUPPRESS_REDUNDANT_VIRTUAL:
  the file's text, without its newline, equals the value).

IPv4 interface keys (``net.ipv4.conf.IF.X``) depend on that order, because of the kernel (net/ipv4/devinet.c):
a write to ``conf/default/X`` is copied to every interface whose X was never written (devinet_conf_proc() ->
devinet_copy_dflt_conf(); any write marks the value as set, even a failing one), an interface starts as a copy
of ``default`` when it is created (inetdev_init()), and an interface that gets an IPv4 address has all its
values marked (ipv4_devconf_setall() in rtm_to_ifaddr(), inet_set_ifa() and, for ``lo`` coming up, in
inetdev_event()). At boot systemd brings ``lo`` up with 127.0.0.1 before any unit runs, so ``default`` never
reaches ``lo``; other interfaces have no address yet when systemd-sysctl.service runs (networkd and ifupdown come
later). :meth:`BootConfig.effective` replays the writes for one interface from the kernel's boot-time values
(``_DEVCONF_DEFAULT_AT_BOOT``), so a write skipped because the value is already there leaves the interface
unmarked, and a later ``default`` write still reaches it. systemd's udev rule (99-systemd.rules) runs
``systemd-sysctl --prefix=/net/ipv4/conf/$name`` whenever an interface other than ``lo`` appears; where that
rule exists (:func:`interface_hook`), an interface's own lines are applied again when it appears, after the
boot-wide run for an interface created later (networkd's netdevs, most NICs), so they win whatever the order.
IPv6 (net/ipv6/addrconf.c) copies ``default`` only into interfaces created later (ipv6_add_dev()); a write to
``conf/default/X`` never reaches an existing interface, so nothing is predicted through it (docs/sysctl.md).

procps ``sysctl --system`` (4.0.2) differs: it also reads /lib/sysctl.d and applies /etc/sysctl.conf last;
:func:`assignments` gives each key's explicit assignments in that order for the ``overrides`` facts.
"""

import os
import re
from collections import OrderedDict

from ansible_collections.linuxnet.tcp.plugins.module_utils._common import host_path, listed_files, read_text, special_kind
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import catalog
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import keys

SYSTEMD_DIRS = ("/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d")
PROCPS_DIRS = SYSTEMD_DIRS + ("/lib/sysctl.d",)
SYSCTL_CONF = "/etc/sysctl.conf"
# read_line() in systemd's src/basic/fileio.c ends a line at "\n", "\r", "\r\n" or a NUL byte.
_EOL_RE = re.compile("\r\n|[\n\r\x00]")
# IPv4 interface keys whose handler is not devinet_conf_proc(), so a write to ``default`` is not copied to
# existing interfaces: forwarding (devinet_sysctl_forward()), the flushing entries (ipv4_doint_and_flush())
# and the read-only mc_forwarding (net/ipv4/devinet.c, devinet_sysctl table).
_NOT_COPIED_FROM_DEFAULT = frozenset(("forwarding", "mc_forwarding", "disable_xfrm", "disable_policy", "promote_secondaries",
                                      "route_localnet", "drop_unicast_in_l2_multicast"))


# net.ipv4.conf.default.* as the kernel boots (ipv4_devconf_dflt in net/ipv4/devinet.c, 5.10 to 6.18); every other
# leaf starts at 0. Interfaces created at boot copy these values.
_DEVCONF_DEFAULT_AT_BOOT = {"accept_redirects": 1, "send_redirects": 1, "secure_redirects": 1, "shared_media": 1,
                            "accept_source_route": 1, "igmpv2_unsolicited_report_interval": 10000,
                            "igmpv3_unsolicited_report_interval": 1000, "arp_evict_nocarrier": 1}
# An integer as proc_dointvec() parses it (base 0: 0x.. hex, 0.. octal), surrounding whitespace allowed.
_KERNEL_INT_RE = re.compile(r"^\s*(-?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)\s*$")


def kernel_int(text):
    """The integer the kernel stores for ``text`` written to a single-integer key, or None when it refuses it."""
    match = _KERNEL_INT_RE.match(text)
    if not match:
        return None
    digits = match.group(2)
    value = int(digits, 8 if digits[0] == "0" and digits[1:2] not in ("x", "X") else 0)
    return -value if match.group(1) else value


def parse_conf(text, path=None, warnings=None):
    """Parse sysctl.d text the way systemd-sysctl does.

    Returns entries ``{norm, key, value, raw, ignore_failure, glob, exclude, file}``: ``norm`` is
    the normalised key systemd uses as map key, ``key`` the collection's spelling, ``raw`` the assigned text
    stripped of surrounding whitespace as systemd compares it, ``value`` the same with inner whitespace folded
    (both None for an exclusion). Keys with a ``..`` component are dropped: systemd-sysctl refuses to write them.
    A glob line beyond the pattern bounds (``_sysctl_keys.brace_expand()``) is skipped, and said in ``warnings``
    (a list) when given: any package can drop such a line, and it must not stop every run on the host.
    """
    entries = []
    for number, raw in enumerate(_EOL_RE.split(text), 1):
        line = raw.strip(keys.WHITESPACE)
        if not line or line[0] in "#;":
            continue
        ignore = exclude = False
        if "=" in line:
            body, value = line.split("=", 1)
            if body.startswith("-"):
                ignore, body = True, body[1:]
            value = value.strip(keys.WHITESPACE)
        elif line.startswith("-"):
            body, value, exclude, ignore = line[1:], None, True, True
        else:
            continue  # "Line is not an assignment, ignoring"
        parts = keys.split_key(body.strip(keys.WHITESPACE))
        if not parts or ".." in parts:
            continue
        norm = "/".join(parts)
        if keys.is_glob(norm):
            try:
                keys.brace_expand(norm)
            except keys.SysctlError as exc:
                if warnings is not None:
                    warnings.append("%s line %d skipped: %s" % (path, number, exc))
                continue
        entries.append({"norm": norm, "key": keys.name(parts), "raw": value,
                        "value": None if value is None else " ".join(value.split()), "ignore_failure": ignore,
                        "glob": keys.is_glob(norm), "exclude": exclude, "file": path})
    return entries


def config_files(root="/", tool="systemd", replace=None, warnings=None):
    """Files in application order as ``[(path, text)]``.

    ``replace`` maps a path to the text it would have (None: the file would not exist), so a run can resolve
    precedence as it will be after its own write, in check mode too. A name whose winning file cannot be read
    (a dangling link, a directory) still hides the same name in later directories, as in systemd. One that is not a
    regular file (a FIFO, a socket, a device) is never opened, and said in ``warnings`` (a list) when given.
    """
    replace = replace or {}
    dirs = SYSTEMD_DIRS if tool == "systemd" else PROCPS_DIRS
    chosen = {}
    for directory in dirs:
        names = set()
        try:
            names.update(os.listdir(host_path(root, directory)))
        except OSError:
            pass  # a directory that is missing or unreadable holds no file for systemd-sysctl either
        names.update(os.path.basename(p) for p in replace if os.path.dirname(p) == directory)
        for entry in names:
            if not entry.endswith(".conf") or entry.startswith("."):
                continue
            path = directory + "/" + entry
            if path in replace and replace[path] is None:
                continue
            chosen.setdefault(entry, path)
    files = []
    real_seen = set()
    for entry in sorted(chosen):
        path = chosen[entry]
        if path not in replace:
            kind = special_kind(root, path)
            if kind is not None:
                if warnings is not None:
                    warnings.append("%s is %s, not a regular file: skipped, never opened" % (path, kind))
                continue
        text = replace[path] if path in replace else read_text(root, path)
        if text is None:
            continue
        files.append((path, text))
        real_seen.add(os.path.realpath(host_path(root, path)))
    if tool == "procps":
        text = replace.get(SYSCTL_CONF) if SYSCTL_CONF in replace else read_text(root, SYSCTL_CONF)
        if text is not None and os.path.realpath(host_path(root, SYSCTL_CONF)) not in real_seen:
            files.append((SYSCTL_CONF, text))
    return files


def config_warnings(root="/", tool="procps", replace=None):
    """What reading the configuration files skipped, as warnings: files that are not regular, lines beyond bounds.

    A pass of its own over :func:`config_files` and :func:`parse_conf`, which skip the same things silently for
    every other reader.
    """
    warnings = []
    for path, text in config_files(root, tool, replace, warnings):
        parse_conf(text, path, warnings)
    return warnings


class BootConfig(object):
    """What systemd-sysctl applies at boot, from the files of ``root`` (see the module docstring)."""

    def __init__(self, root="/", replace=None):
        self.options = OrderedDict()
        for path, text in config_files(root, "systemd", replace):
            for entry in parse_conf(text, path):
                existing = self.options.get(entry["norm"])
                if existing is not None:
                    if existing["raw"] == entry["raw"]:
                        existing["ignore_failure"] = existing["ignore_failure"] or entry["ignore_failure"]
                        continue
                    del self.options[entry["norm"]]
                self.options[entry["norm"]] = entry
        self.globs = [(e, keys.Pattern(e["norm"])) for e in self.options.values() if e["glob"] and e["value"] is not None]
        self.interface_hook = interface_hook(root)

    def explicit_keys(self):
        """Keys (collection spelling) with an explicit assignment, not globs or exclusions."""
        return [e["key"] for e in self.options.values() if not e["glob"] and e["value"] is not None]

    def _own(self, parts, settable):
        """The map's entry for the key itself, or else the last glob that matches it (None: boot does not write it)."""
        entry = self.options.get("/".join(parts))
        if entry is None and self.globs and (settable is None or settable(keys.name(parts))):
            for candidate, pattern in self.globs:
                if pattern.matches(parts):
                    entry = candidate
        return entry if entry is not None and entry["value"] is not None else None

    def effective(self, key, settable=None):
        """The entry whose write leaves ``key`` with its value after boot, or None when boot leaves it as it was.

        ``settable(key)`` tells whether the key exists with a write bit; a glob only applies to such keys
        (glob(3) expands over what exists, and a write to a read-only file fails). An explicit entry is
        returned whatever the key is: it is what boot tries to write.

        An IPv4 interface key follows the kernel's rules for ``default`` (module docstring): ``lo`` takes only its
        own lines; another interface takes its own line when systemd's udev rule applies it as the interface
        appears, and otherwise the value the replay of boot's writes leaves (:meth:`_replay`). A value that comes
        from a write to the ``default`` key carries ``via`` (that key).
        """
        parts = keys.parts_of(key)
        own = self._own(parts, settable)
        if len(parts) != 5 or parts[:3] != ["net", "ipv4", "conf"] or parts[3] in ("all", "default", "lo") \
                or parts[4] in _NOT_COPIED_FROM_DEFAULT:
            return own
        default = keys.name(parts[:3] + ["default", parts[4]])
        if own is not None and self.interface_hook:
            return own
        if self.interface_hook:
            inherited = self.effective(default, settable)
            return dict(inherited, via=default) if inherited is not None else None
        value, source = self._replay(parts, settable)
        if own is not None and kernel_int(own["raw"]) is not None and str(kernel_int(own["raw"])) == value:
            return own  # the interface's own line holds, written or found already there
        return source

    def _replay(self, parts, settable):
        """Boot's writes to ``default`` and to the interface of ``parts``, in map order, from the boot-time values.

        The interface exists, has no address and was never written (the state at systemd-sysctl.service for every
        interface but ``lo``). Returns ``(value, entry)``: the value left, and the entry of the last write that
        changed it (None when none did).
        """
        dflt_parts = parts[:3] + ["default", parts[4]]
        targets = sorted([("/".join(dflt_parts), dflt_parts, True), ("/".join(parts), parts, False)])
        dflt_value = iface_value = str(_DEVCONF_DEFAULT_AT_BOOT.get(parts[4], 0))
        marked, source = False, None
        for entry in self.options.values():
            if entry["value"] is None:
                continue
            pattern = keys.Pattern(entry["norm"]) if entry["glob"] else None
            for norm, target, is_default in targets:
                if pattern is None:
                    if entry["norm"] != norm:
                        continue
                elif norm in self.options or not pattern.matches(target) \
                        or (settable is not None and not settable(keys.name(target))):
                    continue  # an explicit line (or an exclusion) of the key beats every glob
                if entry["raw"] == (dflt_value if is_default else iface_value):
                    continue  # systemd-sysctl skips a value already there: nothing is marked, nothing copied
                number = kernel_int(entry["raw"])
                if is_default:
                    if number is not None:
                        dflt_value = str(number)
                        if not marked:
                            iface_value, source = dflt_value, dict(entry, via=keys.name(dflt_parts))
                else:
                    marked = True  # even a write the kernel refuses marks the value as set
                    if number is not None:
                        iface_value, source = str(number), entry
        return iface_value, source

    def entry(self, key):
        """The map's own entry for ``key`` (an assignment or a ``-key`` exclusion), or None; globs are not consulted."""
        return self.options.get("/".join(keys.parts_of(key)))


def assignments(root="/", tool="procps", replace=None):
    """Each key's explicit assignments in application order: ``{key: [{file, value}]}`` (globs left out)."""
    out = {}
    for path, text in config_files(root, tool, replace):
        for entry in parse_conf(text, path):
            if not entry["glob"] and entry["value"] is not None:
                out.setdefault(entry["key"], []).append({"file": path, "value": entry["value"]})
    return out


# ---------------------------------------------------------------------------------------------
# Kernel modules at boot: is a module there before systemd-sysctl runs, and which parameters does it get.

MODULES_LOAD_DIRS = ("/etc/modules-load.d", "/run/modules-load.d", "/usr/local/lib/modules-load.d", "/usr/lib/modules-load.d")
MODPROBE_DIRS = ("/etc/modprobe.d", "/run/modprobe.d", "/usr/local/lib/modprobe.d", "/lib/modprobe.d", "/usr/lib/modprobe.d")
UDEV_RULES_DIRS = ("/etc/udev/rules.d", "/run/udev/rules.d", "/usr/local/lib/udev/rules.d", "/usr/lib/udev/rules.d", "/lib/udev/rules.d")
_UDEV_MODULE_RE = re.compile(r'SUBSYSTEM=="module"')
_UDEV_KERNEL_RE = re.compile(r'KERNEL=="([^"]+)"')
_UDEV_PREFIX_RE = re.compile(r"--prefix=([^\s\"']+)")


def module_name(text):
    """Kernel module names treat '-' and '_' alike; the kernel shows '_'."""
    base = os.path.basename(text)
    for suffix in (".ko.zst", ".ko.xz", ".ko.gz", ".ko"):
        if base.endswith(suffix):
            base = base[:-len(suffix)]
    return base.replace("-", "_")


_UDEV_NET_RE = re.compile(r'SUBSYSTEM=="net"')
_UDEV_IFACE_PREFIX_RE = re.compile(r"--prefix=/?(?:proc/sys/)?net[/.]ipv4[/.]conf[/.](?:\$name|\$kernel|%k)\b")


def interface_hook(root="/"):
    """Whether a udev rule runs ``systemd-sysctl --prefix=/net/ipv4/conf/$name`` when a network interface appears.

    systemd ships one (99-systemd.rules, for every interface but ``lo``); containers and hosts without udev have none.
    """
    for _path, text in listed_files(root, UDEV_RULES_DIRS, ".rules"):
        for raw in text.splitlines():
            line = raw.strip()
            if line.startswith("#") or "systemd-sysctl" not in line:
                continue
            if _UDEV_NET_RE.search(line) and _UDEV_IFACE_PREFIX_RE.search(line):
                return True
    return False


class ModuleBoot(object):
    """What loads a kernel module before systemd-sysctl runs (systemd-sysctl.service is After=systemd-modules-load).

    Sources: modules-load.d(5) files and ``modules_load=``/``rd.modules_load=`` on the kernel command line (read by
    systemd-modules-load), the modules those pull in (modules.dep), modules built into the kernel
    (modules.builtin), and udev rules that run ``systemd-sysctl --prefix=...`` when a module appears, which apply
    its keys whenever it loads (sysctl.d(5) shows one for br_netfilter).
    """

    def __init__(self, root="/", release=None, replace=None):
        self.root = root
        self.release = release
        self.listed = {}
        replace = replace or {}
        files = dict(listed_files(root, MODULES_LOAD_DIRS, ".conf"))
        for path, text in replace.items():
            if text is None:
                files.pop(path, None)
            else:
                files[path] = text
        for path in sorted(files, key=os.path.basename):
            for raw in _EOL_RE.split(files[path]):
                line = raw.strip(keys.WHITESPACE)
                if line and line[0] not in "#;":
                    self.listed.setdefault(module_name(line), path)
        cmdline = read_text(root, "/proc/cmdline") or ""
        for word in cmdline.split():
            name, _sep, value = word.partition("=")
            if name.replace("-", "_") in ("modules_load", "rd.modules_load") and value:
                for item in value.split(","):
                    self.listed.setdefault(module_name(item), "kernel command line (%s)" % name)
        self.deps = {}
        self.builtin = set()
        if release:
            base = "/lib/modules/%s/" % release
            for raw in (read_text(root, base + "modules.dep") or "").splitlines():
                target, _sep, rest = raw.partition(":")
                if target:
                    self.deps[module_name(target)] = [module_name(d) for d in rest.split()]
            self.builtin = set(module_name(line) for line in (read_text(root, base + "modules.builtin") or "").split())
        self.hooks = {}
        for path, text in listed_files(root, UDEV_RULES_DIRS, ".rules"):
            for raw in text.splitlines():
                if not _UDEV_MODULE_RE.search(raw):
                    continue
                kernel, prefixes = _UDEV_KERNEL_RE.search(raw), _UDEV_PREFIX_RE.findall(raw)
                if kernel and prefixes and "systemd-sysctl" in raw:
                    self.hooks.setdefault(module_name(kernel.group(1)), []).append((path, prefixes))

    def is_builtin(self, module):
        name = module_name(module)
        if name in self.builtin:
            return True
        # A built-in module with parameters has /sys/module/NAME without the initstate a loadable one has.
        sysdir = host_path(self.root, "/sys/module/" + name)
        return os.path.isdir(sysdir) and not os.path.exists(os.path.join(sysdir, "initstate"))

    def loaded_by(self, module, key=None):
        """What makes ``module`` (and so ``key``) present when boot applies sysctls, or None."""
        name = module_name(module)
        if self.is_builtin(name):
            return "built into the kernel"
        if name in self.listed:
            return "modules-load.d: %s" % self.listed[name]
        for listed, source in sorted(self.listed.items()):
            if name in self._closure(listed):
                return "modules-load.d: %s loads %s, which needs %s" % (source, listed, name)
        if key is not None:
            path = "/" + "/".join(keys.parts_of(key))
            for rules, prefixes in self.hooks.get(name, []):
                if any(path == p.rstrip("/") or path.startswith(p.rstrip("/") + "/") for p in prefixes):
                    return "udev rule %s runs systemd-sysctl for it when %s loads" % (rules, name)
        return None

    def _closure(self, module):
        seen, todo = set(), [module]
        while todo:
            for dep in self.deps.get(todo.pop(), []):
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        return seen


def modprobe_options(root="/", replace=None):
    """``{module: {param: {"value", "file"}}}`` from modprobe.d(5) ``options`` lines; a later line wins per parameter."""
    files = dict(listed_files(root, MODPROBE_DIRS, ".conf"))
    for path, text in (replace or {}).items():
        if text is None:
            files.pop(path, None)
        else:
            files[path] = text
    out = {}
    for path in sorted(files, key=os.path.basename):
        for raw in files[path].splitlines():
            words = raw.split("#", 1)[0].split()
            if len(words) >= 3 and words[0] == "options":
                for word in words[2:]:
                    param, sep, value = word.partition("=")
                    if sep:
                        out.setdefault(module_name(words[1]), {})[param] = {"value": value, "file": path}
    return out


def module_parameter(root, module, param):
    """The live value of a loaded module's parameter (/sys/module/M/parameters/P), or None."""
    text = read_text(root, "/sys/module/%s/parameters/%s" % (module_name(module), param))
    return None if text is None else text.strip()


def boot_reason(modules, key, kernel, exists=True):
    """``(applies, module, loaded_by, reason)``: would boot's write of ``key`` take effect at all.

    ``modules`` is a :class:`ModuleBoot`, ``kernel`` the run's context (``proc_sys_net_writable``), ``exists`` False
    for a key this kernel does not have at all.
    """
    module = catalog.module_for(key)
    if not kernel["proc_sys_net_writable"]:
        return False, module, None, ("systemd-sysctl does not run where /proc/sys/net is read-only "
                                     "(ConditionPathIsReadWrite=/proc/sys/net/); the container runtime sets these keys")
    loaded_by = modules.loaded_by(module, key) if module else None
    if module and loaded_by is None:
        return False, module, None, (
            "needs kernel module %s, which nothing loads before systemd-sysctl runs (not built in, not in modules-load.d, "
            "no udev rule): when it loads later its keys start from the kernel defaults; list it in modules-load.d "
            "(sysctl_profile modules: [%s])" % (module, module))
    if not exists:
        return False, module, loaded_by, "%s does not exist on this kernel, so boot cannot write it" % key
    return True, module, loaded_by, ""


def module_options_state(root, loaded, options):
    """``[{module, param, value, file, live, needs_module_reload}]`` for ``{module: {param: {value, file}}}``.

    A loaded module (``loaded(module)``) keeps the parameters it was loaded with: a modprobe.d value differing
    from the live one (/sys/module/M/parameters/P) takes effect only when the module is loaded again.
    """
    rows = []
    for module in sorted(options):
        is_loaded = loaded(module)
        for param in sorted(options[module]):
            item = options[module][param]
            live = module_parameter(root, module, param) if is_loaded else None
            rows.append({"module": module, "param": param, "value": item["value"], "file": item["file"], "live": live,
                         "needs_module_reload": live is not None and not keys.values_equal(live, item["value"])})
    return rows
