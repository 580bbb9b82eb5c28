# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""NetworkManager: forwarding for shared connections and per-device IPv6 privacy (PRIVATE to the collection).

NetworkManager, "Shared method, Masquerading and IPForwarding" (rhbz#1548825): activating a profile with
ipv4.method=shared sets /proc/sys/net/ipv4/ip_forward to 1 (a global switch). libnm NMSettingIP6Config
ip6-privacy: 0/1/2 are written to the device's use_tempaddr, -1 falls back to the global configuration.
Keyfile profiles: /etc, /run and /usr/lib NetworkManager/system-connections/*.nmconnection.
"""

from ansible_collections.linuxnet.tcp.plugins.module_utils._agents import target
from ansible_collections.linuxnet.tcp.plugins.module_utils._agents.parsers import ini, parse_bool
from ansible_collections.linuxnet.tcp.plugins.module_utils._agents.records import iface_key, new_agent, set_key
from ansible_collections.linuxnet.tcp.plugins.module_utils._common import read_text

NM_DIRS = ("/etc/NetworkManager/system-connections", "/run/NetworkManager/system-connections",
           "/usr/lib/NetworkManager/system-connections")


def detect(root, procs):
    """NetworkManager's record when it runs or is enabled: the keys of its keyfile connection profiles."""
    found = target.instances(root, procs, ("NetworkManager",), "NetworkManager.service")
    if not found:
        return []
    agent = new_agent("NetworkManager", found[0]["pid"], target.evidence(found[0], "NetworkManager.service"),
                      "NetworkManager writes these when it activates a connection profile; change the profile "
                      "(nmcli connection modify) instead.")
    for directory in NM_DIRS:
        for name in target.listdir(root, directory):
            if not name.endswith(".nmconnection"):
                continue
            path = "%s/%s" % (directory, name)
            profile = ini(read_text(root, path), strip_lines=True)
            conn = profile.get("connection", {})
            label = conn.get("id") or name
            when = "" if parse_bool(conn.get("autoconnect", "true")) is not False else " (autoconnect=false: only when activated)"
            if (profile.get("ipv4", {}).get("method") or "").strip() == "shared":
                set_key(agent, "net.ipv4.ip_forward", 1,
                        "NetworkManager sets it when profile %s (%s, ipv4.method=shared) is active%s" % (label, path, when),
                        "A shared connection needs forwarding: use another ipv4.method on %s to own the key" % label)
            iface = (conn.get("interface-name") or "").strip()
            privacy = (profile.get("ipv6", {}).get("ip6-privacy") or "").strip()
            if iface and privacy in ("0", "1", "2"):
                set_key(agent, iface_key("ipv6", iface, "use_tempaddr"), privacy,
                        "NetworkManager sets it from ipv6.ip6-privacy=%s of profile %s (%s)%s" % (privacy, label, path, when),
                        "Run nmcli connection modify '%s' ipv6.ip6-privacy -1 to leave it to sysctl" % label)
    return [agent]
