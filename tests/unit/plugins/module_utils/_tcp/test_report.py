"""The facts document built from a tally: rankings, sides, owners per program, ephemeral port pools."""
import os
import random

import pytest
from ansible_collections.linuxnet.tcp.tests.unit.plugins.module_utils.tcp_fixtures import DB4, LO4, ME4, REUSE_ON, record

from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp import report as R
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp import sockets as S
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp import tally as T
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp.socket_records import IPV4_SLOT, count_cell


def test_inbound_time_wait_groups_remote_ports():
    tally = T.Tally((32768, 60999))
    ip = b"\x0a\0\0\x05" + b"\0" * 12
    me = b"\x0a\0\0\x01" + b"\0" * 12
    tally.add_listeners(S.AF_INET, [record(S.LISTEN, 443, 0, me, b"\0" * 16, 0, 128, 0, 11)])
    tally.add(S.AF_INET, [record(S.TIME_WAIT, 443, 40000 + i, me, ip, 0, 0, 0, 0) for i in range(3)])
    tally.add(S.AF_INET, [record(S.TIME_WAIT, 50000 + i, 3306, me, ip, 0, 0, 0, 0) for i in range(2)])
    facts = R.document(tally, top=10)
    assert facts["time_wait"]["by_remote"] == [{"address": "10.0.0.5", "port": None, "count": 3},
                                               {"address": "10.0.0.5", "port": 3306, "count": 2}]
    assert facts["time_wait"]["by_local_port"][0] == {"port": 443, "count": 3}
    # Inbound sockets use no ephemeral port: only the two outbound ones count.
    assert facts["ephemeral_ports"]["busiest"]["in_use"] == 2


def test_no_port_range():
    facts = R.document(T.Tally(None))
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
    tally = T.Tally((32768, 60999))
    me = b"\x0a\0\0\x01" + b"\0" * 12
    peer = b"\x0a\0\0\x07" + b"\0" * 12
    tally.add_listeners(S.AF_INET, [record(S.LISTEN, 8443, 0, me, b"\0" * 16, 0, 128, 0, 11)])
    # Two inbound sockets from different client ports, one outbound towards 10.0.0.7:9200.
    tally.add(S.AF_INET, [record(S.CLOSE_WAIT, 8443, 41000, me, peer, 0, 0, 0, 21), record(S.CLOSE_WAIT, 8443, 41001, me, peer, 0, 0, 0, 22),
                          record(S.CLOSE_WAIT, 50000, 9200, me, peer, 0, 0, 0, 23)])
    holder = [{"pid": 5, "name": "app", "user": "app"}]
    owners = {21: holder, 22: holder, 23: holder}
    remotes = [{"address": "10.0.0.7", "port": None, "local_port": 8443, "count": 2},
               {"address": "10.0.0.7", "port": 9200, "local_port": None, "count": 1}]
    assert R.document(tally, owners=owners)["close_wait"]["by_process"][0]["remotes"] == remotes
    assert R.document(tally, owners=owners, summary=True)["close_wait"]["by_process"][0]["remotes"] == remotes[:1]


def test_top_counts_orders_like_top():
    """_top_counts (C-level, for port tables) ranks exactly as _top: count first, ties in port order."""
    rng = random.Random(7)
    for _trial in range(200):
        table = {rng.randint(0, 3000): rng.randint(1, 4) for _n in range(rng.randint(0, 400))}
        cap = rng.randint(0, 12)
        assert R._top_counts(table, cap) == R._top(table, cap)


def pool_tally(settings, dst=DB4, src=ME4):
    """Towards dst:3306: 2 connections open, 5 TIME_WAIT sockets 0.5 s old (59500 ms left), 5 30 s old."""
    tally = T.Tally((32768, 60999), S.ALL_STATES, settings)
    tally.add(S.AF_INET, [record(S.ESTABLISHED, 40000 + n, 3306, src, dst, 0, 0, 0, 90 + n, 0) for n in range(2)])
    tally.add(S.AF_INET, [record(S.TIME_WAIT, 41000 + n, 3306, src, dst, 0, 0, 0, 0, 59500 if n < 5 else 30000)
                          for n in range(10)])
    return R.document(tally)["ephemeral_ports"]


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
    tally = T.Tally((32768, 60999), S.ALL_STATES, REUSE_ON)
    tally.add(S.AF_INET, [record(S.TIME_WAIT, 41000 + n, 80, ME4, DB4, 0, 0, 0, 0, 1000) for n in range(50)])
    tally.add(S.AF_INET, [record(S.ESTABLISHED, 45000 + n, 3306, ME4, DB4, 0, 0, 0, 500 + n, 0) for n in range(20)])
    ports = R.document(tally)["ephemeral_ports"]
    assert (ports["busiest"]["port"], ports["busiest"]["in_use"]) == (3306, 20)
    assert (ports["crowded"]["port"], ports["crowded"]["sockets"], ports["crowded"]["in_use"]) == (80, 50, 0)


def test_time_wait_sides():
    """Server side: the local port is a listening port; client side: any other."""
    tally = T.Tally((32768, 60999), S.ALL_STATES)
    client = b"\x0a\0\0\x07" + b"\0" * 12
    tally.add_listeners(S.AF_INET, [record(S.LISTEN, 80, 0, ME4, b"\0" * 16, 0, 511, 0, 11)])
    tally.add(S.AF_INET, [record(S.TIME_WAIT, 80, 40000 + n, ME4, client, 0, 0, 0, 0, 0) for n in range(4)])
    tally.add(S.AF_INET, [record(S.TIME_WAIT, 50000 + n, 3306, ME4, DB4, 0, 0, 0, 0, 0) for n in range(3)])
    tally.counts[count_cell(IPV4_SLOT, S.TIME_WAIT)] += 7
    tw = R.document(tally)["time_wait"]
    assert tw["server_side"] == {"total": 4, "by_local_port": [{"address": "10.0.0.1", "port": 80, "count": 4}],
                                 "by_client": [{"address": "10.0.0.7", "count": 4}]}
    assert tw["client_side"] == {"total": 3, "by_remote": [{"address": "10.0.0.5", "port": 3306, "count": 3}]}
    counted_only = T.Tally((32768, 60999), S.states_mask([S.CLOSE_WAIT]))
    counted_only.counts[count_cell(IPV4_SLOT, S.TIME_WAIT)] = 5
    assert R.document(counted_only)["time_wait"]["server_side"] is None  # not read: the sides are unknown


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
    tally = T.Tally((32768, 60999), S.ALL_STATES)
    rows = [record(S.CLOSE_WAIT, 40000 + n, 9200, ME4, DB4, 0, 0, 0, 100 + n, 0) for n in range(15)]
    tally.add(S.AF_INET, rows)
    owners = {100 + n: [{"pid": (11, 12, 13)[n % 3], "name": "php-fpm8.2", "user": "www-data"}] for n in range(15)}
    cw = R.document(tally, owners=owners, root=root)["close_wait"]
    assert [(p["pid"], p["count"]) for p in cw["by_process"]] == [(11, 5), (12, 5), (13, 5)]
    first, second = cw["by_program"]
    assert (first["exe"], first["cgroup"], first["count"], first["pids"], first["processes"]) == (
        "/usr/sbin/php-fpm8.2", "/system.slice/php-fpm.service", 10, [11, 12], 2)
    assert (second["exe"], second["count"], second["pids"]) == ("/opt/other/php-fpm8.2", 5, [13])
    assert first["remotes"] == [{"address": "10.0.0.5", "port": 9200, "local_port": None, "count": 10}]
