# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Agent detection on recorded trees (tests/unit/fixtures/agents/<case>, see record_fixtures.py there)."""
from __future__ import annotations

import os
import shutil

import pytest

from ansible_collections.linuxnet.tcp.plugins.module_utils import _agents as A

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "fixtures", "agents")


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


@pytest.mark.parametrize("online, status, expected", [
    ("0-3\n", None, (4, "/sys/devices/system/cpu/online")),
    ("0,2-3,8-11\n", None, (7, "/sys/devices/system/cpu/online")),
    (None, "Name:\tx\nCpus_allowed_list:\t0-1\n", (2, "/proc/7/status Cpus_allowed_list")),
    (None, None, (None, None)),
])
def test_cpu_count(tmp_path, online, status, expected):
    if online is not None:
        os.makedirs(str(tmp_path / "sys/devices/system/cpu"))
        (tmp_path / "sys/devices/system/cpu/online").write_text(online)
    if status is not None:
        os.makedirs(str(tmp_path / "proc/7"))
        (tmp_path / "proc/7/status").write_text(status)
    assert A.cpu_count(str(tmp_path), 7) == expected


def test_cpu_count_of_this_machine_uses_sysfs():
    count, source = A.cpu_count("/")
    assert count == len(os.sched_getaffinity(0)) or source == "/sys/devices/system/cpu/online"


@pytest.mark.parametrize("text, seconds", [
    ("24h0m0s", 86400.0), ("1h", 3600.0), ("350s", 350.0), ("1.5h", 5400.0), ("1m30s", 90.0), ("250ms", 0.25),
    ("0", 0.0), ("0s", 0.0), ("-5s", -5.0), ("", None), ("5", None), ("1x", None), ("h", None), (3600000000000, 3600.0),
    (None, None), (True, None),
])
def test_go_duration(text, seconds):
    assert A.go_duration(text) == seconds


@pytest.mark.parametrize("argv, expected", [
    (["kp", "--config=/a", "--v=2"], {"config": "/a", "v": "2"}),
    (["kp", "--config", "/a", "--ipvs-strict-arp", "--proxy-mode", "ipvs"], {"config": "/a", "ipvs-strict-arp": "true", "proxy-mode": "ipvs"}),
    (["kp", "--unknown-bool", "--x=1"], {"unknown-bool": "true", "x": "1"}),  # a non-bool flag followed by an option
    (["kp", "--a=1", "--a=2"], {"a": "2"}),                                    # the last one wins, as in pflag
    (["kp", "--", "--after=1"], {}),
    (["dockerd", "-H", "fd://", "-b", "br0"], {"H": "fd://", "b": "br0"}),
])
def test_parse_flags(argv, expected):
    assert A.parse_flags(argv, A.KUBE_PROXY_BOOL_FLAGS) == expected


def test_parse_yaml_subset():
    text = """---
# comment
apiVersion: kubeproxy.config.k8s.io/v1alpha1
conntrack:
  maxPerCore: 65536   # trailing comment
  min: null
  tcpEstablishedTimeout: "24h0m0s"
detectLocal: {}
healthzBindAddresses:
- 0.0.0.0/0
- '::/0'
nodePortAddresses: [10.0.0.0/8, 127.0.0.0/8]
featureGates:
  A: true
quoted: "a # not a comment"
---
second: document
"""
    assert A.parse_yaml(text) == {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "conntrack": {"maxPerCore": 65536, "min": None, "tcpEstablishedTimeout": "24h0m0s"},
        "detectLocal": {}, "healthzBindAddresses": ["0.0.0.0/0", "::/0"],
        "nodePortAddresses": ["10.0.0.0/8", "127.0.0.0/8"], "featureGates": {"A": True},
        "quoted": "a # not a comment",
    }
    assert A.parse_yaml('{"mode": "ipvs", "conntrack": {"maxPerCore": 0}}') == {"mode": "ipvs", "conntrack": {"maxPerCore": 0}}
    with pytest.raises(ValueError):
        A.parse_yaml("a: 1\n   b: 2\n")


def test_ini_merges_and_keeps_the_preamble():
    parsed = A._ini("x=1\n[sysctl]\na = 1 # c\n[sysctl]\nb=2\na=3\n", inline_comments=True)
    assert parsed == {"": {"x": "1"}, "sysctl": {"a": "3", "b": "2"}}
    assert A._ini(None) == {}


def test_writers_for_matches_canonical_spellings_and_aliases():
    agents = A.detect(case("kube-proxy-kubeadm-ipvs")) + A.detect(case("docker-ipv6-no-userland-proxy"))
    keys = ["net/netfilter/nf_conntrack_max", "net.ipv4.conf.all.forwarding", "net.ipv4.tcp_fin_timeout", "bad key!"]
    writers = A.writers_for(keys, agents)
    assert sorted(writers) == ["net.ipv4.conf.all.forwarding", "net/netfilter/nf_conntrack_max"]
    assert writers["net/netfilter/nf_conntrack_max"] == [{
        "agent": "kube-proxy", "value": "262144",
        "source": agents[0]["keys"]["net.netfilter.nf_conntrack_max"]["source"],
        "advice": agents[0]["keys"]["net.netfilter.nf_conntrack_max"]["advice"]}]
    forwarding = writers["net.ipv4.conf.all.forwarding"]
    assert [row["agent"] for row in forwarding] == ["kube-proxy", "dockerd"]
    assert all("it writes net.ipv4.ip_forward, the same kernel setting" in row["source"] for row in forwarding)
    assert set(forwarding[0]) == {"agent", "value", "source", "advice"}


def test_writers_for_takes_a_dict_and_no_agents():
    assert A.writers_for({"net.core.somaxconn": "4096"}, []) == {}
    tuned = A.detect(case("tuned-network-throughput"))
    assert A.writers_for({"net.core.somaxconn": "4096"}, tuned)["net.core.somaxconn"][0]["value"] == ">2048"


def test_bad_values_never_break_detection(tmp_path):
    """Values an agent would reject make the key's value unknown, not the detection fail."""
    root = tmp_path / "root"
    shutil.copytree(case("kube-proxy-kubeadm-ipvs"), str(root))
    (root / "var/lib/kube-proxy/config.conf").write_text(
        "conntrack:\n  maxPerCore: lots\n  tcpEstablishedTimeout: {a: 1}\nmode: ipvs\n")
    keys = by_agent(A.detect(str(root)))["kube-proxy"]["keys"]
    assert keys["net.netfilter.nf_conntrack_max"]["value"] is None
    assert "unreadable value 'lots'" in keys["net.netfilter.nf_conntrack_max"]["source"]
    assert keys["net.netfilter.nf_conntrack_tcp_timeout_established"]["value"] == "86400"  # not a duration: default
    cni = tmp_path / "cni"
    shutil.copytree(case("containerd-cni-bridge"), str(cni))
    (cni / "etc/cni/net.d/10-containerd-net.conflist").write_text("[1, 2]")
    (cni / "etc/cni/net.d/11-broken.conf").write_text("{")
    assert by_agent(A.detect(str(cni)))["containerd"]["keys"] == {}
