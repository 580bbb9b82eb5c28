# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""systemd-networkd: the per-link keys (and forwarding switches) it writes when it configures a link (PRIVATE to the collection).

systemd src/network/networkd-sysctl.c link_set_sysctl(), for every non-loopback link a .network file
configures: accept_ra = 0 always (networkd runs its own RA client), promote_secondaries = 1, forwarding per
link (IPv4Forwarding=/IPv6Forwarding=, implied by IPMasquerade= and for IPv6 by IPv6SendRA=, else the
networkd.conf [Network] value), use_tempaddr (IPv6PrivacyExtensions=, else networkd.conf, else "no" = 0;
"kernel" leaves it), proxy_ndp (IPv6ProxyNDP=, or 1 with IPv6ProxyNDPAddress=, else 0), and only when set
proxy_arp, dad_transmits, hop_limit, mtu, accept_local, route_localnet, rp_filter.
manager_set_ip_forwarding(): networkd.conf IPv4Forwarding=/IPv6Forwarding= set conf.default and
conf.all forwarding. Before v256, IPForward= in a .network turned on the global net.ipv4.ip_forward
(and net.ipv6.conf.all.forwarding) and never turned it off again.
.network files: /etc, /run, /usr/local/lib, /usr/lib systemd/network; same name = the earlier directory
wins, an empty file or /dev/null link masks; files are taken in name order, the first match wins.
Drop-ins (FILE.network.d/*.conf, and networkd.conf.d/*.conf next to networkd.conf) of all those directories
are one list sorted by file name, a same-named drop-in of an earlier directory masking the later one
(conf_files_list_strv(), as for sysctl.d: _common.listed_files()); later drop-ins win. Lines are
stripped before they are parsed, so indentation never continues a value.
"""

import fnmatch

from ansible_collections.linuxnet.tcp.plugins.module_utils._agents import target
from ansible_collections.linuxnet.tcp.plugins.module_utils._agents.parsers import ini, parse_bool, parse_int
from ansible_collections.linuxnet.tcp.plugins.module_utils._agents.records import iface_key, new_agent, set_key
from ansible_collections.linuxnet.tcp.plugins.module_utils._common import listed_files, read_text

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
        for name in target.listdir(root, directory):
            if name.endswith(suffix) and name not in chosen:
                chosen[name] = "%s/%s" % (directory, name)
    out = []
    for name in sorted(chosen):
        path = chosen[name]
        text = read_text(root, path)
        if not text or not text.strip():
            continue  # empty, or a link to /dev/null (read as ""): the name is masked
        parsed = ini(text, strip_lines=True)
        for dropin, extra in listed_files(root, ["%s/%s.d" % (d, name) for d in dirs], ".conf"):
            _merge_ini(parsed, ini(extra, strip_lines=True), dropin)
        out.append((path, parsed))
    return out


def _interfaces(root):
    return [name for name in target.listdir(root, "/sys/class/net") if name != "lo"]


def _name_matches(patterns, iface):
    words = patterns.split()
    invert = bool(words) and words[0].startswith("!")
    if invert:
        words[0] = words[0][1:]
    hit = any(fnmatch.fnmatchcase(iface, word) for word in words if word)
    return hit != invert


def detect(root, procs):
    """systemd-networkd's record when it runs or is enabled: networkd.conf's and each link's .network keys."""
    found = target.instances(root, procs, ("systemd-networkd", "systemd-network"), "systemd-networkd.service")
    if not found:
        return []
    agent = new_agent("systemd-networkd", found[0]["pid"], target.evidence(found[0], "systemd-networkd.service"),
                      "systemd-networkd writes these when it configures a link; change the .network file or networkd.conf "
                      "instead, then networkctl reload.")
    parsed, origins = {}, {}
    main = next(((path, text) for path, text in ((p, read_text(root, p)) for p in NETWORKD_CONF) if text is not None), None)
    for path, text in ([main] if main else []) + listed_files(root, [p + ".d" for p in NETWORKD_CONF], ".conf"):
        _merge_ini(parsed, ini(text, strip_lines=True), path, origins)
    conf, conf_from = parsed.get("Network", {}), origins.get("Network", {})
    for key_family, option in (("ipv4", "IPv4Forwarding"), ("ipv6", "IPv6Forwarding")):
        value = parse_bool(conf.get(option))
        if value is not None:
            for scope in ("default", "all"):
                set_key(agent, "net.%s.conf.%s.forwarding" % (key_family, scope), int(value),
                        "systemd-networkd sets it at start from %s= in %s" % (option, conf_from[option]),
                        "Change %s= in %s" % (option, conf_from[option]))
    files = _network_files(root, NETWORKD_DIRS, ".network")
    for iface in _interfaces(root):
        for path, parsed in files:
            match = parsed.get("Match", {})
            if "Name" in match:
                if not _name_matches(match["Name"], iface):
                    continue
            elif match:
                continue  # matched on properties (MAC, driver, path...) this tree does not show
            _link(agent, iface, path, parsed.get("Network", {}), conf)
            break
    return [agent]


def _link(agent, iface, path, net, conf):
    def put(family, name, value, option, advice=None):
        set_key(agent, iface_key(family, iface, name), value,
                "systemd-networkd sets it on %s from %s (%s)" % (iface, path, option),
                advice or "Change %s in %s" % (option.split(" ")[0].rstrip(","), path))

    always = ("systemd-networkd writes it on every link it configures: leave it to networkd, or set Unmanaged=yes in "
              "[Link] of %s and configure %s yourself" % (path, iface))
    put("ipv6", "accept_ra", 0, "always: networkd runs its own IPv6 RA client, configured by IPv6AcceptRA=", always)
    put("ipv4", "promote_secondaries", 1, "always", always)
    masquerade = (net.get("IPMasquerade") or "").strip().lower()
    for family, option in (("ipv4", "IPv4Forwarding"), ("ipv6", "IPv6Forwarding")):
        value = parse_bool(net.get(option))
        why = "%s=" % option
        if value is None and masquerade in ("yes", "both", "true", family):
            value, why = True, "IPMasquerade=%s" % masquerade
        if value is None and family == "ipv6" and parse_bool(net.get("IPv6SendRA")):
            value, why = True, "IPv6SendRA=yes"
        if value is None and parse_bool(conf.get(option)) is not None:
            value, why = parse_bool(conf.get(option)), "%s= in networkd.conf" % option
        if value is not None:
            put(family, "forwarding", int(value), why,
                "Set %s= in [Network] of %s (per link; the networkd.conf value is the default)" % (option, path))
    legacy = (net.get("IPForward") or "").strip().lower()
    if legacy in ("yes", "true", "1", "ipv4", "ipv6", "both"):
        for family, key in (("ipv4", "net.ipv4.ip_forward"), ("ipv6", "net.ipv6.conf.all.forwarding")):
            if legacy in ("yes", "true", "1", "both", family):
                set_key(agent, key, 1, "IPForward=%s in %s: systemd before 256 turns the global switch on (never off); "
                        "256 and later read it as per-link forwarding" % (legacy, path),
                        "Replace IPForward= in %s with IPv4Forwarding=/IPv6Forwarding=" % path)
    privacy = (net.get("IPv6PrivacyExtensions") or conf.get("IPv6PrivacyExtensions") or "no").strip().lower()
    if privacy != "kernel" and privacy in _PRIVACY:
        put("ipv6", "use_tempaddr", _PRIVACY[privacy], "IPv6PrivacyExtensions=%s" % privacy
            + ("" if "IPv6PrivacyExtensions" in net or "IPv6PrivacyExtensions" in conf else ", the default"))
    proxy_ndp = parse_bool(net.get("IPv6ProxyNDP"))
    if proxy_ndp is None:
        proxy_ndp = bool(net.get("IPv6ProxyNDPAddress"))
    put("ipv6", "proxy_ndp", int(proxy_ndp), "IPv6ProxyNDP=, written as 0 unless set or IPv6ProxyNDPAddress= is given")
    for option, family, name, parse in (("IPv4ProxyARP", "ipv4", "proxy_arp", parse_bool),
                                        ("IPv4AcceptLocal", "ipv4", "accept_local", parse_bool),
                                        ("IPv4RouteLocalnet", "ipv4", "route_localnet", parse_bool),
                                        ("IPv4ReversePathFilter", "ipv4", "rp_filter", lambda v: _RP_FILTER.get(v.strip().lower())),
                                        ("IPv6DuplicateAddressDetection", "ipv6", "dad_transmits", parse_int),
                                        ("IPv6HopLimit", "ipv6", "hop_limit", parse_int),
                                        ("IPv6MTUBytes", "ipv6", "mtu", parse_int)):
        if option in net:
            value = parse(net[option])
            if value is not None:
                put(family, name, int(value), "%s=%s" % (option, net[option]))
