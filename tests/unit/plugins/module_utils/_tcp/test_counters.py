"""Kernel counter readers on fake /proc trees."""
import os

import pytest
from ansible_collections.linuxnet.tcp.tests.unit.plugins.module_utils.tcp_fixtures import fake_proc

from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp import counters as K


@pytest.mark.parametrize("text, prefix, expected", [
    ("TcpExt: A B\nTcpExt: 1 2\n", "TcpExt", {"A": 1, "B": 2}),
    ("Ip: X\nIp: 9\nTcp: CurrEstab\nTcp: 7\n", "Tcp", {"CurrEstab": 7}),
    ("Tcp: Max\nTcp: -1\n", "Tcp", {"Max": -1}),
    ("IpExt: A\nIpExt: 1\n", "TcpExt", {}),
])
def test_parse_pairs(text, prefix, expected):
    assert K.parse_pairs(text, prefix) == expected


@pytest.mark.parametrize("text, match", [("TcpExt: A B\nTcpExt: 1\n", "2 TcpExt names but 1 values"),
                                         ("TcpExt: A\nTcpExt: x\n", "TcpExt A is 'x'")])
def test_parse_pairs_malformed(text, match):
    with pytest.raises(K.KstatsError, match=match):
        K.parse_pairs(text, "TcpExt", "/proc/net/netstat")


def test_read_counters(tmp_path):
    out = K.read_counters(fake_proc(str(tmp_path)))
    assert out["ListenOverflows"] == 5 and out["ListenDrops"] == 6 and out["TW"] == 100
    assert out["CurrEstab"] == 14 and out["ActiveOpens"] == 200
    assert out["TCPAbortOnMemory"] is None  # not in this (fake) kernel
    assert set(K.TCPEXT_COUNTERS + K.TCP_COUNTERS + ("sockstat",)) == set(out)
    # TCP inuse of sockstat plus TCP6 inuse of sockstat6
    assert out["sockstat"] == {"inuse": 29, "orphan": 1, "tw": 7, "alloc": 30, "mem": 4}


def test_a_thread_in_another_namespace_reads_its_own_net(tmp_path):
    """/proc/net follows the main thread's namespace: a thread that entered another one reads thread-self."""
    root = fake_proc(str(tmp_path))
    os.makedirs(os.path.join(root, "proc", "thread-self"))
    os.rename(os.path.join(root, "proc", "net"), os.path.join(root, "proc", "thread-self", "net"))
    assert K.read_counters(root, "proc/thread-self/net")["ListenOverflows"] == 5
    with pytest.raises(K.KstatsError, match="proc/net/netstat"):
        K.read_counters(root)


def test_read_sysctls(tmp_path):
    root = str(tmp_path)
    os.makedirs(os.path.join(root, "proc", "sys", "net", "ipv4"))
    with open(os.path.join(root, "proc", "sys", "net", "ipv4", "ip_local_port_range"), "w", encoding="ascii") as handle:
        handle.write("32768\t60999\n")
    assert K.read_sysctls(root, ("net.ipv4.ip_local_port_range", "net.core.somaxconn")) == {
        "net.ipv4.ip_local_port_range": "32768 60999"}


def test_read_sysctls_spells_keys_as_sysctl_does(tmp_path):
    """A dot inside a component (an interface eth0.100) is written '/' in a dotted key (_sysctl/keys.py): the path
    is /proc/sys/net/ipv4/conf/eth0.100/rp_filter, in either spelling."""
    conf = tmp_path / "proc" / "sys" / "net" / "ipv4" / "conf" / "eth0.100"
    conf.mkdir(parents=True)
    (conf / "rp_filter").write_text("2\n")
    keys = ("net.ipv4.conf.eth0/100.rp_filter", "net/ipv4/conf/eth0.100/rp_filter")
    assert K.read_sysctls(str(tmp_path), keys) == dict.fromkeys(keys, "2")


def test_sockstat6_is_optional(tmp_path):
    root = fake_proc(str(tmp_path), extra={"proc/net/sockstat6": None})
    assert K.read_sockstat(root)["inuse"] == 20


@pytest.mark.parametrize("missing", ["proc/net/netstat", "proc/net/snmp", "proc/net/sockstat"])
def test_missing_file_is_named(tmp_path, missing):
    root = fake_proc(str(tmp_path))
    (tmp_path / missing).unlink()
    with pytest.raises(K.KstatsError, match="cannot read .*%s: file not found" % missing):
        K.read_counters(root)


@pytest.mark.parametrize("count, limit, expected", [
    ("1000\n", "262144\n", {"count": 1000, "max": 262144, "utilisation": 0.0038}),
    (None, None, {"count": None, "max": None, "utilisation": None}),
    ("5\n", "0\n", {"count": 5, "max": 0, "utilisation": None}),
])
def test_conntrack(tmp_path, count, limit, expected):
    extra = {"proc/sys/net/netfilter/nf_conntrack_count": count, "proc/sys/net/netfilter/nf_conntrack_max": limit}
    root = fake_proc(str(tmp_path), extra=extra)
    assert K.read_conntrack(root) == expected


@pytest.mark.parametrize("text, expected", [("32768\t60999\n", (32768, 60999)), ("1024 65535\n", (1024, 65535)),
                                            ("junk\n", None), (None, None)])
def test_port_range(tmp_path, text, expected):
    root = fake_proc(str(tmp_path), extra={"proc/sys/net/ipv4/ip_local_port_range": None})
    if text is not None:
        (tmp_path / "proc/sys/net/ipv4/ip_local_port_range").write_text(text)
    assert K.read_port_range(root) == expected
