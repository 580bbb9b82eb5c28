# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""dockerd: IPv4/IPv6 forwarding, bridge netfilter and its bridge's route_localnet (PRIVATE to the collection).

moby daemon/libnetwork/drivers/bridge/setup_ip_forwarding.go: setupIPv4Forwarding() writes
/proc/sys/net/ipv4/ip_forward = 1 when it reads 0 (daemon option "ip-forward", default true; false only
checks it), and with IPv6 networks net.ipv6.conf.default.forwarding and .all.forwarding = 1.
setup_bridgenetfiltering.go: before Docker 27.4 net.bridge.bridge-nf-call-iptables (ip6tables for IPv6)
was set to 1 whenever forwarding was on (moby#11404); since 27.4 br_netfilter is only loaded "when
needed" (moby#49090): icc=false or userland-proxy=false (27.5.1 notes, moby#49306). With the userland
proxy disabled the bridge also gets route_localnet = 1 for hairpin NAT (setupLoopbackAdressesRouting).
Options come from the command line, then daemon.json (--config-file), then Docker's defaults.
"""

import json

from ansible_collections.linuxnet.tcp.plugins.module_utils._agents import target
from ansible_collections.linuxnet.tcp.plugins.module_utils._agents.parsers import parse_bool, parse_flags
from ansible_collections.linuxnet.tcp.plugins.module_utils._agents.records import iface_key, new_agent, set_key

DOCKER_BOOL_FLAGS = frozenset(("ip-forward", "ipv6", "icc", "userland-proxy", "iptables", "ip6tables", "ip-masq",
                               "debug", "D", "experimental", "live-restore", "selinux-enabled", "tls", "tlsverify"))


def detect(root, procs):
    """One record per running dockerd, or for docker.service enabled at boot; its keys from its flags and daemon.json."""
    agents = []
    for proc in target.instances(root, procs, ("dockerd",), "docker.service"):
        flags = parse_flags(proc["argv"], DOCKER_BOOL_FLAGS)
        path = flags.get("config-file") or "/etc/docker/daemon.json"
        text, _read_from = target.proc_file(root, proc["pid"], path)
        config, problem = {}, ""
        if text is not None:
            try:
                config = json.loads(text) if text.strip() else {}
            except ValueError as exc:
                problem = " (%s does not parse: %s)" % (path, exc)
        elif "config-file" in flags:
            problem = " (%s is not readable)" % path

        agent = new_agent("dockerd", proc["pid"], target.evidence(proc, "docker.service"),
                          "dockerd writes these when it starts or creates a bridge network; set \"ip-forward\": false in %s "
                          "(or --ip-forward=false) to make it leave forwarding alone." % path)
        forward, ipv6 = _option(flags, config, "ip-forward", True), _option(flags, config, "ipv6", False)
        icc, userland = _option(flags, config, "icc", True), _option(flags, config, "userland-proxy", True)
        bridge = flags.get("bridge") or flags.get("b") or (config.get("bridge") if isinstance(config, dict) else None) or "docker0"
        if forward:
            set_key(agent, "net.ipv4.ip_forward", 1,
                    "dockerd sets it when it finds 0 (\"ip-forward\" is true in %s)%s" % (path, problem))
            if ipv6:
                for key in ("net.ipv6.conf.all.forwarding", "net.ipv6.conf.default.forwarding"):
                    set_key(agent, key, 1, "dockerd sets it for IPv6 networks (\"ipv6\" is true)%s" % problem)
        needed = not icc or not userland
        for key, on in (("net.bridge.bridge-nf-call-iptables", True), ("net.bridge.bridge-nf-call-ip6tables", ipv6)):
            if not on or not (forward or needed):
                continue
            if needed:
                why = "dockerd sets it: it needs br_netfilter because %s" % ("icc is false" if not icc else "userland-proxy is false")
            else:
                why = "Docker before 27.4 sets it whenever forwarding is on; 27.4 and later only with icc=false or userland-proxy=false"
            set_key(agent, key, 1, why + problem,
                    "Docker writes it whenever it needs br_netfilter; keep the key at 1, or set icc and userland-proxy back to true")
        if not userland and bridge != "none":
            set_key(agent, iface_key("ipv4", bridge, "route_localnet"), 1,
                    "dockerd enables it on its bridge %s for hairpin NAT because userland-proxy is false%s" % (bridge, problem),
                    "Set \"userland-proxy\": true in %s, or leave the key to Docker" % path)
        agents.append(agent)
    return agents


def _option(flags, config, name, default):
    """A boolean daemon option: the command line, then daemon.json, then Docker's default."""
    for raw in (flags.get(name), config.get(name) if isinstance(config, dict) else None):
        value = parse_bool(raw)
        if value is not None:
            return value
    return default
