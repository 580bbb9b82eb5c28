# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Agent detection on recorded trees (tests/unit/fixtures/agents/<case>, see record_fixtures.py there)."""
import os
import shutil

import pytest

from ansible_collections.linuxnet.tcp.plugins.module_utils._agents import parsers
from ansible_collections.linuxnet.tcp.plugins.module_utils._agents import writers as A
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import plan as P

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))), "fixtures", "agents")


def case(name):
    return os.path.join(FIXTURES, name)


def by_agent(agents):
    return {agent["agent"]: agent for agent in agents}


# (case, agent, pid, {key: value} exactly, {key: substrings of source + advice})
CASES = [
    ("kube-proxy-kubeadm-ipvs", "kube-proxy", 2817, {
        "net.netfilter.nf_conntrack_max": "262144",          # 65536 per core x 4 online CPUs, above min 131072
        "net.netfilter.nf_conntrack_buckets": "65536",
        "net.netfilter.nf_conntrack_tcp_timeout_established": "7200",
        "net.netfilter.nf_conntrack_tcp_timeout_close_wait": "3600",  # null in the file: the v1alpha1 default 1h
        "net.ipv4.vs.conntrack": "1", "net.ipv4.vs.conn_reuse_mode": "0",  # kernel 5.4 < 5.9
        "net.ipv4.vs.expire_nodest_conn": "1", "net.ipv4.vs.expire_quiescent_template": "1",
        "net.ipv4.ip_forward": "1", "net.ipv4.conf.all.arp_ignore": "1", "net.ipv4.conf.all.arp_announce": "2",
    }, {
        "net.netfilter.nf_conntrack_max": ["65536 per core x 4 CPUs (/sys/devices/system/cpu/online), at least 131072",
                                           "Set conntrack.maxPerCore (and conntrack.min) in kube-proxy's config (/var/lib/kube-proxy/config.conf)"],
        "net.netfilter.nf_conntrack_tcp_timeout_established": ["conntrack.tcpEstablishedTimeout"],
        "net.netfilter.nf_conntrack_tcp_timeout_close_wait": ["not set there: the default"],
        "net.ipv4.vs.conn_reuse_mode": ["kernels 4.1 to 5.8"],
        "net.ipv4.conf.all.arp_ignore": ["ipvs.strictARP"],
    }),
    ("kube-proxy-flags-iptables", "kube-proxy", 911, {
        "net.netfilter.nf_conntrack_tcp_timeout_established": "43200",   # "--flag 12h", two arguments
        "net.netfilter.nf_conntrack_tcp_timeout_close_wait": "3600",
        "net.netfilter.nf_conntrack_tcp_be_liberal": "1",
        "net.ipv4.conf.all.route_localnet": "1",                          # localhostNodePorts defaults to true
    }, {
        "net.netfilter.nf_conntrack_tcp_timeout_established": ["--conntrack-tcp-timeout-established on kube-proxy's command line"],
        "net.netfilter.nf_conntrack_tcp_timeout_close_wait": ["the default of --conntrack-tcp-timeout-close-wait"],
    }),
    ("kube-proxy-v1alpha2-cap", "kube-proxy", 4242, {
        "net.netfilter.nf_conntrack_max": "1048576", "net.netfilter.nf_conntrack_buckets": "262144",
        "net.netfilter.nf_conntrack_tcp_timeout_established": "86400",
        "net.netfilter.nf_conntrack_udp_timeout": "30",
    }, {
        "net.netfilter.nf_conntrack_max": ["16384 per core x 80 CPUs", "older ones 1310720", "linux.conntrack.maxPerCore"],
    }),
    ("docker-ipv6-no-userland-proxy", "dockerd", 733, {
        "net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1", "net.ipv6.conf.default.forwarding": "1",
        "net.bridge.bridge-nf-call-iptables": "1", "net.bridge.bridge-nf-call-ip6tables": "1",
        "net.ipv4.conf.docker0.route_localnet": "1",
    }, {
        "net.ipv4.ip_forward": ['"ip-forward" is true in /etc/docker/daemon.json', '"ip-forward": false'],
        "net.bridge.bridge-nf-call-iptables": ["needs br_netfilter because userland-proxy is false"],
    }),
    ("docker-ip-forward-off", "dockerd", 733, {}, {}),
    ("containerd-cni-bridge", "containerd", 812, {
        "net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1",
    }, {
        "net.ipv4.ip_forward": ["CNI bridge plugin of /etc/cni/net.d/10-containerd-net.conflist", "isGateway"],
    }),
    ("tuned-network-throughput", "tuned", 1203, {
        "net.ipv4.tcp_rmem": "4096 87380 16777216", "net.ipv4.tcp_wmem": "4096 16384 16777216",
        "net.core.somaxconn": ">2048", "vm.dirty_ratio": "40", "vm.dirty_background_ratio": "10", "vm.swappiness": "10",
    }, {  # [sysctl.thunderx] (uname_regex=aarch64) does not apply on this x86_64 tree
        "net.ipv4.tcp_rmem": ["[sysctl] of /usr/lib/tuned/network-throughput/tuned.conf", "reapply_sysctl=1",
                              "include=network-throughput"],
        "net.core.somaxconn": ["/usr/lib/tuned/throughput-performance/tuned.conf"],
    }),
    ("tuned-custom-include", "tuned", None, {
        "net.core.busy_read": "0", "net.core.busy_poll": "50", "net.core.somaxconn": "8192", "net.ipv4.tcp_fastopen": "1",
        "kernel.numa_balancing": "0", "vm.dirty_ratio": "10", "vm.dirty_background_ratio": "3", "vm.swappiness": "10",
    }, {
        "net.core.busy_read": ["/etc/tuned/lowlat/tuned.conf"],
        "net.core.busy_poll": ["/usr/lib/tuned/network-latency/tuned.conf"],
        "net.ipv4.tcp_fastopen": ["[sysctl_thp]"],
    }),
    ("bpftune-allow", "bpftune", 1500, {"net.ipv4.tcp_rmem": None, "net.ipv4.tcp_wmem": None, "net.ipv4.tcp_mem": None},
     {"net.ipv4.tcp_rmem": ["tcp_buffer_tuner", "allowed with -a", "bpftune-sysctl(8)"]}),
    ("networkmanager", "NetworkManager", 688, {
        "net.ipv4.ip_forward": "1", "net.ipv6.conf.wlan0.use_tempaddr": "2",
    }, {
        "net.ipv4.ip_forward": ["profile Hotspot", "ipv4.method=shared", "autoconnect=false"],
    }),
]


@pytest.mark.parametrize("name, agent_name, pid, values, texts", CASES, ids=[c[0] for c in CASES])
def test_detect_on_recorded_trees(name, agent_name, pid, values, texts):
    agents = by_agent(A.detect(case(name)))
    agent = agents[agent_name]
    assert agent["pid"] == pid
    assert {key: entry["value"] for key, entry in agent["keys"].items()} == values
    for key, parts in texts.items():
        entry = agent["keys"][key]
        for part in parts:
            assert part in entry["source"] + " | " + entry["advice"], (key, part, entry)
    for entry in agent["keys"].values():
        assert entry["source"] and entry["advice"], entry


def test_kube_proxy_ipvs_timeouts_and_evidence():
    agent = by_agent(A.detect(case("kube-proxy-kubeadm-ipvs")))["kube-proxy"]
    assert agent["ipvs"] == {"tcp": 900, "tcpfin": None, "udp": None}  # tcpTimeout 15m0s; 0s keeps the kernel's
    assert agent["evidence"] == "/usr/local/bin/kube-proxy --config=/var/lib/kube-proxy/config.conf --hostname-override=node-1"
    assert "ConfigMap kube-system/kube-proxy" in agent["advice"]


def test_only_kube_proxy_is_taken_for_kube_proxy():
    """The containerd shim and init of the recorded table are not agents; nothing else is found there."""
    assert [a["agent"] for a in A.detect(case("kube-proxy-kubeadm-ipvs"))] == ["kube-proxy"]


def test_docker_case_also_finds_containerd_without_cni():
    agents = by_agent(A.detect(case("docker-ipv6-no-userland-proxy")))
    assert sorted(agents) == ["containerd", "dockerd"] and agents["containerd"]["keys"] == {}


def test_bpftune_with_every_tuner_installed():
    keys = by_agent(A.detect(case("bpftune-all")))["bpftune"]["keys"]
    assert "net.core.netdev_max_backlog" in keys and "net.ipv6.route.max_size" in keys and "net.ipv4.udp_mem" in keys
    assert "net.core.busy_poll" not in keys  # gaming_tuner is not installed in this tree
    assert not [k for k in keys if "somaxconn" in k or "conntrack" in k]  # no bpftune tuner writes them


def test_networkd_links():
    agent = by_agent(A.detect(case("networkd")))["systemd-networkd"]
    keys = {key: entry["value"] for key, entry in agent["keys"].items()}
    assert agent["pid"] == 402  # comm "systemd-network": the kernel keeps 15 characters
    assert keys["net.ipv4.conf.eth0.forwarding"] == "1" and keys["net.ipv6.conf.eth0.forwarding"] == "0"
    assert keys["net.ipv6.conf.eth0.use_tempaddr"] == "2" and keys["net.ipv4.conf.eth0.rp_filter"] == "2"
    assert keys["net.ipv6.conf.eth0.accept_ra"] == "0"
    # eth0.100: a dot in the interface name is written '/' (sysctl(8) spelling); IPMasquerade/IPv6SendRA imply forwarding.
    assert keys["net.ipv4.conf.eth0/100.forwarding"] == "1" and keys["net.ipv6.conf.eth0/100.forwarding"] == "1"
    # Legacy IPForward= turns the global switches on.
    assert keys["net.ipv4.ip_forward"] == "1"
    assert keys["net.ipv6.conf.default.forwarding"] == "0"  # networkd.conf IPv6Forwarding=no
    assert not [k for k in keys if ".wg0." in k or ".lo." in k]  # wg0's file is masked by an empty /etc file; lo is never managed
    assert not [k for k in keys if "proxy_arp" in k]  # matched on MACAddress=, which the tree does not show
    assert "Unmanaged=yes" in agent["keys"]["net.ipv6.conf.eth0.accept_ra"]["advice"]


def test_plain_host_has_no_agent():
    """A leftover /etc/tuned/active_profile without tuned running or enabled is not TuneD at work."""
    assert A.detect(case("plain-host")) == []


def test_empty_root(tmp_path):
    assert A.detect(str(tmp_path)) == []


def test_unreadable_kube_proxy_config_keeps_the_keys_without_values(tmp_path):
    root = str(tmp_path / "root")
    shutil.copytree(case("kube-proxy-kubeadm-ipvs"), root)
    os.remove(os.path.join(root, "var/lib/kube-proxy/config.conf"))
    agent = by_agent(A.detect(root))["kube-proxy"]
    entry = agent["keys"]["net.netfilter.nf_conntrack_max"]
    assert entry["value"] is None and "/var/lib/kube-proxy/config.conf is not readable" in entry["source"]
    assert agent["keys"]["net.netfilter.nf_conntrack_tcp_timeout_established"]["value"] is None


def test_kube_proxy_config_read_through_proc_pid_root(tmp_path):
    """A DaemonSet's --config path is inside its container: read it through /proc/PID/root."""
    root = str(tmp_path / "root")
    shutil.copytree(case("kube-proxy-kubeadm-ipvs"), root)
    inside = os.path.join(root, "proc/2817/root/var/lib/kube-proxy")
    os.makedirs(inside)
    os.rename(os.path.join(root, "var/lib/kube-proxy/config.conf"), os.path.join(inside, "config.conf"))
    entry = by_agent(A.detect(root))["kube-proxy"]["keys"]["net.netfilter.nf_conntrack_max"]
    assert entry["value"] == "262144" and "read through /proc/2817/root/var/lib/kube-proxy/config.conf" in entry["source"]


def test_writers_for_matches_canonical_spellings_and_aliases():
    agents = A.detect(case("kube-proxy-kubeadm-ipvs")) + A.detect(case("docker-ipv6-no-userland-proxy"))
    keys = ["net/netfilter/nf_conntrack_max", "net.ipv4.conf.all.forwarding", "net.ipv4.tcp_fin_timeout", "bad key!"]
    writers = A.writers_for(keys, agents)
    assert sorted(writers) == ["net.ipv4.conf.all.forwarding", "net/netfilter/nf_conntrack_max"]
    assert writers["net/netfilter/nf_conntrack_max"] == [{
        "agent": "kube-proxy", "value": "262144", "op": "=", "yields": None,
        "source": agents[0]["keys"]["net.netfilter.nf_conntrack_max"]["source"],
        "advice": agents[0]["keys"]["net.netfilter.nf_conntrack_max"]["advice"]}]
    forwarding = writers["net.ipv4.conf.all.forwarding"]
    assert [row["agent"] for row in forwarding] == ["kube-proxy", "dockerd"]
    assert all("it writes net.ipv4.ip_forward, the same kernel setting" in row["source"] for row in forwarding)
    assert set(forwarding[0]) == {"agent", "value", "op", "yields", "source", "advice"}


def test_writers_for_takes_a_dict_and_no_agents():
    assert A.writers_for({"net.core.somaxconn": "4096"}, []) == {}
    tuned = A.detect(case("tuned-network-throughput"))
    assert A.writers_for({"net.core.somaxconn": "4096"}, tuned)["net.core.somaxconn"][0]["value"] == ">2048"


def test_bad_values_never_break_detection(tmp_path):
    """Values an agent would reject make the key's value unknown, not the detection fail."""
    root = tmp_path / "root"
    shutil.copytree(case("kube-proxy-kubeadm-ipvs"), str(root))
    (root / "var/lib/kube-proxy/config.conf").write_text(
        "conntrack:\n  maxPerCore: lots\n  tcpEstablishedTimeout: {a: 1}\n  tcpBeLiberal: maybe\nmode: ipvs\n")
    keys = by_agent(A.detect(str(root)))["kube-proxy"]["keys"]
    assert keys["net.netfilter.nf_conntrack_max"]["value"] is None
    assert "unreadable value 'lots'" in keys["net.netfilter.nf_conntrack_max"]["source"]
    # Not a duration: kube-proxy would reject it, so the value is unknown (it was reported as the 24 h default).
    established = keys["net.netfilter.nf_conntrack_tcp_timeout_established"]
    assert established["value"] is None and "unreadable value '{a: 1}'" in established["source"]
    liberal = keys["net.netfilter.nf_conntrack_tcp_be_liberal"]  # not a boolean: unknown, not the default false
    assert liberal["value"] is None and "unreadable value 'maybe'" in liberal["source"]
    cni = tmp_path / "cni"
    shutil.copytree(case("containerd-cni-bridge"), str(cni))
    (cni / "etc/cni/net.d/10-containerd-net.conflist").write_text("[1, 2]")
    (cni / "etc/cni/net.d/11-broken.conf").write_text("{")
    assert by_agent(A.detect(str(cni)))["containerd"]["keys"] == {}


def _put(root, path, text):
    full = os.path.join(root, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as handle:
        handle.write(text)


def _owner(key, value, root):
    """sysctl_profile's reason for skipping ``key`` = ``value`` on the tree ``root``, or None when it is applied."""
    return P.other_writer(key, value, A.writers_for([key], A.detect(root)))


@pytest.mark.parametrize("write, requested, persisted, fought", [
    ({"value": "7200", "op": "="}, "7200", True, False),
    ({"value": "7200", "op": "="}, "86400", True, True),
    ({"value": "7200"}, "3600", True, True),                                     # no op: an exact write
    ({"value": None, "op": "="}, "1", True, True),                               # decided at runtime or unreadable
    ({"value": "65536", "op": ">="}, "262144", True, False),                     # kube-proxy leaves larger buckets alone
    ({"value": "65536", "op": ">="}, "65536", True, False),
    ({"value": "65536", "op": ">="}, "16384", True, True),                       # ... and raises smaller ones
    ({"value": ">2048", "op": ">="}, "4096", True, False),                       # TuneD's own spelling
    ({"value": ">2048", "op": ">="}, "1024", True, True),
    ({"value": "<100", "op": "<="}, "50", True, False),
    ({"value": "<100", "op": "<="}, "200", True, True),
    ({"value": ">4096", "op": ">="}, "4096 87380 6291456", True, True),         # not one integer: fought unless equal
    ({"value": ">2048", "op": ">=", "yields": "sysctl.d"}, "1024", True, False),  # reapply_sysctl=1: sysctl.d wins
    ({"value": ">2048", "op": ">=", "yields": "sysctl.d"}, "1024", False, True),  # ... unless the value is not there
    ({"value": ">2048", "op": ">=", "yields": "sysctl.d"}, "4096", False, False),
    ({"value": None, "op": "=", "yields": "writes"}, "4096 131072 6291456", False, False),  # bpftune backs off
])
def test_conflicts(write, requested, persisted, fought):
    assert A.conflicts(write, requested, persisted=persisted) is fought


def test_tuned_conditional_and_reapplied_values_are_not_fought(tmp_path):
    entry = by_agent(A.detect(case("tuned-network-throughput")))["tuned"]["keys"]["net.core.somaxconn"]
    assert (entry["value"], entry["op"], entry["yields"]) == (">2048", ">=", "sysctl.d")
    # reapply_sysctl = 1 (the fixture's tuned-main.conf): the sysctl.d drop-in wins when tuned starts, whatever the profile.
    assert _owner("net.core.somaxconn", "4096", case("tuned-network-throughput")) is None
    assert _owner("net.ipv4.tcp_rmem", "4096 131072 33554432", case("tuned-network-throughput")) is None
    # reapply_sysctl = 0: ">2048" only raises the key, so 4096 stands and 1024 would be raised again.
    root = str(tmp_path / "root")
    shutil.copytree(case("tuned-network-throughput"), root)
    _put(root, "etc/tuned/tuned-main.conf", "daemon = 1\nreapply_sysctl = 0\n")
    assert _owner("net.core.somaxconn", "4096", root) is None
    assert _owner("net.core.somaxconn", "2048", root) is None
    reason = _owner("net.core.somaxconn", "1024", root)
    assert reason and reason.startswith("TuneD profile network-throughput sets it") and ", to >2048. " in reason
    assert _owner("net.ipv4.tcp_rmem", "4096 131072 33554432", root)  # an exact value: fought
    assert _owner("net.ipv4.tcp_rmem", "4096 87380 16777216", root) is None


def test_kube_proxy_only_raises_the_conntrack_buckets():
    root = case("kube-proxy-kubeadm-ipvs")  # nf_conntrack_max 262144, so buckets at least 65536
    entry = by_agent(A.detect(root))["kube-proxy"]["keys"]["net.netfilter.nf_conntrack_buckets"]
    assert (entry["value"], entry["op"], entry["yields"]) == ("65536", ">=", None)
    assert _owner("net.netfilter.nf_conntrack_buckets", "262144", root) is None
    assert _owner("net.netfilter.nf_conntrack_buckets", "65536", root) is None
    reason = _owner("net.netfilter.nf_conntrack_buckets", "16384", root)  # below kube-proxy's minimum: it raises it again
    assert reason and reason.startswith("kube-proxy raises the nf_conntrack hashsize") and ", to 65536. " in reason
    # nf_conntrack_max is written whenever it differs, larger or smaller.
    assert _owner("net.netfilter.nf_conntrack_max", "524288", root)
    assert _owner("net.netfilter.nf_conntrack_max", "262144", root) is None


def test_bpftune_backs_off_once_the_key_is_set():
    entry = by_agent(A.detect(case("bpftune-allow")))["bpftune"]["keys"]["net.ipv4.tcp_rmem"]
    assert (entry["value"], entry["yields"]) == (None, "writes")
    assert _owner("net.ipv4.tcp_rmem", "4096 131072 6291456", case("bpftune-allow")) is None


def test_networkd_dropins_are_sorted_by_name_across_directories(tmp_path):
    """systemd's conf_files_list: one list by file name over all directories; a same name in /etc masks /usr/lib."""
    root = str(tmp_path / "root")
    shutil.copytree(case("networkd"), root)
    vendor, admin = "usr/lib/systemd/network/10-uplink.network.d", "etc/systemd/network/10-uplink.network.d"
    _put(root, vendor + "/10-vendor.conf", "[Network]\nIPv4ReversePathFilter=strict\n")
    _put(root, admin + "/20-admin.conf", "[Network]\nIPv4ReversePathFilter=no\n")  # later by name: wins over the vendor's
    _put(root, vendor + "/30-privacy.conf", "[Network]\nIPv6PrivacyExtensions=no\n")
    _put(root, admin + "/30-privacy.conf", "[Network]\nIPv6PrivacyExtensions=prefer-public\n")  # same name: masks it
    _put(root, vendor + "/40-proxy-arp.conf", "[Network]\nIPv4ProxyARP=yes\n")
    os.symlink("/dev/null", os.path.join(root, admin, "40-proxy-arp.conf"))  # masked by a /dev/null link
    _put(root, "usr/lib/systemd/networkd.conf.d/50-vendor.conf", "[Network]\nIPv4Forwarding=yes\nIPv6Forwarding=yes\n")
    _put(root, "etc/systemd/networkd.conf.d/60-admin.conf", "[Network]\nIPv6Forwarding=no\n")
    agent = by_agent(A.detect(root))["systemd-networkd"]
    keys = {key: entry["value"] for key, entry in agent["keys"].items()}
    assert keys["net.ipv4.conf.eth0.rp_filter"] == "0"        # 10-vendor strict, then 20-admin no
    assert keys["net.ipv6.conf.eth0.use_tempaddr"] == "1"     # /etc's 30-privacy.conf, prefer-public
    assert not [k for k in keys if "proxy_arp" in k]
    assert keys["net.ipv4.conf.eth0.forwarding"] == "1"       # the .network file's own IPv4Forwarding=yes
    # networkd.conf, then its drop-ins by name: IPv4 from the vendor's, IPv6 back to no from the admin's (conf.all is
    # also written by 30-legacy.network's IPForward=yes, so conf.default shows networkd.conf).
    assert keys["net.ipv4.conf.default.forwarding"] == "1" and keys["net.ipv6.conf.default.forwarding"] == "0"
    assert "/usr/lib/systemd/networkd.conf.d/50-vendor.conf" in agent["keys"]["net.ipv4.conf.default.forwarding"]["source"]
    assert "/etc/systemd/networkd.conf.d/60-admin.conf" in agent["keys"]["net.ipv6.conf.default.forwarding"]["advice"]
    assert keys["net.ipv4.conf.eth1.forwarding"] == "1"      # no IPv4Forwarding= of its own: networkd.conf's


def test_indented_lines_of_network_files_and_keyfiles_are_keys(tmp_path):
    """systemd and GKeyFile strip every line; configparser alone would read an indented line as a continuation."""
    text = "[Network]\nDHCP=yes\n    IPv4Forwarding=no\n"
    assert parsers.ini(text, strip_lines=True) == {"Network": {"DHCP": "yes", "IPv4Forwarding": "no"}}
    assert parsers.ini(text) == {"Network": {"DHCP": "yes\nIPv4Forwarding=no"}}  # TuneD's loader (configparser) is left so
    networkd = str(tmp_path / "networkd")
    shutil.copytree(case("networkd"), networkd)
    _put(networkd, "etc/systemd/network/10-uplink.network",
         "[Match]\n  Name=eth0\n\n[Network]\nDHCP=yes\n    IPv4Forwarding=no\n    IPv4ReversePathFilter=strict\n")
    keys = by_agent(A.detect(networkd))["systemd-networkd"]["keys"]
    assert keys["net.ipv4.conf.eth0.forwarding"]["value"] == "0" and keys["net.ipv4.conf.eth0.rp_filter"]["value"] == "1"
    nm = str(tmp_path / "nm")
    shutil.copytree(case("networkmanager"), nm)
    os.remove(os.path.join(nm, "etc/NetworkManager/system-connections/Hotspot.nmconnection"))
    _put(nm, "etc/NetworkManager/system-connections/Wired.nmconnection",
         "[connection]\nid=Wired connection 1\ninterface-name=enp1s0\n\n[ipv4]\naddress1=192.168.50.1/24\n  method=shared\n"
         "\n[ipv6]\nmethod=auto\n  ip6-privacy=1\n")
    keys = by_agent(A.detect(nm))["NetworkManager"]["keys"]
    assert {key: entry["value"] for key, entry in keys.items()} == {"net.ipv4.ip_forward": "1", "net.ipv6.conf.enp1s0.use_tempaddr": "1"}
    assert "profile Wired connection 1" in keys["net.ipv4.ip_forward"]["source"]
