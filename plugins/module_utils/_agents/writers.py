# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Other writers of our sysctl keys: known agents found from the target alone (PRIVATE to the collection).

A key that another agent rewrites does not stay at the value a profile set: kube-proxy writes the conntrack
size and timeouts when it starts, dockerd turns IPv4 forwarding back on, TuneD re-applies its profile,
bpftune retunes buffers continuously, systemd-networkd and NetworkManager write per-interface keys when a
link comes up. This module finds those agents from what the target shows (process table, command lines,
their own configuration files) and says, per key, what the agent writes and where to change it instead.

    detect(root="/") -> [{"agent": str, "pid": int or None, "evidence": str,
                          "keys": {key: {"value": str or None, "op": str, "yields": str or None,
                                         "source": str, "advice": str}}, "advice": str}]
    writers_for(keys, agents) -> {key: [{"agent", "value", "op", "yields", "source", "advice"}]}
    conflicts(write, requested, persisted=True) -> bool: would the agent rewrite ``requested``?

Keys use the sysctl(8) spelling of _sysctl_keys.canonical_key (``net.ipv4.conf.eth0/100.forwarding``
for components with dots). ``value`` is None when the agent decides it at runtime (bpftune) or when
its configuration cannot be read. ``op`` says how the agent writes it: SETS ("=", exactly ``value``), RAISES
(">=", only when the key is smaller: kube-proxy's conntrack buckets, TuneD's ">N") or LOWERS ("<=", TuneD's "<N");
``value`` keeps the agent's own spelling (">2048"). ``yields`` names when the agent gives way: YIELDS_TO_SYSCTL_D
(TuneD with reapply_sysctl=1 re-applies /etc/sysctl.d and /run/sysctl.d after its profile) or YIELDS_TO_WRITES
(bpftune stops tuning a key once someone else writes it); None otherwise. :func:`conflicts` is the one place that
decides from these whether a wanted value would be fought. kube-proxy in IPVS mode also gets ``ipvs`` ({tcp, tcpfin,
udp}: the ``ipvsadm --set`` timeouts it configures, None for "left as is" or unreadable); only this record has them.

Every reader takes ``root`` (default "/") so the tests run it over recorded trees. It only reads, never
raises on an unreadable or malformed file (the key's ``source`` says so), and uses the standard library.
Where an agent's behaviour changed between releases, ``source`` names the condition instead of guessing.
"""

import configparser
import fnmatch
import ipaddress
import json
import os
import re

from ansible_collections.linuxnet.tcp.plugins.module_utils._host import namespaces
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import conf as sysctl_conf
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.keys import SysctlError, canonical_key, values_equal
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.keys import name as key_name

# net.ipv4.ip_forward and net.ipv4.conf.all.forwarding are one kernel variable (net/ipv4/devinet.c: the
# ip_forward entry points at ipv4_devconf's FORWARDING slot), so a writer of one is a writer of the other.
ALIASES = {
    "net.ipv4.ip_forward": ("net.ipv4.conf.all.forwarding",),
    "net.ipv4.conf.all.forwarding": ("net.ipv4.ip_forward",),
}

# How an agent writes a key (``op``) and when it gives way (``yields``); see the module docstring and conflicts().
SETS, RAISES, LOWERS = "=", ">=", "<="
YIELDS_TO_SYSCTL_D = "sysctl.d"
YIELDS_TO_WRITES = "writes"

_TRUE = ("1", "true", "yes", "on", "y", "t")
_FALSE = ("0", "false", "no", "off", "n", "f")


# ---------------------------------------------------------------------------------------------
# Reading the target.

def _host(root, path):
    return os.path.join(root, path.lstrip("/"))


def _read(root, path, limit=1 << 20):
    try:
        with open(_host(root, path), "rb") as handle:
            return handle.read(limit).decode("utf-8", "replace")
    except OSError:
        return None


def _listdir(root, path):
    try:
        return sorted(os.listdir(_host(root, path)))
    except OSError:
        return []


def processes(root="/"):
    """Every process of ``root``/proc as {pid, comm, argv}; kernel threads have an empty argv."""
    out = []
    for name in _listdir(root, "/proc"):
        if not name.isdigit():
            continue
        comm = _read(root, "/proc/%s/comm" % name)
        if comm is None:
            continue
        argv = (_read(root, "/proc/%s/cmdline" % name) or "").split("\0")
        while argv and argv[-1] == "":
            argv.pop()
        out.append({"pid": int(name), "comm": comm.rstrip("\n"), "argv": argv})
    return out


def _find(procs, *names):
    """Processes whose comm (15 characters at most) or program name is one of ``names``.

    A script's argv[0] is its interpreter ("/usr/bin/python3 -Es /usr/sbin/tuned"), so the first non-option
    argument after a python interpreter counts as the program too.
    """
    found = []
    for proc in procs:
        argv = proc["argv"]
        program = os.path.basename(argv[0]) if argv else ""
        if program.startswith("python") and len(argv) > 1:
            script = next((arg for arg in argv[1:] if not arg.startswith("-")), "")
            program = os.path.basename(script)
        if proc["comm"] in names or program in names:
            found.append(proc)
    return found


def _unit_enabled(root, unit):
    """The /etc/systemd/system/*.wants/ link that starts ``unit`` at boot, or None."""
    for wants in _listdir(root, "/etc/systemd/system"):
        if wants.endswith(".wants"):
            link = "/etc/systemd/system/%s/%s" % (wants, unit)
            if os.path.lexists(_host(root, link)):
                return link
    return None


def _instances(root, procs, names, unit):
    """The running processes named ``names``, or one stand-in (pid None) when only ``unit`` starts at boot."""
    found = _find(procs, *names)
    if found:
        return found
    link = _unit_enabled(root, unit)
    return [{"pid": None, "comm": names[0], "argv": [], "enabled": link}] if link else []


def _evidence(proc, unit):
    return _cmdline(proc) if proc["argv"] else "%s (%s enabled, not running)" % (proc["enabled"], unit)


def _proc_file(root, pid, path):
    """Read ``path`` as the process sees it (its mount namespace through /proc/PID/root, relative paths from
    its cwd), then as a path of ``root``. Returns (text or None, the path that was read or tried)."""
    candidates = []
    if pid is not None:
        if os.path.isabs(path):
            candidates.append("/proc/%d/root%s" % (pid, path))
        else:
            candidates.append("/proc/%d/cwd/%s" % (pid, path))
    if os.path.isabs(path):
        candidates.append(path)
    for candidate in candidates:
        text = _read(root, candidate)
        if text is not None:
            return text, candidate
    return None, path


def _cpu_list_count(text):
    count = 0
    for part in (text or "").strip().split(","):
        if not part:
            continue
        low, _sep, high = part.partition("-")
        try:
            count += int(high or low) - int(low) + 1
        except ValueError:
            return None
    return count or None


def cpu_count(root="/", pid=None):
    """CPUs as kube-proxy counts them, and where the number came from.

    kube-proxy's detectNumCPU() asks cadvisor's GetTopology over /sys first and falls back to
    runtime.NumCPU(), the process's scheduler affinity (kubernetes pkg/proxy/conntrack/sysctls.go, issue
    kubernetes#99225): the online CPUs, then the process's Cpus_allowed_list, then our own affinity.
    """
    count = _cpu_list_count(_read(root, "/sys/devices/system/cpu/online"))
    if count:
        return count, "/sys/devices/system/cpu/online"
    if pid is not None:
        for line in (_read(root, "/proc/%d/status" % pid) or "").splitlines():
            if line.startswith("Cpus_allowed_list:"):
                count = _cpu_list_count(line.split(":", 1)[1])
                if count:
                    return count, "/proc/%d/status Cpus_allowed_list" % pid
    if os.path.realpath(root) == "/" and hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)), "sched_getaffinity()"
    return None, None


def _kernel_version(root):
    match = re.match(r"(\d+)\.(\d+)", (_read(root, "/proc/sys/kernel/osrelease") or "").strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


# ---------------------------------------------------------------------------------------------
# Parsing helpers: command lines, booleans, Go durations, INI and the small YAML subset of config files.

def parse_flags(argv, bool_flags=()):
    """Long options of a Go (pflag) command line: ``--name=value``, ``--name value``, bare booleans.

    The last occurrence wins, as in pflag. A flag not known to be boolean takes the next argument as its
    value unless that argument is itself an option. Single-dash options are read the same way.
    """
    out = {}
    index = 1
    while index < len(argv):
        arg = argv[index]
        index += 1
        if arg == "--":
            break
        if not arg.startswith("-") or arg == "-":
            continue
        name, sep, value = arg.lstrip("-").partition("=")
        if not sep:
            if name in bool_flags or index >= len(argv) or argv[index].startswith("-"):
                value = "true"
            else:
                value = argv[index]
                index += 1
        out[name] = value
    return out


def _bool(value):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if value is not None else ""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|\u00b5s|ms|s|m|h)")


def go_duration(value):
    """Seconds in a Go duration ("24h0m0s", "1h", "350s", "1.5h", "0"), or None when it is not one."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value) / 1e9  # a bare number in a Go config file is nanoseconds
    if not isinstance(value, str):
        return None
    text = value.strip()
    sign = -1.0 if text.startswith("-") else 1.0
    text = text.lstrip("+-")
    if text == "0":
        return 0.0
    total, pos = 0.0, 0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    return sign * total if pos == len(text) and pos else None


_PREAMBLE = "linuxnet-tcp-preamble"


def _ini(text, inline_comments=False, strip_lines=False):
    """An INI document (systemd units, TuneD profiles, NetworkManager keyfiles) as {section: {key: value}}.

    Repeated sections and keys are merged, later wins (systemd and TuneD semantics); lines before the first
    section land in "". Comments start a line with # or ;, and with ``inline_comments`` (TuneD's loader)
    also follow a value after #. With ``strip_lines`` every line is stripped first, as systemd's config parser
    (strstrip() of each line) and GLib's GKeyFile (NetworkManager keyfiles) do, so an indented line is a key of
    its own rather than configparser's continuation of the previous value. Returns {} for None or for a file that
    does not parse.
    """
    if strip_lines and text:
        text = "\n".join(line.strip() for line in text.splitlines())
    parser = configparser.ConfigParser(delimiters=("=",), comment_prefixes=("#", ";"),
                                       inline_comment_prefixes=("#",) if inline_comments else None, strict=False,
                                       interpolation=None, empty_lines_in_values=False, allow_no_value=True,
                                       default_section="linuxnet-tcp-no-defaults")
    parser.optionxform = str
    try:
        parser.read_string("[%s]\n%s" % (_PREAMBLE, text or ""))
    except configparser.Error:
        return {}
    out = {}
    for section in parser.sections():
        items = {key: (value if value is not None else "") for key, value in parser.items(section, raw=True)}
        if section != _PREAMBLE:
            out[section] = items
        elif items:
            out[""] = items
    return out


def _unquote(value):
    value = (value or "").strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return " ".join(value.split())


def _yaml_scalar(text):
    text = text.strip()
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text[0] == '"':
        try:
            return json.loads(text)
        except ValueError:
            return text.strip('"')
    if text[0] == "'":
        return text[1:-1].replace("''", "'")
    if text == "{}":
        return {}
    if text.startswith("[") and text.endswith("]"):
        inner = text[1:-1].strip()
        return [_yaml_scalar(part) for part in inner.split(",")] if inner else []
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _strip_comment(line):
    quote = None
    for pos, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "#" and (pos == 0 or line[pos - 1] in " \t"):
            return line[:pos].rstrip()
    return line.rstrip()


def parse_yaml(text):
    """The YAML that component configuration files use: block mappings, "- scalar" lists (also at the key's
    own indentation), scalars, quoted strings, {} and flow lists of scalars; the first document only.
    JSON documents go through json. Raises ValueError for what it does not understand."""
    stripped = (text or "").lstrip()
    if stripped.startswith("{"):
        return json.loads(stripped)
    lines = []
    for raw in (text or "").splitlines():
        line = _strip_comment(raw.replace("\t", "  "))
        content = line.strip()
        if content in ("---", "..."):
            if lines:
                break
            continue
        if content:
            lines.append((len(line) - len(line.lstrip(" ")), content))
    if not lines:
        return {}
    value, end = _yaml_block(lines, 0, lines[0][0])
    if end != len(lines):
        raise ValueError("unexpected indentation at %r" % lines[end][1])
    return value


def _yaml_block(lines, index, indent):
    if lines[index][1] == "-" or lines[index][1].startswith("- "):
        out = []
        while index < len(lines) and lines[index][0] == indent and (lines[index][1] == "-" or lines[index][1].startswith("- ")):
            out.append(_yaml_scalar(lines[index][1][1:]))
            index += 1
        return out, index
    out = {}
    while index < len(lines) and lines[index][0] == indent and not lines[index][1].startswith("- "):
        content = lines[index][1]
        key, sep, rest = content.partition(": ") if ": " in content else content.partition(":")
        if not sep:
            raise ValueError("expected 'key: value' at %r" % content)
        key = _yaml_scalar(key)
        index += 1
        if rest.strip():
            out[key] = _yaml_scalar(rest)
        elif index < len(lines) and (lines[index][0] > indent or (lines[index][0] == indent and lines[index][1].startswith("- "))):
            out[key], index = _yaml_block(lines, index, lines[index][0])
        else:
            out[key] = None
    return out, index


def _dig(data, *path):
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


# ---------------------------------------------------------------------------------------------
# Records.

def _agent(name, pid, evidence, advice):
    return {"agent": name, "pid": pid, "evidence": evidence, "keys": {}, "advice": advice}


def _set(agent, key, value, source, advice=None, op=SETS, yields=None):
    try:
        key = canonical_key(key)
    except SysctlError:
        return
    advice = advice or agent["advice"]
    agent["keys"][key] = {"value": None if value is None else str(value), "op": op, "yields": yields, "source": source,
                          "advice": advice if advice.endswith(".") else advice + "."}


def _single_int(text):
    try:
        return int(str(text).strip())
    except ValueError:
        return None


def conflicts(write, requested, persisted=True):
    """Whether the agent of ``write`` (a key of detect() or a row of writers_for()) would rewrite ``requested``.

    ``persisted`` says the requested value is also in a sysctl.d file that TuneD re-applies (/etc/sysctl.d or
    /run/sysctl.d, where sysctl_profile's drop-in goes by default). An agent that yields (TuneD with
    reapply_sysctl=1 for a persisted value, bpftune) does not fight. A value the agent decides at runtime or that
    could not be read fights. Otherwise SETS fights any other value; RAISES (the agent writes its value only when
    the key is smaller) fights a smaller integer, LOWERS a larger one; what does not compare as one integer fights
    unless equal.
    """
    yields = write.get("yields")
    if yields == YIELDS_TO_WRITES or (yields == YIELDS_TO_SYSCTL_D and persisted):
        return False
    value = write.get("value")
    if value is None:
        return True
    op = write.get("op") or SETS
    bound = value[1:] if op in (RAISES, LOWERS) and value[:1] in ("<", ">") else value
    if values_equal(bound, str(requested)):
        return False
    if op == SETS:
        return True
    limit, want = _single_int(bound), _single_int(requested)
    if limit is None or want is None:
        return True
    return want < limit if op == RAISES else want > limit


def _cmdline(proc):
    return " ".join(proc["argv"]) or "[%s]" % proc["comm"]


def _iface_key(family, iface, name):
    """``net.<family>.conf.<iface>.<name>``, a dot in the interface name written '/' (sysctl(8) spelling)."""
    return key_name(["net", family, "conf", iface, name])


# ---------------------------------------------------------------------------------------------
# kube-proxy.
#
# What it writes (kubernetes/kubernetes):
# - pkg/proxy/conntrack/sysctls.go setSysctls(): nf_conntrack_max = max(maxPerCore x CPUs, min) when
#   maxPerCore > 0 (capped at 1048576 by newer releases), and raises the nf_conntrack hashsize module
#   parameter (= net.netfilter.nf_conntrack_buckets) to max/4 when smaller; nf_conntrack_tcp_timeout_established
#   and _close_wait when their timeouts are > 0; nf_conntrack_tcp_be_liberal = 1 when tcpBeLiberal;
#   nf_conntrack_udp_timeout(_stream) when > 0. setIntSysCtl() only writes a differing value, larger or
#   smaller, so those keys are SETS; SetMax() leaves a hashsize >= max/4 alone, so the buckets are RAISES.
# - pkg/proxy/ipvs/proxier.go NewProxier() in IPVS mode: net.ipv4.vs.conntrack = 1, vs.conn_reuse_mode = 0
#   (kernels 4.1 to 5.8 only; pkg/util/kernel/constants.go IPVSConnReuseModeFixedKernelVersion = "5.9"),
#   vs.expire_nodest_conn = 1, vs.expire_quiescent_template = 1, net.ipv4.ip_forward = 1, and with
#   strictARP conf.all.arp_ignore = 1 and arp_announce = 2; ipvs.tcpTimeout/tcpFinTimeout/udpTimeout are
#   the "ipvsadm --set" timeouts (0 keeps the current one).
# - pkg/proxy/iptables/proxier.go: conf.all.route_localnet = 1 when localhostNodePorts is on and
#   nodePortAddresses includes 127.0.0.1 (unset means every address).
# - cmd/kube-proxy/app/options.go Complete(): with --config the file replaces every flag-parsed setting
#   (only logging flags and --hostname-override still apply), so flags count only without --config.
#   Defaults: pkg/proxy/apis/config/v1alpha1 (maxPerCore 32768, min 131072, 24h, 1h). v1alpha2 moves the
#   conntrack block under linux: and defaults iptables.localhostNodePorts to false.

KUBE_PROXY_BOOL_FLAGS = frozenset((
    "ipvs-strict-arp", "conntrack-tcp-be-liberal", "iptables-localhost-nodeports", "masquerade-all", "cleanup",
    "init-only", "bind-address-hard-fail", "profiling", "alsologtostderr", "logtostderr", "add_dir_header",
    "skip_headers", "skip_log_headers", "one_output", "version",
))
KUBE_PROXY_CONNTRACK_MAX_CAP = 1048576
_KP_CONNTRACK = (  # config field under conntrack., flag, parser, default
    ("maxPerCore", "conntrack-max-per-core", int, 32768),
    ("min", "conntrack-min", int, 131072),
    ("tcpEstablishedTimeout", "conntrack-tcp-timeout-established", go_duration, 86400.0),
    ("tcpCloseWaitTimeout", "conntrack-tcp-timeout-close-wait", go_duration, 3600.0),
    ("tcpBeLiberal", "conntrack-tcp-be-liberal", _bool, False),
    ("udpTimeout", "conntrack-udp-timeout", go_duration, 0.0),
    ("udpStreamTimeout", "conntrack-udp-timeout-stream", go_duration, 0.0),
)


class _KubeProxySettings(object):
    """kube-proxy's effective settings from its config file or, without one, its flags and defaults."""

    def __init__(self, root, proc):
        self.flags = parse_flags(proc["argv"], KUBE_PROXY_BOOL_FLAGS)
        self.path = self.flags.get("config") or None
        self.config = None
        self.error = None
        self.read_from = None
        self.prefix = "conntrack."
        if self.path:
            text, self.read_from = _proc_file(root, proc["pid"], self.path)
            if text is None:
                self.error = "%s is not readable" % self.path
            else:
                try:
                    self.config = parse_yaml(text)
                    if not isinstance(self.config, dict):
                        raise ValueError("not a mapping")
                except ValueError as exc:
                    self.error = "%s does not parse (%s)" % (self.path, exc)
                    self.config = None
            if self.config is not None and (str(self.config.get("apiVersion", "")).endswith("v1alpha2")
                                            or isinstance(_dig(self.config, "linux", "conntrack"), dict)):
                self.prefix = "linux.conntrack."

    @property
    def v1alpha2(self):
        return self.prefix == "linux.conntrack."

    def get(self, config_path, flag, parse, default):
        """(value, where it comes from, what to change) for one setting.

        The value is None when the config is unreadable or the setting's value does not parse (``parse`` raises or
        returns None); then the source says so. A setting that is absent (or null) gets ``default``.
        """
        if self.path:
            knob = "%s in kube-proxy's config (%s)" % (config_path, self.path)
            if self.config is None:
                return None, knob, knob
            raw = _dig(self.config, *config_path.split("."))
            if raw is None:
                return default, knob + ", not set there: the default", knob
        else:
            knob = "--%s on kube-proxy's command line" % flag
            raw = self.flags.get(flag)
            if raw is None:
                return default, "the default of --%s" % flag, knob
        try:
            value = parse(raw)
        except (TypeError, ValueError):
            value = None
        if value is None:  # go_duration() and _bool() say "not one" with None: kube-proxy rejects such a value
            return None, "%s (unreadable value %r)" % (knob, raw), knob
        return value, knob, knob

    def conntrack(self, field):
        for name, flag, parse, default in _KP_CONNTRACK:
            if name == field:
                return self.get(self.prefix + field, flag, parse, default)
        raise KeyError(field)


def _contains_loopback(cidrs):
    if not cidrs:
        return True
    for cidr in cidrs:
        try:
            if ipaddress.ip_address("127.0.0.1") in ipaddress.ip_network(str(cidr).strip(), strict=False):
                return True
        except ValueError:
            continue
    return False


def _kube_proxy(root, procs):
    agents = []
    for proc in _find(procs, "kube-proxy"):
        cfg = _KubeProxySettings(root, proc)
        if cfg.path:
            kubeadm = cfg.path.startswith("/var/lib/kube-proxy/")
            place = "kube-proxy's config (%s%s)" % (cfg.path, ", from the ConfigMap kube-system/kube-proxy on kubeadm clusters"
                                                    if kubeadm else "")
        else:
            place = "kube-proxy's command line (its DaemonSet or unit)"
        agent = _agent("kube-proxy", proc["pid"], _cmdline(proc),
                       "kube-proxy writes these when it starts; change them in %s, not with sysctl." % place)
        problem = " (%s)" % cfg.error if cfg.error else ""
        if cfg.read_from and cfg.read_from != cfg.path:
            problem += " (read through %s)" % cfg.read_from

        per_core, per_core_from, per_core_knob = cfg.conntrack("maxPerCore")
        floor = cfg.conntrack("min")[0]
        if per_core is None or per_core > 0:
            cpus, cpu_source = cpu_count(root, proc["pid"])
            value = None
            how = "maxPerCore x CPUs, at least min"
            if per_core is not None and floor is not None and cpus:
                scaled = per_core * cpus
                value = max(scaled, floor)
                how = "%d per core x %d CPUs (%s), at least %d" % (per_core, cpus, cpu_source, floor)
                if scaled > KUBE_PROXY_CONNTRACK_MAX_CAP:
                    value = KUBE_PROXY_CONNTRACK_MAX_CAP
                    how += "; releases with the 1M cap write %d, older ones %d" % (KUBE_PROXY_CONNTRACK_MAX_CAP, scaled)
            if cfg.path:
                advice = ("Set %smaxPerCore (and %smin) in kube-proxy's config (%s) instead; maxPerCore 0 makes "
                          "kube-proxy leave nf_conntrack_max alone" % (cfg.prefix, cfg.prefix, cfg.path))
            else:
                advice = ("Set %s (and --conntrack-min) instead; 0 makes kube-proxy leave nf_conntrack_max alone"
                          % per_core_knob)
            _set(agent, "net.netfilter.nf_conntrack_max", value,
                 "kube-proxy sets it at start: %s; from %s%s" % (how, per_core_from, problem), advice)
            _set(agent, "net.netfilter.nf_conntrack_buckets", None if value is None else value // 4,
                 "kube-proxy raises the nf_conntrack hashsize module parameter (these buckets) to nf_conntrack_max/4 "
                 "when it is smaller%s" % problem, advice, op=RAISES)
        for field, key in (("tcpEstablishedTimeout", "nf_conntrack_tcp_timeout_established"),
                           ("tcpCloseWaitTimeout", "nf_conntrack_tcp_timeout_close_wait"),
                           ("udpTimeout", "nf_conntrack_udp_timeout"),
                           ("udpStreamTimeout", "nf_conntrack_udp_timeout_stream")):
            seconds, origin, knob = cfg.conntrack(field)
            if seconds is None or seconds > 0:
                _set(agent, "net.netfilter." + key, None if seconds is None else int(seconds),
                     "kube-proxy sets it at start from %s%s" % (origin, problem),
                     "Set %s instead (0s makes kube-proxy leave the key alone)" % knob)
        liberal, origin, knob = cfg.conntrack("tcpBeLiberal")
        if liberal is None or liberal:
            _set(agent, "net.netfilter.nf_conntrack_tcp_be_liberal", None if liberal is None else 1,
                 "kube-proxy sets it at start from %s%s" % (origin, problem), "Set %s to false instead" % knob)

        mode, mode_from, _knob = cfg.get("mode", "proxy-mode", lambda v: str(v).strip() or "iptables", "iptables")
        if mode == "ipvs":
            _kube_proxy_ipvs(root, agent, cfg, mode_from)
        elif mode == "iptables":
            local, origin, knob = cfg.get("iptables.localhostNodePorts", "iptables-localhost-nodeports", _bool,
                                          not cfg.v1alpha2)
            addresses = cfg.get("nodePortAddresses", "nodeport-addresses",
                                lambda v: v if isinstance(v, list) else str(v).split(","), [])[0]
            if local is None or (local and _contains_loopback(addresses or [])):
                _set(agent, "net.ipv4.conf.all.route_localnet", None if local is None else 1,
                     "kube-proxy (iptables mode) sets it at start for NodePorts on localhost, from %s%s" % (origin, problem),
                     "Set %s to false, or nodePortAddresses without 127.0.0.0/8, instead" % knob)
        agents.append(agent)
    return agents


def _kube_proxy_ipvs(root, agent, cfg, mode_from):
    source = "kube-proxy in IPVS mode (%s) sets it at start; the value is not configurable" % mode_from
    advice = "kube-proxy needs this value in IPVS mode: leave it to kube-proxy, or run kube-proxy in another mode"
    for key, value in (("net.ipv4.vs.conntrack", 1), ("net.ipv4.vs.expire_nodest_conn", 1),
                       ("net.ipv4.vs.expire_quiescent_template", 1), ("net.ipv4.ip_forward", 1)):
        _set(agent, key, value, source, advice)
    kernel = _kernel_version(root)
    if kernel is None or (4, 1) <= kernel < (5, 9):
        _set(agent, "net.ipv4.vs.conn_reuse_mode", 0,
             source + " (kernels 4.1 to 5.8; 5.9 fixed conn_reuse_mode and kube-proxy leaves it there)", advice)
    strict, origin, knob = cfg.get("ipvs.strictARP", "ipvs-strict-arp", _bool, False)
    if strict is None or strict:
        for key, value in (("net.ipv4.conf.all.arp_ignore", 1), ("net.ipv4.conf.all.arp_announce", 2)):
            _set(agent, key, None if strict is None else value, "kube-proxy sets it at start for %s" % origin,
                 "Set %s to false instead" % knob)
    timeouts = {}
    for field, name, flag in (("tcp", "tcpTimeout", "ipvs-tcp-timeout"), ("tcpfin", "tcpFinTimeout", "ipvs-tcpfin-timeout"),
                              ("udp", "udpTimeout", "ipvs-udp-timeout")):
        seconds = cfg.get("ipvs." + name, flag, go_duration, 0.0)[0]
        timeouts[field] = int(seconds) if seconds else None
    agent["ipvs"] = timeouts


# ---------------------------------------------------------------------------------------------
# dockerd and containerd (CNI).
#
# moby daemon/libnetwork/drivers/bridge/setup_ip_forwarding.go: setupIPv4Forwarding() writes
# /proc/sys/net/ipv4/ip_forward = 1 when it reads 0 (daemon option "ip-forward", default true; false only
# checks it), and with IPv6 networks net.ipv6.conf.default.forwarding and .all.forwarding = 1.
# setup_bridgenetfiltering.go: before Docker 27.4 net.bridge.bridge-nf-call-iptables (ip6tables for IPv6)
# was set to 1 whenever forwarding was on (moby#11404); since 27.4 br_netfilter is only loaded "when
# needed" (moby#49090): icc=false or userland-proxy=false (27.5.1 notes, moby#49306). With the userland
# proxy disabled the bridge also gets route_localnet = 1 for hairpin NAT (setupLoopbackAdressesRouting).
# containerd itself writes no sysctl; its CRI plugin runs the first CNI config of conf_dir (default
# /etc/cni/net.d), and containernetworking/plugins plugins/main/bridge/bridge.go cmdAdd() enables IP
# forwarding (ip_forward, net.ipv6.conf.all.forwarding) for each gateway family when isGateway is true;
# the ptp plugin always does (ip.EnableForward).

DOCKER_BOOL_FLAGS = frozenset(("ip-forward", "ipv6", "icc", "userland-proxy", "iptables", "ip6tables", "ip-masq",
                               "debug", "D", "experimental", "live-restore", "selinux-enabled", "tls", "tlsverify"))


def _docker(root, procs):
    agents = []
    for proc in _instances(root, procs, ("dockerd",), "docker.service"):
        flags = parse_flags(proc["argv"], DOCKER_BOOL_FLAGS)
        path = flags.get("config-file") or "/etc/docker/daemon.json"
        text, _read_from = _proc_file(root, proc["pid"], path)
        config, problem = {}, ""
        if text is not None:
            try:
                config = json.loads(text) if text.strip() else {}
            except ValueError as exc:
                problem = " (%s does not parse: %s)" % (path, exc)
        elif "config-file" in flags:
            problem = " (%s is not readable)" % path

        agent = _agent("dockerd", proc["pid"], _evidence(proc, "docker.service"),
                       "dockerd writes these when it starts or creates a bridge network; set \"ip-forward\": false in %s "
                       "(or --ip-forward=false) to make it leave forwarding alone." % path)
        forward, ipv6 = _docker_option(flags, config, "ip-forward", True), _docker_option(flags, config, "ipv6", False)
        icc, userland = _docker_option(flags, config, "icc", True), _docker_option(flags, config, "userland-proxy", True)
        bridge = flags.get("bridge") or flags.get("b") or (config.get("bridge") if isinstance(config, dict) else None) or "docker0"
        if forward:
            _set(agent, "net.ipv4.ip_forward", 1,
                 "dockerd sets it when it finds 0 (\"ip-forward\" is true in %s)%s" % (path, problem))
            if ipv6:
                for key in ("net.ipv6.conf.all.forwarding", "net.ipv6.conf.default.forwarding"):
                    _set(agent, key, 1, "dockerd sets it for IPv6 networks (\"ipv6\" is true)%s" % problem)
        needed = not icc or not userland
        for key, on in (("net.bridge.bridge-nf-call-iptables", True), ("net.bridge.bridge-nf-call-ip6tables", ipv6)):
            if not on or not (forward or needed):
                continue
            if needed:
                why = "dockerd sets it: it needs br_netfilter because %s" % ("icc is false" if not icc else "userland-proxy is false")
            else:
                why = "Docker before 27.4 sets it whenever forwarding is on; 27.4 and later only with icc=false or userland-proxy=false"
            _set(agent, key, 1, why + problem, "Docker writes it whenever it needs br_netfilter; keep the key at 1, or set icc and userland-proxy back to true")
        if not userland and bridge != "none":
            _set(agent, _iface_key("ipv4", bridge, "route_localnet"), 1,
                 "dockerd enables it on its bridge %s for hairpin NAT because userland-proxy is false%s" % (bridge, problem),
                 "Set \"userland-proxy\": true in %s, or leave the key to Docker" % path)
        agents.append(agent)
    return agents


def _docker_option(flags, config, name, default):
    """A boolean daemon option: the command line, then daemon.json, then Docker's default."""
    for raw in (flags.get(name), config.get(name) if isinstance(config, dict) else None):
        value = _bool(raw)
        if value is not None:
            return value
    return default


def _containerd(root, procs):
    agents = []
    for proc in _instances(root, procs, ("containerd",), "containerd.service"):
        flags = parse_flags(proc["argv"], ())
        config_path = flags.get("config") or flags.get("c") or "/etc/containerd/config.toml"
        toml, _tried = _proc_file(root, proc["pid"], config_path)
        match = re.search(r"^\s*conf_dir\s*=\s*[\"']([^\"']+)[\"']", toml or "", re.MULTILINE)
        conf_dir = match.group(1) if match else "/etc/cni/net.d"
        agent = _agent("containerd", proc["pid"], _evidence(proc, "containerd.service"),
                       "containerd's CNI plugins write these when a pod or container starts; change the CNI network "
                       "configuration in %s." % conf_dir)
        names = [n for n in _listdir(root, conf_dir) if n.endswith((".conf", ".conflist", ".json"))]
        if names:
            _cni_keys(root, agent, "%s/%s" % (conf_dir.rstrip("/"), names[0]))
        agents.append(agent)
    return agents


def _cni_keys(root, agent, path):
    try:
        conf = json.loads(_read(root, path) or "")
    except ValueError:
        return
    if not isinstance(conf, dict):
        return
    plugins = conf.get("plugins") if isinstance(conf.get("plugins"), list) else [conf]
    for plugin in plugins:
        if not isinstance(plugin, dict):
            continue
        kind = plugin.get("type")
        ipam = json.dumps(plugin.get("ipam") or {})
        families = ["ipv4"] + (["ipv6"] if re.search(r'"(subnet|rangeStart|gateway)"\s*:\s*"[0-9a-fA-F:]*:', ipam) else [])
        if (kind == "bridge" and _bool(plugin.get("isGateway"))) or kind == "ptp":
            why = "isGateway is true" if kind == "bridge" else "ptp always does"
            for family in families:
                key = "net.ipv4.ip_forward" if family == "ipv4" else "net.ipv6.conf.all.forwarding"
                _set(agent, key, 1, "the CNI %s plugin of %s (network %s) enables forwarding when a container starts (%s)"
                     % (kind, path, conf.get("name"), why),
                     "Forwarding is required by this CNI network; to own the key, set isGateway false in %s" % path
                     if kind == "bridge" else "Forwarding is required by the ptp CNI network of %s" % path)


# ---------------------------------------------------------------------------------------------
# TuneD.
#
# redhat-performance/tuned: tuned/consts.py (ACTIVE_PROFILE_FILE /etc/tuned/active_profile, a space
# separated list; POST_LOADED_PROFILE_FILE; profile_dirs default [/usr/lib/tuned, /etc/tuned], later wins
# (profiles/locator.py searches them reversed; tuned 2.23+ also uses .../profiles/); tuned/profiles/loader.py
# (include= split on , or ;, includes loaded before the profile, a file loaded once); profiles/merger.py
# (units merged in order, replace=1 drops the older unit's options); plugins/plugin_sysctl.py (keys of a
# [sysctl] unit or of any unit with type=sysctl; ">"/"<" prefixed values are "at least"/"at most").
# tuned-main.conf reapply_sysctl (default 1) re-applies /run/sysctl.d, /etc/sysctl.d (plugin_sysctl.py
# SYSCTL_CONFIG_DIRS) and /etc/sysctl.conf after the profile, so there a sysctl.d value wins over the
# profile's when tuned starts: such keys yield to sysctl.d (YIELDS_TO_SYSCTL_D).

TUNED_DIRS = ("/usr/lib/tuned", "/usr/lib/tuned/profiles", "/etc/tuned", "/etc/tuned/profiles")
_TUNED_UNIT_OPTIONS = frozenset(("type", "replace", "enabled", "devices", "devices_udev_regex", "script_pre",
                                 "script_post", "priority", "drop", "uname_regex", "cpuinfo_regex", "instance_priority"))


def _tuned_profiles(root):
    names = (_read(root, "/etc/tuned/active_profile") or "").split()
    names += (_read(root, "/etc/tuned/post_loaded_profile") or "").split()
    return [n for n in names if re.match(r"^[a-zA-Z0-9_.-]+$", n)]


def _tuned_dirs(root):
    main = _ini(_read(root, "/etc/tuned/tuned-main.conf")).get("", {})
    dirs = [d.strip() for d in re.split(r"[,;]", main.get("profile_dirs", "")) if d.strip()]
    return (dirs or list(TUNED_DIRS)), _bool(main.get("reapply_sysctl", "1")) is not False


def _tuned_subjects(root):
    """What uname_regex and cpuinfo_regex are matched against, read on first use and then kept (one detect() run)."""
    cache = {}

    def subject(option):
        if option not in cache:
            if option == "uname_regex":
                cache[option] = " ".join(filter(None, ((_read(root, "/proc/sys/kernel/%s" % f) or "").strip()
                                                       for f in ("ostype", "hostname", "osrelease", "version", "arch"))))
            else:
                cache[option] = _read(root, "/proc/cpuinfo")
        return cache[option]
    return subject


def _tuned_unit_applies(unit, subject):
    """Evaluate uname_regex/cpuinfo_regex where the tree allows; None when it cannot tell. ``subject`` is _tuned_subjects()."""
    verdict = True
    for option in ("uname_regex", "cpuinfo_regex"):
        pattern = unit.get(option)
        if pattern is None:
            continue
        subject_text = subject(option)
        if "${" in pattern or not subject_text:
            verdict = None
            continue
        try:
            if not re.search(pattern, subject_text):
                return False
        except re.error:
            verdict = None
    return verdict


def _tuned(root, procs):
    found = _instances(root, procs, ("tuned",), "tuned.service")
    names = _tuned_profiles(root)
    if not found or not names:
        return []
    dirs, reapply = _tuned_dirs(root)
    loaded, files = [], []

    def load(name, depth):
        path = text = None
        for directory in reversed(dirs):
            candidate = "%s/%s/tuned.conf" % (directory.rstrip("/"), os.path.basename(name))
            if candidate in files:
                continue
            text = _read(root, candidate)
            if text is not None:
                path = candidate
                break
        if path is None or depth > 20:
            return
        files.append(path)
        config = _ini(text, inline_comments=True)
        include = config.get("main", {}).get("include")
        if include:
            for parent in re.split(r"\s*[,;]\s*", include.strip()):
                if parent and "${" not in parent:
                    load(parent, depth + 1)
        loaded.append((name, path, config))

    for name in names:
        load(name, 0)
    merged = {}  # unit name -> {"type", "options": {key: (value, path)}, "unit": raw}
    for _name, path, config in loaded:
        for unit, options in config.items():
            if unit in ("", "main", "variables"):
                continue
            if unit not in merged or _bool(options.get("replace")):
                merged[unit] = {"type": unit, "options": {}, "unit": {}}
            slot = merged[unit]
            slot["type"] = options.get("type") or slot["type"]  # a unit's type defaults to its name
            slot["unit"].update(options)
            for dropped in re.split(r"[,\s]+", options.get("drop", "")):
                slot["options"].pop(dropped, None)
            for key, value in options.items():
                if key not in _TUNED_UNIT_OPTIONS:
                    slot["options"][key] = (value, path)
    active = " ".join(names)
    advice = ("TuneD applies its profile when tuned starts; put the value in the [sysctl] section of your own profile "
              "(for example /etc/tuned/<name>/tuned.conf with include=%s, then tuned-adm profile <name>)" % names[0])
    evidence = "%s; active profile %s (/etc/tuned/active_profile)" % (_evidence(found[0], "tuned.service"), active)
    agent = _agent("tuned", found[0]["pid"], evidence, advice + ".")
    subject = _tuned_subjects(root)
    for unit, slot in merged.items():
        if slot["type"] != "sysctl" or _bool(slot["unit"].get("enabled")) is False:
            continue
        applies = _tuned_unit_applies(slot["unit"], subject)
        if applies is False:
            continue
        for key, (value, path) in slot["options"].items():
            note = "TuneD profile %s sets it in [%s] of %s" % (active, unit, path)
            if applies is None:
                note += " (the unit has a uname/cpuinfo condition not evaluated here)"
            value = _unquote(value)
            # plugins/base.py _process_assignment_modifiers(): ">N" writes N only above the current value, "<N" only
            # below it (an integer comparison; anything else is written as it stands).
            conditional = re.match(r"^([<>])\s*-?[0-9]+\s*$", value)
            op = {">": RAISES, "<": LOWERS}[conditional.group(1)] if conditional else SETS
            if reapply:
                note += ("; reapply_sysctl=1 re-applies /etc/sysctl.d and /run/sysctl.d afterwards, so a value there "
                         "wins at tuned start")
            _set(agent, key, value, note, advice + ", or drop %s from %s" % (key, path), op=op,
                 yields=YIELDS_TO_SYSCTL_D if reapply else None)
    return [agent]


# ---------------------------------------------------------------------------------------------
# bpftune.
#
# oracle/bpftune: each tuner declares its sysctls in a bpftunable_desc table and rewrites them while it
# runs (src/tcp_buffer_tuner.c: tcp_wmem, tcp_rmem, tcp_mem; net_buffer_tuner.c: netdev_max_backlog,
# flow_limit_cpu_bitmap, netdev_budget, netdev_budget_usecs; ip_frag_tuner.c: ipfrag_high_thresh,
# ip6frag_high_thresh; udp_buffer_tuner.c: udp_mem, rmem_max, rmem_default; route_table_tuner.c:
# net.ipv6.route.max_size; tcp_conn_tuner.c: tcp_allowed_congestion_control; gaming_tuner.c, newer
# releases: core rmem/wmem, netdev budget and backlog, udp_mem, busy_read/busy_poll, udp_early_demux).
# No tuner touches somaxconn or conntrack. docs/bpftune-sysctl.rst: the sysctl tuner disables the tuner
# that owns a key once an administrator sets that key, so its keys yield to writes (YIELDS_TO_WRITES).
# Tuners are shared objects in bpftune's libdir; -a/--allow restricts the set.

BPFTUNE_TUNERS = {
    "tcp_buffer_tuner": ("net.ipv4.tcp_wmem", "net.ipv4.tcp_rmem", "net.ipv4.tcp_mem"),
    "net_buffer_tuner": ("net.core.netdev_max_backlog", "net.core.flow_limit_cpu_bitmap", "net.core.netdev_budget",
                         "net.core.netdev_budget_usecs"),
    "ip_frag_tuner": ("net.ipv4.ipfrag_high_thresh", "net.ipv6.ip6frag_high_thresh"),
    "udp_buffer_tuner": ("net.ipv4.udp_mem", "net.core.rmem_max", "net.core.rmem_default"),
    "route_table_tuner": ("net.ipv6.route.max_size",),
    "tcp_conn_tuner": ("net.ipv4.tcp_allowed_congestion_control",),
    "gaming_tuner": ("net.core.rmem_default", "net.core.rmem_max", "net.core.wmem_default", "net.core.wmem_max",
                     "net.core.netdev_max_backlog", "net.core.netdev_budget", "net.core.netdev_budget_usecs",
                     "net.ipv4.udp_mem", "net.core.busy_read", "net.core.busy_poll", "net.ipv4.udp_early_demux"),
}
BPFTUNE_LIBDIRS = ("/usr/lib64/bpftune", "/usr/lib/bpftune", "/usr/local/lib64/bpftune", "/usr/local/lib/bpftune",
                   "/usr/lib/x86_64-linux-gnu/bpftune", "/usr/lib/aarch64-linux-gnu/bpftune")


def _bpftune_options(argv):
    """Tuners allowed with -a/--allow (none: all) and tuner directories from -l/--libdir (LIBDIR/bpftune)."""
    allowed, libdirs, index = [], [], 1
    while index < len(argv):
        name, sep, value = argv[index].partition("=")
        index += 1
        if name not in ("-a", "--allow", "-l", "--libdir"):
            continue
        if not sep:
            if index >= len(argv):
                break
            value, index = argv[index], index + 1
        if name in ("-a", "--allow"):
            allowed.append(os.path.basename(value).split(".")[0])
        else:
            libdirs.append(os.path.join(value, "bpftune"))
    return allowed, libdirs


def _bpftune(root, procs):
    agents = []
    for proc in _find(procs, "bpftune"):
        allowed, libdirs = _bpftune_options(proc["argv"])
        libdirs += list(BPFTUNE_LIBDIRS)
        installed = sorted({n.split(".")[0] for d in libdirs for n in _listdir(root, d) if n.endswith(".so")})
        tuners = [t for t in BPFTUNE_TUNERS if (not installed or t in installed) and (not allowed or t in allowed)]
        basis = ("allowed with -a" if allowed else "installed in its libdir" if installed
                 else "libdir not found: every known tuner assumed")
        agent = _agent("bpftune", proc["pid"], _cmdline(proc),
                       "bpftune retunes these while it runs; its sysctl tuner disables the owning tuner once you set "
                       "the key yourself (bpftune-sysctl(8)); to keep it away for good, start bpftune with -a for the "
                       "tuners you want, or stop it.")
        for tuner in tuners:
            for key in BPFTUNE_TUNERS[tuner]:
                _set(agent, key, None, "bpftune %s adjusts it at runtime (tuners %s)" % (tuner, basis), yields=YIELDS_TO_WRITES)
        agents.append(agent)
    return agents


# ---------------------------------------------------------------------------------------------
# systemd-networkd.
#
# systemd src/network/networkd-sysctl.c link_set_sysctl(), for every non-loopback link a .network file
# configures: accept_ra = 0 always (networkd runs its own RA client), promote_secondaries = 1, forwarding per
# link (IPv4Forwarding=/IPv6Forwarding=, implied by IPMasquerade= and for IPv6 by IPv6SendRA=, else the
# networkd.conf [Network] value), use_tempaddr (IPv6PrivacyExtensions=, else networkd.conf, else "no" = 0;
# "kernel" leaves it), proxy_ndp (IPv6ProxyNDP=, or 1 with IPv6ProxyNDPAddress=, else 0), and only when set
# proxy_arp, dad_transmits, hop_limit, mtu, accept_local, route_localnet, rp_filter.
# manager_set_ip_forwarding(): networkd.conf IPv4Forwarding=/IPv6Forwarding= set conf.default and
# conf.all forwarding. Before v256, IPForward= in a .network turned on the global net.ipv4.ip_forward
# (and net.ipv6.conf.all.forwarding) and never turned it off again.
# .network files: /etc, /run, /usr/local/lib, /usr/lib systemd/network; same name = the earlier directory
# wins, an empty file or /dev/null link masks; files are taken in name order, the first match wins.
# Drop-ins (FILE.network.d/*.conf, and networkd.conf.d/*.conf next to networkd.conf) of all those directories
# are one list sorted by file name, a same-named drop-in of an earlier directory masking the later one
# (conf_files_list_strv(), as for sysctl.d: _sysctl_conf._listed_files()); later drop-ins win. Lines are
# stripped before they are parsed, so indentation never continues a value.

NETWORKD_DIRS = ("/etc/systemd/network", "/run/systemd/network", "/usr/local/lib/systemd/network",
                 "/usr/lib/systemd/network", "/lib/systemd/network")
NETWORKD_CONF = ("/etc/systemd/networkd.conf", "/run/systemd/networkd.conf", "/usr/local/lib/systemd/networkd.conf",
                 "/usr/lib/systemd/networkd.conf")
_PRIVACY = {"yes": 2, "true": 2, "prefer-temporary": 2, "prefer-public": 1, "no": 0, "false": 0}
_RP_FILTER = {"no": 0, "strict": 1, "loose": 2}


def _merge_ini(out, parsed, path, origins=None):
    """Merge a parsed drop-in into ``out`` section by section (later wins); ``origins`` records each key's file."""
    for section, items in parsed.items():
        if section:
            out.setdefault(section, {}).update(items)
            if origins is not None:
                origins.setdefault(section, {}).update((key, path) for key in items)
    return out


def _network_files(root, dirs, suffix):
    chosen = {}
    for directory in dirs:
        for name in _listdir(root, directory):
            if name.endswith(suffix) and name not in chosen:
                chosen[name] = "%s/%s" % (directory, name)
    out = []
    for name in sorted(chosen):
        path = chosen[name]
        host = _host(root, path)
        if os.path.islink(host) and os.readlink(host) == "/dev/null":
            continue
        text = _read(root, path)
        if not text or not text.strip():
            continue
        ini = _ini(text, strip_lines=True)
        for dropin, extra in sysctl_conf._listed_files(root, ["%s/%s.d" % (d, name) for d in dirs], ".conf"):
            _merge_ini(ini, _ini(extra, strip_lines=True), dropin)
        out.append((path, ini))
    return out


def _interfaces(root):
    return [name for name in _listdir(root, "/sys/class/net") if name != "lo"]


def _name_matches(patterns, iface):
    words = patterns.split()
    invert = bool(words) and words[0].startswith("!")
    if invert:
        words[0] = words[0][1:]
    hit = any(fnmatch.fnmatchcase(iface, word) for word in words if word)
    return hit != invert


def _networkd(root, procs):
    found = _instances(root, procs, ("systemd-networkd", "systemd-network"), "systemd-networkd.service")
    if not found:
        return []
    agent = _agent("systemd-networkd", found[0]["pid"], _evidence(found[0], "systemd-networkd.service"),
                   "systemd-networkd writes these when it configures a link; change the .network file or networkd.conf "
                   "instead, then networkctl reload.")
    parsed, origins = {}, {}
    main = next(((path, text) for path, text in ((p, _read(root, p)) for p in NETWORKD_CONF) if text is not None), None)
    for path, text in ([main] if main else []) + sysctl_conf._listed_files(root, [p + ".d" for p in NETWORKD_CONF], ".conf"):
        _merge_ini(parsed, _ini(text, strip_lines=True), path, origins)
    conf, conf_from = parsed.get("Network", {}), origins.get("Network", {})
    for key_family, option in (("ipv4", "IPv4Forwarding"), ("ipv6", "IPv6Forwarding")):
        value = _bool(conf.get(option))
        if value is not None:
            for scope in ("default", "all"):
                _set(agent, "net.%s.conf.%s.forwarding" % (key_family, scope), int(value),
                     "systemd-networkd sets it at start from %s= in %s" % (option, conf_from[option]),
                     "Change %s= in %s" % (option, conf_from[option]))
    files = _network_files(root, NETWORKD_DIRS, ".network")
    for iface in _interfaces(root):
        for path, ini in files:
            match = ini.get("Match", {})
            if "Name" in match:
                if not _name_matches(match["Name"], iface):
                    continue
            elif match:
                continue  # matched on properties (MAC, driver, path...) this tree does not show
            _networkd_link(agent, iface, path, ini.get("Network", {}), conf)
            break
    return [agent]


def _networkd_link(agent, iface, path, net, conf):
    def put(family, name, value, option, advice=None):
        _set(agent, _iface_key(family, iface, name), value,
             "systemd-networkd sets it on %s from %s (%s)" % (iface, path, option),
             advice or "Change %s in %s" % (option.split(" ")[0].rstrip(","), path))

    always = ("systemd-networkd writes it on every link it configures: leave it to networkd, or set Unmanaged=yes in "
              "[Link] of %s and configure %s yourself" % (path, iface))
    put("ipv6", "accept_ra", 0, "always: networkd runs its own IPv6 RA client, configured by IPv6AcceptRA=", always)
    put("ipv4", "promote_secondaries", 1, "always", always)
    masquerade = (net.get("IPMasquerade") or "").strip().lower()
    for family, option in (("ipv4", "IPv4Forwarding"), ("ipv6", "IPv6Forwarding")):
        value = _bool(net.get(option))
        why = "%s=" % option
        if value is None and masquerade in ("yes", "both", "true", family):
            value, why = True, "IPMasquerade=%s" % masquerade
        if value is None and family == "ipv6" and _bool(net.get("IPv6SendRA")):
            value, why = True, "IPv6SendRA=yes"
        if value is None and _bool(conf.get(option)) is not None:
            value, why = _bool(conf.get(option)), "%s= in networkd.conf" % option
        if value is not None:
            put(family, "forwarding", int(value), why,
                "Set %s= in [Network] of %s (per link; the networkd.conf value is the default)" % (option, path))
    legacy = (net.get("IPForward") or "").strip().lower()
    if legacy in ("yes", "true", "1", "ipv4", "ipv6", "both"):
        for family, key in (("ipv4", "net.ipv4.ip_forward"), ("ipv6", "net.ipv6.conf.all.forwarding")):
            if legacy in ("yes", "true", "1", "both", family):
                _set(agent, key, 1, "IPForward=%s in %s: systemd before 256 turns the global switch on (never off); "
                     "256 and later read it as per-link forwarding" % (legacy, path),
                     "Replace IPForward= in %s with IPv4Forwarding=/IPv6Forwarding=" % path)
    privacy = (net.get("IPv6PrivacyExtensions") or conf.get("IPv6PrivacyExtensions") or "no").strip().lower()
    if privacy != "kernel" and privacy in _PRIVACY:
        put("ipv6", "use_tempaddr", _PRIVACY[privacy], "IPv6PrivacyExtensions=%s" % privacy
            + ("" if "IPv6PrivacyExtensions" in net or "IPv6PrivacyExtensions" in conf else ", the default"))
    proxy_ndp = _bool(net.get("IPv6ProxyNDP"))
    if proxy_ndp is None:
        proxy_ndp = bool(net.get("IPv6ProxyNDPAddress"))
    put("ipv6", "proxy_ndp", int(proxy_ndp), "IPv6ProxyNDP=, written as 0 unless set or IPv6ProxyNDPAddress= is given")
    for option, family, name, parse in (("IPv4ProxyARP", "ipv4", "proxy_arp", _bool),
                                        ("IPv4AcceptLocal", "ipv4", "accept_local", _bool),
                                        ("IPv4RouteLocalnet", "ipv4", "route_localnet", _bool),
                                        ("IPv4ReversePathFilter", "ipv4", "rp_filter", lambda v: _RP_FILTER.get(v.strip().lower())),
                                        ("IPv6DuplicateAddressDetection", "ipv6", "dad_transmits", _int_or_none),
                                        ("IPv6HopLimit", "ipv6", "hop_limit", _int_or_none),
                                        ("IPv6MTUBytes", "ipv6", "mtu", _int_or_none)):
        if option in net:
            value = parse(net[option])
            if value is not None:
                put(family, name, int(value), "%s=%s" % (option, net[option]))


def _int_or_none(value):
    try:
        return int(str(value).strip())
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------
# NetworkManager.
#
# NetworkManager, "Shared method, Masquerading and IPForwarding" (rhbz#1548825): activating a profile with
# ipv4.method=shared sets /proc/sys/net/ipv4/ip_forward to 1 (a global switch). libnm NMSettingIP6Config
# ip6-privacy: 0/1/2 are written to the device's use_tempaddr, -1 falls back to the global configuration.
# Keyfile profiles: /etc, /run and /usr/lib NetworkManager/system-connections/*.nmconnection.

NM_DIRS = ("/etc/NetworkManager/system-connections", "/run/NetworkManager/system-connections",
           "/usr/lib/NetworkManager/system-connections")


def _network_manager(root, procs):
    found = _instances(root, procs, ("NetworkManager",), "NetworkManager.service")
    if not found:
        return []
    agent = _agent("NetworkManager", found[0]["pid"], _evidence(found[0], "NetworkManager.service"),
                   "NetworkManager writes these when it activates a connection profile; change the profile "
                   "(nmcli connection modify) instead.")
    for directory in NM_DIRS:
        for name in _listdir(root, directory):
            if not name.endswith(".nmconnection"):
                continue
            path = "%s/%s" % (directory, name)
            profile = _ini(_read(root, path), strip_lines=True)
            conn = profile.get("connection", {})
            label = conn.get("id") or name
            when = "" if _bool(conn.get("autoconnect", "true")) is not False else " (autoconnect=false: only when activated)"
            if (profile.get("ipv4", {}).get("method") or "").strip() == "shared":
                _set(agent, "net.ipv4.ip_forward", 1,
                     "NetworkManager sets it when profile %s (%s, ipv4.method=shared) is active%s" % (label, path, when),
                     "A shared connection needs forwarding: use another ipv4.method on %s to own the key" % label)
            iface = (conn.get("interface-name") or "").strip()
            privacy = (profile.get("ipv6", {}).get("ip6-privacy") or "").strip()
            if iface and privacy in ("0", "1", "2"):
                _set(agent, _iface_key("ipv6", iface, "use_tempaddr"), privacy,
                     "NetworkManager sets it from ipv6.ip6-privacy=%s of profile %s (%s)%s" % (privacy, label, path, when),
                     "Run nmcli connection modify '%s' ipv6.ip6-privacy -1 to leave it to sysctl" % label)
    return [agent]


# ---------------------------------------------------------------------------------------------
# Public API.

DETECTORS = (_kube_proxy, _docker, _containerd, _tuned, _bpftune, _networkd, _network_manager)


def detect(root="/"):
    """The known agents present on the target under ``root``, in a fixed order (see the module docstring)."""
    procs = processes(root)
    agents = []
    for detector in DETECTORS:
        agents.extend(detector(root, procs))
    return agents


def _netns_inode(root, pid):
    try:
        return namespaces.ns_inode(root, "/proc/%s/ns/net" % pid)
    except OSError:
        return None


def in_this_netns(agents, root="/"):
    """The agents that write the keys of the caller's network namespace.

    sysctl keys under net.* belong to a network namespace, and an agent writes those of its own: kube-proxy on a
    node (hostNetwork) does not touch a pod's keys. An agent that only has an enabled unit (pid None) runs in the
    initial namespace. Where a namespace cannot be told (a recorded tree without ns links), the agent is kept.
    """
    own = _netns_inode(root, "self")
    if own is None:
        return list(agents)
    init = _netns_inode(root, 1)
    out = []
    for agent in agents:
        theirs = _netns_inode(root, agent["pid"]) if agent.get("pid") else init
        if theirs is None or theirs == own:
            out.append(agent)
    return out


def _canonical(key):
    try:
        return canonical_key(key)
    except SysctlError:
        return None


def writers_for(keys, agents):
    """Who else writes each of ``keys``: {key: [{agent, value, op, yields, source, advice}]} for keys with a writer only.

    ``op`` and ``yields`` are those of the agent's key (see the module docstring); conflicts() takes a row as it is.
    ``keys`` is any iterable of sysctl names (a dict's keys work); the result is keyed by the names as given.
    A key also matches its kernel alias (net.ipv4.ip_forward and net.ipv4.conf.all.forwarding).
    """
    out = {}
    for key in keys:
        canon = _canonical(key)
        if canon is None:
            continue
        rows = []
        for agent in agents or ():
            owned = agent.get("keys") or {}
            for candidate in (canon,) + ALIASES.get(canon, ()):
                entry = owned.get(candidate)
                if entry is None:
                    continue
                source = entry.get("source") or ""
                if candidate != canon:
                    source += " (it writes %s, the same kernel setting)" % candidate
                rows.append({"agent": agent.get("agent"), "value": entry.get("value"), "op": entry.get("op") or SETS,
                             "yields": entry.get("yields"), "source": source,
                             "advice": entry.get("advice") or agent.get("advice") or ""})
                break
        if rows:
            out[key] = rows
    return out
