"""Aggregates built from the recorded socket table; gather() end to end on fake trees."""
import os
import random
import struct

import pytest
from ansible_collections.linuxnet.tcp.tests.unit.plugins.module_utils.tcp_fixtures import FakeNetlink, fake_proc, ss_counts
from ansible_collections.linuxnet.tcp.tests.unit.plugins.module_utils._host.test_processes import make_proc

from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp import counters as K
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp import sockets as S
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp import report as R

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
    facts = R.gather(backend=backend, root=root)
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
    one = R.gather(backend="netlink", root=root)
    two = R.gather(backend="proc", root=root)
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
    facts = R.gather(root=root)
    assert facts["collection"]["backend"] == "proc"
    assert "refused" in facts["collection"]["fallback_reason"]
    with pytest.raises(S.NetlinkRefused):
        R.gather(backend="netlink", root=root)


def test_counts_only(facts_root):
    backend, root = facts_root
    facts = R.gather(backend=backend, states=[], root=root)
    assert facts["states"]["TIME_WAIT"] == 7 and facts["time_wait"]["total"] == 7
    assert facts["time_wait"]["by_remote"] == [] and facts["peers"] == [] and facts["listeners"] == []
    assert facts["close_wait"] == {"total": 2, "by_process": [], "by_program": [], "unowned": 0}
    assert facts["collection"]["owners"]["fds_read"] == 0


def test_states_subset(facts_root):
    backend, root = facts_root
    facts = R.gather(backend=backend, states=["CLOSE_WAIT"], root=root)
    assert facts["close_wait"]["by_process"][0]["count"] == 2
    assert facts["time_wait"]["by_remote"] == [] and facts["states"]["TIME_WAIT"] == 7
    assert facts["listeners"] == []
    assert [p["address"] for p in facts["peers"]] == ["127.0.0.1"] and facts["peers"][0]["total"] == 2


def test_top_and_summary(facts_root):
    backend, root = facts_root
    assert R.gather(backend=backend, top=0, root=root)["peers"] == []
    small = R.gather(backend=backend, top=1, processes=False, root=root)
    assert len(small["time_wait"]["by_remote"]) == 1 and len(small["local_ports"]) == 1
    assert small["close_wait"]["unowned"] == 2
    assert small["collection"]["owners"] == {"visibility": "not requested", "complete": None}
    summ = R.gather(backend=backend, summary=True, root=root)
    assert set(summ) == TOP_KEYS
    assert len(summ["time_wait"]["by_local_port"]) == R.SUMMARY_LIST_CAP
    assert summ["peers"][1]["states"] == {"ESTABLISHED": 4, "TIME_WAIT": 3}
    assert len(summ["listeners"]) == 3 and summ["listeners"][0]["port"] == 8080


def test_inbound_time_wait_groups_remote_ports():
    tally = R.Tally((32768, 60999))
    ip = b"\x0a\0\0\x05" + b"\0" * 12
    me = b"\x0a\0\0\x01" + b"\0" * 12
    tally.add_listeners(S.AF_INET, [(S.LISTEN, 443, 0, me, b"\0" * 16, 0, 128, 0, 11)])
    tally.add(S.AF_INET, [(S.TIME_WAIT, 443, 40000 + i, me, ip, 0, 0, 0, 0) for i in range(3)])
    tally.add(S.AF_INET, [(S.TIME_WAIT, 50000 + i, 3306, me, ip, 0, 0, 0, 0) for i in range(2)])
    facts = tally.report(top=10)
    assert facts["time_wait"]["by_remote"] == [{"address": "10.0.0.5", "port": None, "count": 3},
                                               {"address": "10.0.0.5", "port": 3306, "count": 2}]
    assert facts["time_wait"]["by_local_port"][0] == {"port": 443, "count": 3}
    # Inbound sockets use no ephemeral port: only the two outbound ones count.
    assert facts["ephemeral_ports"]["busiest"]["in_use"] == 2


def test_no_port_range():
    facts = R.Tally(None).report()
    empty = {"address": None, "port": None, "in_use": None, "utilisation": None}
    assert facts["ephemeral_ports"] == {"range": None, "size": None, "busiest": empty, "crowded": empty, "reuse": {
        "tcp_tw_reuse": None, "tcp_tw_reuse_delay_ms": None, "tcp_timestamps": None, "judged": False}}


@pytest.mark.parametrize("slot, raw, text", [
    (0, b"\x7f\0\0\1" + b"\0" * 12, "127.0.0.1"),
    (1, b"\0" * 10 + b"\xff\xff\x0a\0\0\x05", "10.0.0.5"),
    (1, b"\x20\x01\x0d\xb8" + b"\0" * 12, "2001:db8::"),
])
def test_address_text(slot, raw, text):
    assert R.address_text(slot, raw) == text


def test_inbound_close_wait_keeps_the_listening_port():
    tally = R.Tally((32768, 60999))
    me = b"\x0a\0\0\x01" + b"\0" * 12
    peer = b"\x0a\0\0\x07" + b"\0" * 12
    tally.add_listeners(S.AF_INET, [(S.LISTEN, 8443, 0, me, b"\0" * 16, 0, 128, 0, 11)])
    # Two inbound sockets from different client ports, one outbound towards 10.0.0.7:9200.
    tally.add(S.AF_INET, [(S.CLOSE_WAIT, 8443, 41000, me, peer, 0, 0, 0, 21), (S.CLOSE_WAIT, 8443, 41001, me, peer, 0, 0, 0, 22),
                          (S.CLOSE_WAIT, 50000, 9200, me, peer, 0, 0, 0, 23)])
    holder = [{"pid": 5, "name": "app", "user": "app"}]
    owners = {21: holder, 22: holder, 23: holder}
    remotes = [{"address": "10.0.0.7", "port": None, "local_port": 8443, "count": 2},
               {"address": "10.0.0.7", "port": 9200, "local_port": None, "count": 1}]
    assert tally.report(owners=owners)["close_wait"]["by_process"][0]["remotes"] == remotes
    assert tally.report(owners=owners, summary=True)["close_wait"]["by_process"][0]["remotes"] == remotes[:1]


DIAG = struct.Struct("=IHHII")  # nlmsghdr
BODY = struct.Struct(">BBBBHH16s16s")
TAIL = struct.Struct("=I8xIIIII")  # if, cookie, expires, rqueue, wqueue, uid, inode


def message(state, family, sport, dport, src, dst, inode=0):
    length = 96 if state in (S.TIME_WAIT, S.SYN_RECV, S.FIN_WAIT2) else 124
    data = DIAG.pack(length, 18, 2, 1, 0) + BODY.pack(family, state, 0, 0, sport, dport, src, dst)
    data += TAIL.pack(0, 0, 0, 0, 0, inode)
    return data + b"\0" * (length - len(data))


def random_table(rng, count):
    v4 = [bytes([10, 0, 0, n]) + b"\0" * 12 for n in range(1, 6)]
    v6 = [bytes([0x20, 0x01, 0x0d, 0xb8]) + b"\0" * 11 + bytes([n]) for n in range(1, 4)]
    mapped = [b"\0" * 10 + b"\xff\xff" + addr[:4] for addr in v4[:3]]
    rows = []
    for index in range(count):
        family = rng.choice((S.AF_INET, S.AF_INET, S.AF_INET6))
        state = rng.choice((1, 1, 1, 2, 4, 5, 6, 6, 6, 8, 9, 11))
        pool = v4 if family == S.AF_INET else rng.choice((v6, mapped))
        kind = rng.choice(("in", "out", "fixed"))
        sport = {"in": rng.choice((443, 8080)), "out": rng.randint(32768, 60999), "fixed": rng.randint(1, 1023)}[kind]
        dport = rng.randint(32768, 60999) if kind == "in" else rng.choice((3306, 5432))
        src = pool[0] if family == S.AF_INET or pool is v6 else b"\0" * 10 + b"\xff\xff" + b"\x0a\0\0\x01"
        rows.append((state, family, sport, dport, src, rng.choice(pool), 1000 + index if state == S.CLOSE_WAIT else 0))
    return rows


@pytest.mark.parametrize("seed", range(6))
def test_blocks_and_records_give_the_same_report(seed):
    """The netlink path (uniform blocks of messages, any mix of family, state and class) and the /proc path
    (records) are two implementations of one aggregation: the same table gives the same report."""
    rng = random.Random(seed)
    rows = random_table(rng, rng.randint(1, 900))
    me4, me6 = b"\x0a\0\0\x01" + b"\0" * 12, b"\0" * 16
    listen = {S.AF_INET: [(S.LISTEN, 443, 0, me4, b"\0" * 16, 0, 128, 0, 1)],
              S.AF_INET6: [(S.LISTEN, 8080, 0, me6, b"\0" * 16, 0, 128, 0, 2)]}
    detail = S.ALL_STATES if seed % 3 else S.states_mask([S.TIME_WAIT, S.CLOSE_WAIT])
    owners = {row[6]: [{"pid": row[6] % 3, "name": "p", "user": "u"}] for row in rows if row[6]}
    blocks = R.Tally((32768, 60999), detail)
    records = R.Tally((32768, 60999), detail)
    for tally in (blocks, records):
        for family, recs in listen.items():
            tally.add_listeners(family, recs)
    # Netlink: messages in datagram-sized runs, each run regrouped by length as _sockets does.
    start = 0
    while start < len(rows):
        run = rows[start:start + rng.randint(1, 300)]
        start += len(run)
        for length in (96, 124):
            data = b"".join(m for m in (message(*row) for row in run) if len(m) == length)
            if data:
                # The receive buffer is longer than the block and holds an older datagram's messages past it
                # (as a reused netlink buffer does): nothing after ``size`` may be read.
                blocks.block(bytearray(data) + data, len(data), length)
    # /proc: records per family, counted as ProcBackend counts them.
    for state, family, sport, dport, src, dst, inode in rows:
        slot = 0 if family == S.AF_INET or dst[:12] == b"\0" * 10 + b"\xff\xff" else 1
        records.counts[slot * 16 + state] += 1
        if detail & (1 << state):
            records.add(family, [(state, sport, dport, src, dst, 0, 0, 0, inode)])
    for summary in (False, True):
        assert blocks.report(top=7, owners=owners, summary=summary) == records.report(top=7, owners=owners, summary=summary)
    assert blocks.counts == records.counts and sum(blocks.counts) == len(rows)  # listeners: counted by backends


def test_top_counts_orders_like_top():
    """_top_counts (C-level, for port tables) ranks exactly as _top: count first, ties in port order."""
    rng = random.Random(7)
    for _trial in range(200):
        table = {rng.randint(0, 3000): rng.randint(1, 4) for _n in range(rng.randint(0, 400))}
        cap = rng.randint(0, 12)
        assert R._top_counts(table, cap) == R._top(table, cap)


@pytest.mark.parametrize("states", [(S.CLOSE_WAIT,), (S.CLOSE_WAIT, S.ESTABLISHED)])
def test_nothing_past_the_block_is_read(states):
    """A netlink receive buffer is reused: past ``size`` it holds an older datagram's messages. A block of CLOSE_WAIT
    sockets only (one family, one state) once read the whole buffer and counted those as unowned CLOSE_WAIT."""
    src, dst = b"\x7f\0\0\x01" + b"\0" * 12, b"\x7f\0\0\x01" + b"\0" * 12
    rows = [(states[n % len(states)], S.AF_INET, 40000 + n, 5432, src, dst, 1000 + n) for n in range(25)]
    data = b"".join(message(*row) for row in rows)
    stale = b"".join(message(S.CLOSE_WAIT, S.AF_INET, 50000 + n, 5432, src, dst, 9000 + n) for n in range(25))
    tally = R.Tally((32768, 60999), S.ALL_STATES)
    tally.block(bytearray(data) + stale, len(data), 124)
    report = tally.report(owners={1000 + n: [{"pid": 7, "name": "app", "user": "u"}] for n in range(25)})
    wanted = sum(1 for row in rows if row[0] == S.CLOSE_WAIT)
    assert report["close_wait"]["total"] == wanted and report["close_wait"]["unowned"] == 0
    assert report["close_wait"]["by_process"][0]["count"] == wanted


def test_only_ffff_marks_an_ipv4_mapped_peer():
    """A peer with dst bytes 10-11 other than 0xffff (``::101:a00:7``) stays IPv6 beside a mapped one."""
    stride = 88

    def message(dst):
        return bytes(40) + dst + bytes(stride - 56)
    mapped = bytes(10) + b"\xff\xff" + bytes([10, 0, 0, 7])
    odd = bytes(10) + b"\x01\x01" + bytes([10, 0, 0, 7])
    data = message(mapped) + message(odd)
    assert R._mapped_lanes(data, len(data), stride) == b"\1\0"


def test_idle_listener_owners_can_be_left_out(facts_root, monkeypatch):
    """Per-namespace documents keep the listeners with a queue only: their idle listeners are not looked up."""
    backend, root = facts_root
    asked = []
    real = R.find_owners

    def spy(inodes, *args, **kwargs):
        asked.append((list(inodes), list(args[-1])))
        return real(inodes, *args, **kwargs)
    monkeypatch.setattr(R, "find_owners", spy)
    full = R.gather(backend=backend, root=root)
    lean = R.gather(backend=backend, root=root, idle_owners=False)
    (required, optional), (lean_required, lean_optional) = asked
    assert len(optional) == 2 and lean_optional == [] and lean_required == required  # the two idle IPv6 listeners
    assert lean["listeners"][0]["pid"] == full["listeners"][0]["pid"] == 700  # the one with a queue
    assert lean["close_wait"] == full["close_wait"]


ME4 = b"\x0a\0\0\x01" + b"\0" * 12
DB4 = b"\x0a\0\0\x05" + b"\0" * 12
LO4 = b"\x7f\0\0\x01" + b"\0" * 12
REUSE_ON = {"tcp_tw_reuse": 1, "tcp_tw_reuse_delay": 1000, "tcp_timestamps": 1}


def pool_tally(settings, dst=DB4, src=ME4):
    """Towards dst:3306: 2 connections open, 5 TIME_WAIT sockets 0.5 s old (59500 ms left), 5 30 s old."""
    tally = R.Tally((32768, 60999), S.ALL_STATES, settings)
    tally.add(S.AF_INET, [(S.ESTABLISHED, 40000 + n, 3306, src, dst, 0, 0, 0, 90 + n, 0) for n in range(2)])
    tally.add(S.AF_INET, [(S.TIME_WAIT, 41000 + n, 3306, src, dst, 0, 0, 0, 0, 59500 if n < 5 else 30000)
                          for n in range(10)])
    return tally.report()["ephemeral_ports"]


@pytest.mark.parametrize("settings, dst, held", [
    (REUSE_ON, DB4, 7),                                   # the 5 young TIME_WAIT sockets hold, the old 5 are reusable
    (dict(REUSE_ON, tcp_tw_reuse=0), DB4, 12),           # reuse off: every TIME_WAIT socket holds its port
    (dict(REUSE_ON, tcp_tw_reuse=2), DB4, 12),           # 2 = loopback only
    (dict(REUSE_ON, tcp_tw_reuse=2), LO4, 7),
    (dict(REUSE_ON, tcp_timestamps=0), DB4, 12),         # no timestamps, no reuse (ts_recent_stamp is 0)
    (dict(REUSE_ON, tcp_tw_reuse_delay=100), DB4, 2),    # 0.5 s old is old enough for a 100 ms delay
    (dict(REUSE_ON, tcp_tw_reuse_delay=None), DB4, 7),   # before 6.15: a second
    ({}, DB4, 12),                                       # settings unknown: not judged, all held
])
def test_ports_held_follow_tcp_twsk_unique(settings, dst, held):
    ports = pool_tally(settings, dst, src=LO4 if dst == LO4 else ME4)
    busiest = ports["busiest"]
    assert (busiest["in_use"], busiest["sockets"], busiest["connections"], busiest["time_wait"]) == (held, 12, 2, 10)
    assert busiest["time_wait_held"] == held - 2 and busiest["time_wait_reusable"] == 12 - held
    assert busiest["utilisation"] == round(held / 28232, 4) and ports["crowded"] == busiest
    assert ports["reuse"]["judged"] is (settings.get("tcp_tw_reuse") is not None)


def test_busiest_is_by_ports_held_crowded_by_sockets():
    """Many reusable TIME_WAIT sockets towards one destination, fewer sockets but all held towards another."""
    tally = R.Tally((32768, 60999), S.ALL_STATES, REUSE_ON)
    tally.add(S.AF_INET, [(S.TIME_WAIT, 41000 + n, 80, ME4, DB4, 0, 0, 0, 0, 1000) for n in range(50)])
    tally.add(S.AF_INET, [(S.ESTABLISHED, 45000 + n, 3306, ME4, DB4, 0, 0, 0, 500 + n, 0) for n in range(20)])
    ports = tally.report()["ephemeral_ports"]
    assert (ports["busiest"]["port"], ports["busiest"]["in_use"]) == (3306, 20)
    assert (ports["crowded"]["port"], ports["crowded"]["sockets"], ports["crowded"]["in_use"]) == (80, 50, 0)


def tw_message(family, sport, dport, src, dst, expires):
    data = DIAG.pack(96, 18, 2, 1, 0) + BODY.pack(family, S.TIME_WAIT, 3, 0, sport, dport, src, dst)
    data += TAIL.pack(0, expires, 0, 0, 0, 0)
    return data + b"\0" * (96 - len(data))


@pytest.mark.parametrize("seed", range(3))
def test_young_time_wait_same_from_blocks_and_records(seed):
    """Netlink (idiag_expires read from the message column) and /proc (tm->when in the record) judge the same ages."""
    rng = random.Random(seed)
    rows = [(S.AF_INET, rng.choice((rng.randint(32768, 60999), 443)), rng.choice((3306, 5432)), ME4,
             rng.choice((DB4, LO4)), rng.randint(0, 60000)) for _n in range(rng.randint(50, 600))]
    listen = [(S.LISTEN, 443, 0, ME4, b"\0" * 16, 0, 128, 0, 1)]
    settings = dict(REUSE_ON, tcp_tw_reuse=2)
    blocks, records = R.Tally((32768, 60999), S.ALL_STATES, settings), R.Tally((32768, 60999), S.ALL_STATES, settings)
    for tally in (blocks, records):
        tally.add_listeners(S.AF_INET, listen)
    data = b"".join(tw_message(*row) for row in rows)
    blocks.block(bytearray(data), len(data), 96)
    records.counts[S.TIME_WAIT] += len(rows)
    records.add(S.AF_INET, [(S.TIME_WAIT, sport, dport, src, dst, 0, 0, 0, 0, expires)
                            for _f, sport, dport, src, dst, expires in rows])
    assert blocks.report() == records.report()
    young = sum(1 for _f, sport, _d, _s, dst, expires in rows if sport != 443 and expires > 59000)
    assert sum(sum(counter.values()) for counter in blocks.tw_young) == young


def test_time_wait_sides():
    """Server side: the local port is a listening port; client side: any other."""
    tally = R.Tally((32768, 60999), S.ALL_STATES)
    client = b"\x0a\0\0\x07" + b"\0" * 12
    tally.add_listeners(S.AF_INET, [(S.LISTEN, 80, 0, ME4, b"\0" * 16, 0, 511, 0, 11)])
    tally.add(S.AF_INET, [(S.TIME_WAIT, 80, 40000 + n, ME4, client, 0, 0, 0, 0, 0) for n in range(4)])
    tally.add(S.AF_INET, [(S.TIME_WAIT, 50000 + n, 3306, ME4, DB4, 0, 0, 0, 0, 0) for n in range(3)])
    tally.counts[S.TIME_WAIT] += 7
    tw = tally.report()["time_wait"]
    assert tw["server_side"] == {"total": 4, "by_local_port": [{"address": "10.0.0.1", "port": 80, "count": 4}],
                                 "by_client": [{"address": "10.0.0.7", "count": 4}]}
    assert tw["client_side"] == {"total": 3, "by_remote": [{"address": "10.0.0.5", "port": 3306, "count": 3}]}
    counted_only = R.Tally((32768, 60999), S.states_mask([S.CLOSE_WAIT]))
    counted_only.counts[S.TIME_WAIT] = 5
    assert counted_only.report()["time_wait"]["server_side"] is None  # not read: the sides are unknown


@pytest.mark.parametrize("backlog, settings, expected", [
    (16, {"somaxconn": 4096, "tcp_syncookies": 1, "tcp_max_syn_backlog": 2048}, (17, "backlog")),
    (16, {"somaxconn": 4096, "tcp_syncookies": 0, "tcp_max_syn_backlog": 2048}, (17, "backlog")),
    (4096, {"somaxconn": 4096, "tcp_syncookies": 1, "tcp_max_syn_backlog": 16}, (4097, "somaxconn")),
    # Cookies off: past max - max/4 a peer not proven alive is refused (tcp_conn_request()).
    (128, {"somaxconn": 4096, "tcp_syncookies": 0, "tcp_max_syn_backlog": 16}, (13, "tcp_max_syn_backlog")),
    (None, {}, (None, None)),
])
def test_syn_limit(backlog, settings, expected):
    found = R._syn_limit(backlog, settings)
    assert (found["syn_limit"], found["syn_bound"]) == expected


def test_close_wait_adds_up_per_program(tmp_path):
    """Workers of one executable in one cgroup are one program; a process of the same name elsewhere is another."""
    root = str(tmp_path)
    procs = {11: ("/usr/sbin/php-fpm8.2", "/system.slice/php-fpm.service"),
             12: ("/usr/sbin/php-fpm8.2", "/system.slice/php-fpm.service"),
             13: ("/opt/other/php-fpm8.2", "/system.slice/other.service")}
    for pid, (exe, cgroup) in procs.items():
        os.makedirs(os.path.join(root, "proc", str(pid)))
        os.symlink(exe, os.path.join(root, "proc", str(pid), "exe"))
        with open(os.path.join(root, "proc", str(pid), "cgroup"), "w") as handle:
            handle.write("0::%s\n" % cgroup)
    tally = R.Tally((32768, 60999), S.ALL_STATES)
    rows = [(S.CLOSE_WAIT, 40000 + n, 9200, ME4, DB4, 0, 0, 0, 100 + n, 0) for n in range(15)]
    tally.add(S.AF_INET, rows)
    owners = {100 + n: [{"pid": (11, 12, 13)[n % 3], "name": "php-fpm8.2", "user": "www-data"}] for n in range(15)}
    cw = tally.report(owners=owners, root=root)["close_wait"]
    assert [(p["pid"], p["count"]) for p in cw["by_process"]] == [(11, 5), (12, 5), (13, 5)]
    first, second = cw["by_program"]
    assert (first["exe"], first["cgroup"], first["count"], first["pids"], first["processes"]) == (
        "/usr/sbin/php-fpm8.2", "/system.slice/php-fpm.service", 10, [11, 12], 2)
    assert (second["exe"], second["count"], second["pids"]) == ("/opt/other/php-fpm8.2", 5, [13])
    assert first["remotes"] == [{"address": "10.0.0.5", "port": 9200, "local_port": None, "count": 10}]


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
    values = R._sysctl_values(root, keys, K.read_socket_sysctls(root), K.read_port_range(root))
    assert values == K.read_sysctls(root, keys) and "net.ipv4.tcp_max_tw_buckets" not in values
