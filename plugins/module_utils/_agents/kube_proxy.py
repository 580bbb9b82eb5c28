# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""kube-proxy: the conntrack, IPVS and route_localnet keys it writes when it starts (PRIVATE to the collection).

What it writes (kubernetes/kubernetes):
- pkg/proxy/conntrack/sysctls.go setSysctls(): nf_conntrack_max = max(maxPerCore x CPUs, min) when
  maxPerCore > 0 (capped at 1048576 by newer releases), and raises the nf_conntrack hashsize module
  parameter (= net.netfilter.nf_conntrack_buckets) to max/4 when smaller; nf_conntrack_tcp_timeout_established
  and _close_wait when their timeouts are > 0; nf_conntrack_tcp_be_liberal = 1 when tcpBeLiberal;
  nf_conntrack_udp_timeout(_stream) when > 0. setIntSysCtl() only writes a differing value, larger or
  smaller, so those keys are SETS; SetMax() leaves a hashsize >= max/4 alone, so the buckets are RAISES.
- pkg/proxy/ipvs/proxier.go NewProxier() in IPVS mode: net.ipv4.vs.conntrack = 1, vs.conn_reuse_mode = 0
  (kernels 4.1 to 5.8 only; pkg/util/kernel/constants.go IPVSConnReuseModeFixedKernelVersion = "5.9"),
  vs.expire_nodest_conn = 1, vs.expire_quiescent_template = 1, net.ipv4.ip_forward = 1, and with
  strictARP conf.all.arp_ignore = 1 and arp_announce = 2; ipvs.tcpTimeout/tcpFinTimeout/udpTimeout are
  the "ipvsadm --set" timeouts (0 keeps the current one).
- pkg/proxy/iptables/proxier.go: conf.all.route_localnet = 1 when localhostNodePorts is on and
  nodePortAddresses includes 127.0.0.1 (unset means every address).
- cmd/kube-proxy/app/options.go Complete(): with --config the file replaces every flag-parsed setting
  (only logging flags and --hostname-override still apply), so flags count only without --config.
  Defaults: pkg/proxy/apis/config/v1alpha1 (maxPerCore 32768, min 131072, 24h, 1h). v1alpha2 moves the
  conntrack block under linux: and defaults iptables.localhostNodePorts to false.
"""

import ipaddress
import os
import re

from ansible_collections.linuxnet.tcp.plugins.module_utils._agents import target
from ansible_collections.linuxnet.tcp.plugins.module_utils._agents.parsers import dig, go_duration, parse_bool, parse_flags, parse_yaml
from ansible_collections.linuxnet.tcp.plugins.module_utils._agents.records import RAISES, new_agent, set_key
from ansible_collections.linuxnet.tcp.plugins.module_utils._common import read_text


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
    ("tcpBeLiberal", "conntrack-tcp-be-liberal", parse_bool, False),
    ("udpTimeout", "conntrack-udp-timeout", go_duration, 0.0),
    ("udpStreamTimeout", "conntrack-udp-timeout-stream", go_duration, 0.0),
)


class _Settings(object):
    """kube-proxy's effective settings from its config file or, without one, its flags and defaults."""

    def __init__(self, root, proc):
        self.flags = parse_flags(proc["argv"], KUBE_PROXY_BOOL_FLAGS)
        self.path = self.flags.get("config") or None
        self.config = None
        self.error = None
        self.read_from = None
        self.prefix = "conntrack."
        if self.path:
            text, self.read_from = target.proc_file(root, proc["pid"], self.path)
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
                                            or isinstance(dig(self.config, "linux", "conntrack"), dict)):
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
            raw = dig(self.config, *config_path.split("."))
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
        if value is None:  # go_duration() and parse_bool() say "not one" with None: kube-proxy rejects such a value
            return None, "%s (unreadable value %r)" % (knob, raw), knob
        return value, knob, knob

    def conntrack(self, field):
        for name, flag, parse, default in _KP_CONNTRACK:
            if name == field:
                return self.get(self.prefix + field, flag, parse, default)
        raise KeyError(field)


def _contains_loopback(cidrs):
    """Whether nodePortAddresses ``cidrs`` serve NodePorts on 127.0.0.1 (unset: every address does)."""
    if not cidrs:
        return True
    for cidr in cidrs:
        try:
            if ipaddress.ip_address("127.0.0.1") in ipaddress.ip_network(str(cidr).strip(), strict=False):
                return True
        except ValueError:
            continue  # not a CIDR: "primary" (the node's primary addresses, kube-proxy 1.29+) or one it refuses
    return False


def detect(root, procs):
    """One record per running kube-proxy (``procs``: _host.processes.commands()), its keys from its config or flags."""
    agents = []
    for proc in target.find(procs, "kube-proxy"):
        cfg = _Settings(root, proc)
        if cfg.path:
            kubeadm = cfg.path.startswith("/var/lib/kube-proxy/")
            place = "kube-proxy's config (%s%s)" % (cfg.path, ", from the ConfigMap kube-system/kube-proxy on kubeadm clusters"
                                                    if kubeadm else "")
        else:
            place = "kube-proxy's command line (its DaemonSet or unit)"
        agent = new_agent("kube-proxy", proc["pid"], target.cmdline(proc),
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
            set_key(agent, "net.netfilter.nf_conntrack_max", value,
                    "kube-proxy sets it at start: %s; from %s%s" % (how, per_core_from, problem), advice)
            set_key(agent, "net.netfilter.nf_conntrack_buckets", None if value is None else value // 4,
                    "kube-proxy raises the nf_conntrack hashsize module parameter (these buckets) to nf_conntrack_max/4 "
                    "when it is smaller%s" % problem, advice, op=RAISES)
        for field, key in (("tcpEstablishedTimeout", "nf_conntrack_tcp_timeout_established"),
                           ("tcpCloseWaitTimeout", "nf_conntrack_tcp_timeout_close_wait"),
                           ("udpTimeout", "nf_conntrack_udp_timeout"),
                           ("udpStreamTimeout", "nf_conntrack_udp_timeout_stream")):
            seconds, origin, knob = cfg.conntrack(field)
            if seconds is None or seconds > 0:
                set_key(agent, "net.netfilter." + key, None if seconds is None else int(seconds),
                        "kube-proxy sets it at start from %s%s" % (origin, problem),
                        "Set %s instead (0s makes kube-proxy leave the key alone)" % knob)
        liberal, origin, knob = cfg.conntrack("tcpBeLiberal")
        if liberal is None or liberal:
            set_key(agent, "net.netfilter.nf_conntrack_tcp_be_liberal", None if liberal is None else 1,
                    "kube-proxy sets it at start from %s%s" % (origin, problem), "Set %s to false instead" % knob)

        mode, mode_from, _knob = cfg.get("mode", "proxy-mode", lambda v: str(v).strip() or "iptables", "iptables")
        if mode == "ipvs":
            _ipvs(root, agent, cfg, mode_from)
        elif mode == "iptables":
            local, origin, knob = cfg.get("iptables.localhostNodePorts", "iptables-localhost-nodeports", parse_bool,
                                          not cfg.v1alpha2)
            addresses = cfg.get("nodePortAddresses", "nodeport-addresses",
                                lambda v: v if isinstance(v, list) else str(v).split(","), [])[0]
            if local is None or (local and _contains_loopback(addresses or [])):
                set_key(agent, "net.ipv4.conf.all.route_localnet", None if local is None else 1,
                        "kube-proxy (iptables mode) sets it at start for NodePorts on localhost, from %s%s" % (origin, problem),
                        "Set %s to false, or nodePortAddresses without 127.0.0.0/8, instead" % knob)
        agents.append(agent)
    return agents


def _ipvs(root, agent, cfg, mode_from):
    source = "kube-proxy in IPVS mode (%s) sets it at start; the value is not configurable" % mode_from
    advice = "kube-proxy needs this value in IPVS mode: leave it to kube-proxy, or run kube-proxy in another mode"
    for key, value in (("net.ipv4.vs.conntrack", 1), ("net.ipv4.vs.expire_nodest_conn", 1),
                       ("net.ipv4.vs.expire_quiescent_template", 1), ("net.ipv4.ip_forward", 1)):
        set_key(agent, key, value, source, advice)
    kernel = _kernel_version(root)
    if kernel is None or (4, 1) <= kernel < (5, 9):
        set_key(agent, "net.ipv4.vs.conn_reuse_mode", 0,
                source + " (kernels 4.1 to 5.8; 5.9 fixed conn_reuse_mode and kube-proxy leaves it there)", advice)
    strict, origin, knob = cfg.get("ipvs.strictARP", "ipvs-strict-arp", parse_bool, False)
    if strict is None or strict:
        for key, value in (("net.ipv4.conf.all.arp_ignore", 1), ("net.ipv4.conf.all.arp_announce", 2)):
            set_key(agent, key, None if strict is None else value, "kube-proxy sets it at start for %s" % origin,
                    "Set %s to false instead" % knob)
    timeouts = {}
    for field, name, flag in (("tcp", "tcpTimeout", "ipvs-tcp-timeout"), ("tcpfin", "tcpFinTimeout", "ipvs-tcpfin-timeout"),
                              ("udp", "udpTimeout", "ipvs-udp-timeout")):
        seconds = cfg.get("ipvs." + name, flag, go_duration, 0.0)[0]
        timeouts[field] = int(seconds) if seconds else None
    agent["ipvs"] = timeouts


def _cpu_list_count(text):
    """CPUs in a kernel cpu list ("0-3,8-11"), None when there is none or it does not read as one."""
    count = 0
    for part in (text or "").strip().split(","):
        if not part:
            continue
        low, _sep, high = part.partition("-")
        try:
            count += int(high or low) - int(low) + 1
        except ValueError:
            return None  # not a cpu list: cpu_count() asks its next source
    return count or None


def cpu_count(root="/", pid=None):
    """CPUs as kube-proxy counts them, and where the number came from.

    kube-proxy's detectNumCPU() asks cadvisor's GetTopology over /sys first and falls back to
    runtime.NumCPU(), the process's scheduler affinity (kubernetes pkg/proxy/conntrack/sysctls.go, issue
    kubernetes#99225): the online CPUs, then the process's Cpus_allowed_list, then our own affinity.
    """
    count = _cpu_list_count(read_text(root, "/sys/devices/system/cpu/online"))
    if count:
        return count, "/sys/devices/system/cpu/online"
    if pid is not None:
        for line in (read_text(root, "/proc/%d/status" % pid) or "").splitlines():
            if line.startswith("Cpus_allowed_list:"):
                count = _cpu_list_count(line.split(":", 1)[1])
                if count:
                    return count, "/proc/%d/status Cpus_allowed_list" % pid
    if os.path.realpath(root) == "/" and hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)), "sched_getaffinity()"
    return None, None


def _kernel_version(root):
    match = re.match(r"(\d+)\.(\d+)", (read_text(root, "/proc/sys/kernel/osrelease") or "").strip())
    return (int(match.group(1)), int(match.group(2))) if match else None
