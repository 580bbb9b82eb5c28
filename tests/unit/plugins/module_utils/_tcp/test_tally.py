"""The tally: netlink blocks (folded in place from the wire layout) and /proc records give the same aggregates."""
import random
import struct

import pytest
from ansible_collections.linuxnet.tcp.tests.unit.plugins.module_utils.tcp_fixtures import DB4, LO4, ME4, REUSE_ON, record

from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp import report as R
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp import sockets as S
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp import tally as T
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp.socket_records import IPV4_SLOT, count_cell

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
    listen = {S.AF_INET: [record(S.LISTEN, 443, 0, me4, b"\0" * 16, 0, 128, 0, 1)],
              S.AF_INET6: [record(S.LISTEN, 8080, 0, me6, b"\0" * 16, 0, 128, 0, 2)]}
    detail = S.ALL_STATES if seed % 3 else S.states_mask([S.TIME_WAIT, S.CLOSE_WAIT])
    owners = {row[6]: [{"pid": row[6] % 3, "name": "p", "user": "u"}] for row in rows if row[6]}
    blocks = T.Tally((32768, 60999), detail)
    records = T.Tally((32768, 60999), detail)
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
        records.counts[count_cell(slot, state)] += 1
        if detail & (1 << state):
            records.add(family, [record(state, sport, dport, src, dst, 0, 0, 0, inode)])
    for summary in (False, True):
        assert R.document(blocks, top=7, owners=owners, summary=summary) == R.document(records, top=7, owners=owners, summary=summary)
    assert blocks.counts == records.counts and sum(blocks.counts) == len(rows)  # listeners: counted by backends


@pytest.mark.parametrize("states", [(S.CLOSE_WAIT,), (S.CLOSE_WAIT, S.ESTABLISHED)])
def test_nothing_past_the_block_is_read(states):
    """A netlink receive buffer is reused: past ``size`` it holds an older datagram's messages. A block of CLOSE_WAIT
    sockets only (one family, one state) once read the whole buffer and counted those as unowned CLOSE_WAIT."""
    src, dst = b"\x7f\0\0\x01" + b"\0" * 12, b"\x7f\0\0\x01" + b"\0" * 12
    rows = [(states[n % len(states)], S.AF_INET, 40000 + n, 5432, src, dst, 1000 + n) for n in range(25)]
    data = b"".join(message(*row) for row in rows)
    stale = b"".join(message(S.CLOSE_WAIT, S.AF_INET, 50000 + n, 5432, src, dst, 9000 + n) for n in range(25))
    tally = T.Tally((32768, 60999), S.ALL_STATES)
    tally.block(bytearray(data) + stale, len(data), 124)
    report = R.document(tally, owners={1000 + n: [{"pid": 7, "name": "app", "user": "u"}] for n in range(25)})
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
    assert T._mapped_lanes(data, len(data), stride) == b"\1\0"


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
    listen = [record(S.LISTEN, 443, 0, ME4, b"\0" * 16, 0, 128, 0, 1)]
    settings = dict(REUSE_ON, tcp_tw_reuse=2)
    blocks, records = T.Tally((32768, 60999), S.ALL_STATES, settings), T.Tally((32768, 60999), S.ALL_STATES, settings)
    for tally in (blocks, records):
        tally.add_listeners(S.AF_INET, listen)
    data = b"".join(tw_message(*row) for row in rows)
    blocks.block(bytearray(data), len(data), 96)
    records.counts[count_cell(IPV4_SLOT, S.TIME_WAIT)] += len(rows)
    records.add(S.AF_INET, [record(S.TIME_WAIT, sport, dport, src, dst, 0, 0, 0, 0, expires)
                            for _f, sport, dport, src, dst, expires in rows])
    assert R.document(blocks) == R.document(records)
    young = sum(1 for _f, sport, _d, _s, dst, expires in rows if sport != 443 and expires > 59000)
    assert sum(sum(counter.values()) for counter in blocks.tw_young) == young
