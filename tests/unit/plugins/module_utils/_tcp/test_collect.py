"""gather() end to end on fake trees: one collection, both backends, the owners, the sysctls read inside."""
import os

import pytest
from ansible_collections.linuxnet.tcp.tests.unit.plugins.module_utils.host_fixtures import make_proc
from ansible_collections.linuxnet.tcp.tests.unit.plugins.module_utils.tcp_fixtures import FakeNetlink, fake_proc, ss_counts

from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp import collect as C
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp import counters as K
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp import report as R
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp import sockets as S

TOP_KEYS = {"states", "time_wait", "close_wait", "peers", "local_ports", "listeners", "ephemeral_ports", "counters",
            "conntrack", "collection", "rates"}


def cw_inodes(root):
    """Inodes of the two recorded CLOSE_WAIT sockets, read from the fixture text."""
    with open(os.path.join(root, "proc", "net", "tcp"), encoding="ascii") as handle:
        return sorted(int(line.split()[9]) for line in handle if line.split()[3] == "08")


@pytest.fixture(params=["netlink", "proc"])
def facts_root(request, tmp_path, monkeypatch):
    root = fake_proc(str(tmp_path))
    listen = 55215  # inode of the 127.0.0.1:8080 listener in the recording
    make_proc(root, {700: ("leaky", "net:[7]", ["socket:[%d]" % ino for ino in cw_inodes(root)] + ["socket:[%d]" % listen])})
    monkeypatch.setattr(S, "_open_netlink", FakeNetlink())
    return request.param, root


def test_gather_full(facts_root):
    backend, root = facts_root
    facts = C.gather(backend=backend, root=root)
    assert set(facts) == TOP_KEYS
    states = facts["states"]
    assert {k: v for k, v in states.items() if k in ss_counts()} == ss_counts()
    assert states["total"] == sum(ss_counts().values()) and states["by_family"] == {"ipv4": 21, "ipv6": 9}
    tw = facts["time_wait"]
    assert tw["total"] == 7
    assert tw["by_remote"] == [{"address": "127.0.0.1", "port": 9090, "count": 4},
                               {"address": "::1", "port": 9090, "count": 3}]
    assert len(tw["by_local_port"]) == 7 and all(row["count"] == 1 for row in tw["by_local_port"])
    cw = facts["close_wait"]
    user = cw["by_process"][0]["user"]
    remotes = [{"address": "127.0.0.1", "port": 9090, "local_port": None, "count": 2}]
    assert cw == {"total": 2, "unowned": 0, "by_process": [
        {"pid": 700, "name": "leaky", "user": user, "count": 2, "remotes": remotes}],
        # The fake tree has no exe link or cgroup file: the program is known by its name.
        "by_program": [{"name": "leaky", "exe": None, "cgroup": None, "user": user, "count": 2, "pids": [700],
                        "processes": 1, "remotes": remotes}]}
    # The accept-queue-full listener comes first, owned by pid 700 in this fake tree.
    first = facts["listeners"][0]
    assert (first["address"], first["port"], first["queue"], first["pid"]) == ("127.0.0.1", 8080, 3, 700)
    assert first["backlog"] == (2 if backend == "netlink" else None)
    assert sorted((l["address"], l["port"]) for l in facts["listeners"]) == [("127.0.0.1", 8080), ("::", 9090),
                                                                             ("::1", 7070)]
    # Peers: IPv4-mapped IPv6 peers merged into 127.0.0.1.
    assert facts["peers"][0]["address"] == "127.0.0.1"
    assert facts["peers"][0]["total"] == 20 and facts["peers"][0]["states"]["FIN_WAIT2"] == 2
    assert facts["peers"][1] == {"address": "::1", "total": 7, "states": dict(
        {name: 0 for name in R.STATE_ORDER}, ESTABLISHED=4, TIME_WAIT=3)}
    assert facts["local_ports"][0]["port"] == 9090 and facts["local_ports"][0]["states"]["LISTEN"] == 1
    # Outbound sockets towards 127.0.0.1:9090 hold 8 local ports: 2 ESTABLISHED + 4 TIME_WAIT + 2 CLOSE_WAIT.
    # The fake tree has no tcp_tw_reuse: reuse is not judged, and every TIME_WAIT socket counts as holding its port.
    pool = {"address": "127.0.0.1", "port": 9090, "in_use": 8, "utilisation": round(8 / 28232, 4), "sockets": 8,
            "connections": 4, "time_wait": 4, "time_wait_held": 4, "time_wait_reusable": 0}
    assert facts["ephemeral_ports"] == {"range": [32768, 60999], "size": 28232, "busiest": pool, "crowded": pool,
                                        "reuse": {"tcp_tw_reuse": None, "tcp_tw_reuse_delay_ms": None,
                                                  "tcp_timestamps": None, "judged": False}}
    assert facts["rates"] is None
    assert facts["counters"]["ListenOverflows"] == 5
    col = facts["collection"]
    assert col["backend"] == backend and col["fallback_reason"] is None and col["initial_netns"] is None
    # The idle IPv6 listeners' holders are not in the fake tree: unknown, but they were optional.
    assert col["owners"]["complete"] is True
    assert [l["pid"] for l in facts["listeners"] if l["port"] != 8080] == [None, None]


def test_backends_agree(facts_root):
    _backend, root = facts_root
    one = C.gather(backend="netlink", root=root)
    two = C.gather(backend="proc", root=root)
    for facts in (one, two):
        facts.pop("collection")
        for row in facts["listeners"]:
            for key in ("backlog", "syn_limit", "syn_bound"):
                row.pop(key)
    assert one == two


def test_fallback_to_proc(facts_root, monkeypatch):
    _backend, root = facts_root

    def refuse():
        raise OSError(93, "Protocol not supported")
    monkeypatch.setattr(S, "_open_netlink", refuse)
    facts = C.gather(root=root)
    assert facts["collection"]["backend"] == "proc"
    assert "refused" in facts["collection"]["fallback_reason"]
    with pytest.raises(S.NetlinkRefused):
        C.gather(backend="netlink", root=root)


def test_counts_only(facts_root):
    backend, root = facts_root
    facts = C.gather(backend=backend, states=[], root=root)
    assert facts["states"]["TIME_WAIT"] == 7 and facts["time_wait"]["total"] == 7
    assert facts["time_wait"]["by_remote"] == [] and facts["peers"] == [] and facts["listeners"] == []
    assert facts["close_wait"] == {"total": 2, "by_process": [], "by_program": [], "unowned": 0}
    assert facts["collection"]["owners"]["fds_read"] == 0


def test_states_subset(facts_root):
    backend, root = facts_root
    facts = C.gather(backend=backend, states=["CLOSE_WAIT"], root=root)
    assert facts["close_wait"]["by_process"][0]["count"] == 2
    assert facts["time_wait"]["by_remote"] == [] and facts["states"]["TIME_WAIT"] == 7
    assert facts["listeners"] == []
    assert [p["address"] for p in facts["peers"]] == ["127.0.0.1"] and facts["peers"][0]["total"] == 2


def test_top_and_summary(facts_root):
    backend, root = facts_root
    assert C.gather(backend=backend, top=0, root=root)["peers"] == []
    small = C.gather(backend=backend, top=1, processes=False, root=root)
    assert len(small["time_wait"]["by_remote"]) == 1 and len(small["local_ports"]) == 1
    assert small["close_wait"]["unowned"] == 2
    assert small["collection"]["owners"] == {"visibility": "not requested", "complete": None}
    summ = C.gather(backend=backend, summary=True, root=root)
    assert set(summ) == TOP_KEYS
    assert len(summ["time_wait"]["by_local_port"]) == R.SUMMARY_LIST_CAP
    assert summ["peers"][1]["states"] == {"ESTABLISHED": 4, "TIME_WAIT": 3}
    assert len(summ["listeners"]) == 3 and summ["listeners"][0]["port"] == 8080


def test_idle_listener_owners_can_be_left_out(facts_root, monkeypatch):
    """Per-namespace documents keep the listeners with a queue only: their idle listeners are not looked up."""
    backend, root = facts_root
    asked = []
    real = C.find_owners

    def spy(inodes, *args, **kwargs):
        asked.append((list(inodes), list(args[-1])))
        return real(inodes, *args, **kwargs)
    monkeypatch.setattr(C, "find_owners", spy)
    full = C.gather(backend=backend, root=root)
    lean = C.gather(backend=backend, root=root, idle_owners=False)
    (required, optional), (lean_required, lean_optional) = asked
    assert len(optional) == 2 and lean_optional == [] and lean_required == required  # the two idle IPv6 listeners
    assert lean["listeners"][0]["pid"] == full["listeners"][0]["pid"] == 700  # the one with a queue
    assert lean["close_wait"] == full["close_wait"]


def test_sysctl_values_reuse_what_the_socket_table_read(tmp_path):
    """A scan of every namespace reads each sysctl once: the values it reports equal a fresh read of every key."""
    files = {"ipv4/tcp_tw_reuse": "2", "ipv4/tcp_timestamps": "1", "ipv4/tcp_syncookies": "1", "core/somaxconn": "4096",
             "ipv4/tcp_max_syn_backlog": "512", "ipv4/ip_local_port_range": "32768\t60999", "ipv4/tcp_fin_timeout": "60"}
    for name, text in files.items():
        path = tmp_path / "proc" / "sys" / "net" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    root = str(tmp_path)
    keys = ("net.ipv4.tcp_tw_reuse", "net.ipv4.tcp_timestamps", "net.ipv4.tcp_max_tw_buckets", "net.ipv4.tcp_fin_timeout",
            "net.ipv4.ip_local_port_range", "net.core.somaxconn", "net.ipv4.tcp_max_syn_backlog")
    values = C._sysctl_values(root, keys, K.read_socket_sysctls(root), K.read_port_range(root))
    assert values == K.read_sysctls(root, keys) and "net.ipv4.tcp_max_tw_buckets" not in values
