# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""containerd: the forwarding its CNI network's plugins turn on when a container starts (PRIVATE to the collection).

containerd itself writes no sysctl; its CRI plugin runs the first CNI config of conf_dir (default
/etc/cni/net.d, or conf_dir in config.toml), and containernetworking/plugins plugins/main/bridge/bridge.go
cmdAdd() enables IP forwarding (ip_forward, net.ipv6.conf.all.forwarding) for each gateway family when
isGateway is true; the ptp plugin always does (ip.EnableForward). config.toml is not parsed as TOML (no TOML
reader in the standard library before 3.11): only its conf_dir line is looked for.
"""

import json
import re

from ansible_collections.linuxnet.tcp.plugins.module_utils._agents import target
from ansible_collections.linuxnet.tcp.plugins.module_utils._agents.parsers import parse_bool, parse_flags
from ansible_collections.linuxnet.tcp.plugins.module_utils._agents.records import new_agent, set_key
from ansible_collections.linuxnet.tcp.plugins.module_utils._common import read_text


def detect(root, procs):
    """One record per running containerd (or containerd.service enabled), with the keys of its first CNI network."""
    agents = []
    for proc in target.instances(root, procs, ("containerd",), "containerd.service"):
        flags = parse_flags(proc["argv"], ())
        config_path = flags.get("config") or flags.get("c") or "/etc/containerd/config.toml"
        toml, _tried = target.proc_file(root, proc["pid"], config_path)
        match = re.search(r"^\s*conf_dir\s*=\s*[\"']([^\"']+)[\"']", toml or "", re.MULTILINE)
        conf_dir = match.group(1) if match else "/etc/cni/net.d"
        agent = new_agent("containerd", proc["pid"], target.evidence(proc, "containerd.service"),
                          "containerd's CNI plugins write these when a pod or container starts; change the CNI network "
                          "configuration in %s." % conf_dir)
        names = [n for n in target.listdir(root, conf_dir) if n.endswith((".conf", ".conflist", ".json"))]
        if names:
            _cni_keys(root, agent, "%s/%s" % (conf_dir.rstrip("/"), names[0]))
        agents.append(agent)
    return agents


def _cni_keys(root, agent, path):
    """Record the forwarding keys the plugins of the CNI configuration ``path`` turn on."""
    try:
        conf = json.loads(read_text(root, path) or "")
    except ValueError:
        return  # unreadable or not JSON: libcni refuses the network, so no plugin of it runs
    if not isinstance(conf, dict):
        return
    plugins = conf.get("plugins") if isinstance(conf.get("plugins"), list) else [conf]
    for plugin in plugins:
        if not isinstance(plugin, dict):
            continue
        kind = plugin.get("type")
        ipam = json.dumps(plugin.get("ipam") or {})
        families = ["ipv4"] + (["ipv6"] if re.search(r'"(subnet|rangeStart|gateway)"\s*:\s*"[0-9a-fA-F:]*:', ipam) else [])
        if (kind == "bridge" and parse_bool(plugin.get("isGateway"))) or kind == "ptp":
            why = "isGateway is true" if kind == "bridge" else "ptp always does"
            for family in families:
                key = "net.ipv4.ip_forward" if family == "ipv4" else "net.ipv6.conf.all.forwarding"
                set_key(agent, key, 1, "the CNI %s plugin of %s (network %s) enables forwarding when a container starts (%s)"
                        % (kind, path, conf.get("name"), why),
                        "Forwarding is required by this CNI network; to own the key, set isGateway false in %s" % path
                        if kind == "bridge" else "Forwarding is required by the ptp CNI network of %s" % path)
