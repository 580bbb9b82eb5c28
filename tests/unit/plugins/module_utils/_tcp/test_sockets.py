"""Socket-table readers on recorded netlink dumps and /proc text from a real namespace (see fixtures/tcp)."""
import collections
import errno
import os
import struct
import threading

import pytest
from ansible_collections.linuxnet.tcp.tests.unit.plugins.module_utils.tcp_fixtures import (  # pylint: disable=wrong-import-order
    FakeNetlink, assert_audit_passes, fake_proc, messages, read_datagrams, run_bytecode, ss_counts)

from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp import sockets as S

REST = S.ALL_STATES & ~S.LISTEN_BIT
MSG = struct.Struct(">16xBBxxHH16s16s")  # family, state, sport, dport, src, dst
TAIL = struct.Struct("=72xIIII")  # rqueue, wqueue, uid, inode


class Blocks:
    """A dump sink keeping what it is given: blocks of one message length, decoded into records."""

    def __init__(self):
        self.strides = []
        self.records = {S.AF_INET: [], S.AF_INET6: []}

    def __call__(self, data, size, stride):
        assert size and size % stride == 0
        data = bytes(data[:size])
        self.strides.append(stride)
        for off in range(0, size, stride):
            assert struct.unpack_from("=I", data, off)[0] == stride
            family, state, sport, dport, src, dst = MSG.unpack_from(data, off)
            self.records[family].append((state, sport, dport, src, dst) + TAIL.unpack_from(data, off))


def collect(backend, detail=S.ALL_STATES):
    """Listeners and records of both families; counts from /proc (netlink leaves counting to its sink)."""
    counts = [0] * 32
    listeners = {}
    for family in (S.AF_INET, S.AF_INET6):
        listeners[family] = backend.listeners(family, counts)
    if isinstance(backend, S.NetlinkBackend):
        sink = Blocks()
        backend.dump([(REST, backend.parts)], sink)
        return counts, listeners, sink.records
    records = {}
    for family in (S.AF_INET, S.AF_INET6):
        records[family] = [rec for batch in backend.scan(family, REST, detail, counts) for rec in batch]
    return counts, listeners, records


def named(counts):
    return {name: counts[num] + counts[16 + num] for num, name in enumerate(S.STATE_NAMES) if name and
            counts[num] + counts[16 + num]}


def test_netlink_dump_holds_every_socket_once():
    _counts, listeners, records = collect(S.NetlinkBackend(opener=FakeNetlink()))
    seen = collections.Counter(S.STATE_NAMES[rec[0]] for fam in records for rec in records[fam])
    assert dict(seen, LISTEN=sum(len(v) for v in listeners.values())) == ss_counts()


@pytest.mark.parametrize("tcp", ["proc-net-tcp.txt", "proc-net-tcp-wide.txt"])
def test_proc_counts_equal_ss(tmp_path, tcp):
    counts, _listeners, _records = collect(S.ProcBackend(fake_proc(str(tmp_path), tcp=tcp)))
    assert named(counts) == ss_counts()


def test_both_backends_give_the_same_records(tmp_path):
    _c1, nl_listen, nl_recs = collect(S.NetlinkBackend(opener=FakeNetlink()))
    _c2, proc_listen, proc_recs = collect(S.ProcBackend(fake_proc(str(tmp_path))))
    for family in (S.AF_INET, S.AF_INET6):
        # /proc adds the time left on each socket's timer (tm->when) as a tenth field.
        assert sorted(nl_recs[family]) == sorted(rec[:9] for rec in proc_recs[family])
        # /proc has no listener backlog limit (tx_queue is 0 for listeners): only that field differs.
        strip = sorted(rec[:6] + rec[7:9] for rec in nl_listen[family])
        assert strip == sorted(rec[:6] + rec[7:9] for rec in proc_listen[family])
        assert all(rec[6] is None for rec in proc_listen[family])
    full = [rec for rec in nl_listen[S.AF_INET] if rec[1] == 8080]
    assert [(rec[5], rec[6]) for rec in full] == [(3, 2)]  # accept queue 3, backlog 2: ss "LISTEN 3 2"


def test_record_shape():
    _counts, listeners, records = collect(S.NetlinkBackend(opener=FakeNetlink()))
    v6only = [rec for rec in listeners[S.AF_INET6] if rec[1] == 7070][0]
    assert v6only[3] == b"\0" * 15 + b"\1"  # ::1
    tw = [rec for rec in records[S.AF_INET] if rec[0] == S.TIME_WAIT]
    assert len(tw) == 4
    for _state, _sport, dport, src, dst, rqueue, wqueue, uid, inode in tw:
        assert (dport, src, dst, rqueue, wqueue, uid, inode) == (9090, b"\x7f\0\0\1" + b"\0" * 12,
                                                                 b"\x7f\0\0\1" + b"\0" * 12, 0, 0, 0, 0)
    cw = [rec for rec in records[S.AF_INET] if rec[0] == S.CLOSE_WAIT]
    assert len(cw) == 2 and all(rec[8] > 0 for rec in cw)


@pytest.mark.parametrize("parts", [1, 2, 3])
@pytest.mark.parametrize("compat", [True, False])
def test_parts_and_groups_partition_the_table(parts, compat):
    """However the table is cut (higher-port ranges, state groups, one dump per family where the legacy
    request is refused), every socket is delivered exactly once."""
    requests = []
    backend = S.NetlinkBackend(opener=FakeNetlink(requests=requests, compat=compat), parts=parts)
    whole = Blocks()
    S.NetlinkBackend(opener=FakeNetlink(), parts=1).dump([(REST, 1)], whole)
    cut = Blocks()
    groups = [REST & ~S.MINISOCK_STATES, REST & S.MINISOCK_STATES]
    backend.dump([(mask, parts) for mask in groups], cut, (32768, 60999))
    for family in (S.AF_INET, S.AF_INET6):
        assert sorted(cut.records[family]) == sorted(whole.records[family]) != []
    # A probe first (legacy request, listeners only), then one request per group and part: legacy requests
    # cover both families, SOCK_DIAG_BY_FAMILY requests one family each.
    assert requests[0][:3] == (18, 0, S.LISTEN_BIT)
    families = [0] if compat else [2, 10]
    assert [req[:3] for req in requests[1:]] == [(18 if compat else 20, family, mask) for mask in groups
                                                 for family in families for _part in range(parts)]
    codes = [S.port_filter(*bounds)[4:] for bounds in S.port_parts((32768, 60999), parts)]
    assert [req[3] for req in requests[1:]] == codes * (len(requests[1:]) // parts)
    assert backend.compat is compat


def test_dump_threads_are_joined_and_sockets_closed():
    opener = FakeNetlink()
    before = threading.active_count()
    S.NetlinkBackend(opener=opener, parts=2).dump([(REST, 2)], Blocks())
    assert len(opener.opened) == 3 and all(sock.closed for sock in opener.opened)
    assert threading.active_count() == before


def test_no_more_threads_than_parts():
    """Three dumps with two parts allowed: two threads (the caller's and one more) share them."""
    seen = []
    before = threading.active_count()
    sink = Blocks()

    def counting(data, size, stride):
        seen.append(threading.active_count())
        sink(data, size, stride)
    groups = [REST & ~S.MINISOCK_STATES, REST & S.MINISOCK_STATES]
    S.NetlinkBackend(opener=FakeNetlink(), parts=2).dump([(groups[0], 2), (groups[1], 1)], counting, (32768, 60999))
    assert seen and max(seen) <= before + 1
    whole = Blocks()
    S.NetlinkBackend(opener=FakeNetlink(), parts=1).dump([(REST, 1)], whole)
    assert sorted(sink.records[S.AF_INET]) == sorted(whole.records[S.AF_INET])


def test_a_failing_part_fails_the_dump():
    gram = read_datagrams("netlink-inet.bin")[0]
    opener = FakeNetlink()
    backend = S.NetlinkBackend(opener=opener, parts=2)
    backend.compat = True
    before = threading.active_count()
    real = opener.replies
    calls = []

    def second_part_breaks(data):
        calls.append(data)
        return [gram[:-40]] if len(calls) == 2 else real(data)
    opener.replies = second_part_breaks
    with pytest.raises(S.CollectError, match="truncated"):
        backend.dump([(REST, backend.parts)], Blocks())
    assert len(calls) == 2 and all(sock.closed for sock in opener.opened)
    assert threading.active_count() == before


@pytest.mark.parametrize("above, upto", [(None, 33279), (33279, None), (40000, 50000), (65535, 0)])
def test_port_filter_keeps_a_range_of_the_higher_port(above, upto):
    code = S.port_filter(above, upto)[4:]
    assert_audit_passes(code)
    for sport in (0, 1, 80, 33279, 33280, 40000, 40001, 50000, 50001, 65535):
        for dport in (0, 9, 80, 33279, 33280, 40000, 50000, 50001, 65535):
            high = max(sport, dport)
            expected = (above is None or high > above) and (upto is None or high <= upto)
            assert run_bytecode(code, sport, dport) == expected, (sport, dport)
    assert S.port_filter() == b""


def test_port_parts_cover_every_port_once():
    for parts in (1, 2, 3):
        ranges = S.port_parts((1024, 65535), parts)
        assert len(ranges) == parts and ranges[0][0] is None and ranges[-1][1] is None
        for high in (0, 1024, 33279, 33280, 65535):
            assert sum((a is None or high > a) and (b is None or high <= b) for a, b in ranges) == 1
    assert S.port_parts((1024, 65535), 2) == [(None, 33279), (33279, None)]
    assert S.port_parts(None, 2) == [(None, 49151), (49151, None)]


def test_dump_plan():
    full, mini = REST & ~S.MINISOCK_STATES, REST & S.MINISOCK_STATES
    # ESTABLISHED-heavy: both kinds apart (uniform datagrams), full sockets cut in two ranges.
    assert S.dump_plan(REST, 214000, 16000, 2) == [(full, 2), (mini, 1)]
    # A TIME_WAIT storm: one walk, the few full sockets mixed in.
    assert S.dump_plan(REST, 80, 150000, 2) == [(REST, 1)]
    # Almost no minisockets: one dump, cut in two.
    assert S.dump_plan(REST, 1000, 1, 2) == [(REST, 2)]
    assert S.dump_plan(REST, 214000, 16000, 1) == [(full, 1), (mini, 1)]
    assert S.dump_plan(REST, 0, 0, 2) == [(REST, 1)]
    # Every walk visits the sockets of every namespace: where the host holds many more than this table (a
    # container's namespace next to others' TIME_WAIT storms), another walk costs more than it saves.
    assert S.dump_plan(REST, 40, 2000, 2) == [(full, 1), (mini, 1)]
    assert S.dump_plan(REST, 40, 2000, 2, walked=102000) == [(REST, 1)]
    assert S.dump_plan(REST, 1000, 1, 2, walked=102000) == [(REST, 1)]
    assert S.dump_plan(REST, 214000, 16000, 2, walked=231000) == [(full, 2), (mini, 1)]
    assert S.dump_plan(REST, 214000, 16000, 2, walked=100) == [(full, 2), (mini, 1)]  # never below the table


def test_mixed_datagrams_become_uniform_blocks(monkeypatch):
    """A datagram of mixed message lengths is regrouped by length; the records do not change."""
    def run():
        sink = Blocks()
        S.NetlinkBackend(opener=FakeNetlink(), parts=1).dump([(REST, 1)], sink)
        return sink
    fast = run()
    monkeypatch.setattr(S, "_uniform_stride", lambda buf, size, msgtype: 0)
    slow = run()
    assert slow.records == fast.records and set(slow.strides) == {96, 124}


def test_done_in_the_same_datagram_ends_the_dump():
    grams = read_datagrams("netlink-inet.bin")
    merged = b"".join(grams)  # the kernel may append NLMSG_DONE to the last batch
    backend = S.NetlinkBackend(opener=FakeNetlink(grams_override=[merged]), parts=1)
    backend.compat = False  # one dump per family, each replaying the merged datagram
    sink = Blocks()
    backend.dump([(REST, backend.parts)], sink)
    assert len(sink.records[S.AF_INET]) == 2 * sum(1 for gram in grams for kind, _m in messages(gram) if kind == 20) > 0


@pytest.mark.parametrize("cut", [5, 40, 100])
def test_truncated_datagram_is_an_error(cut):
    gram = read_datagrams("netlink-inet.bin")[0]
    backend = S.NetlinkBackend(opener=FakeNetlink(grams_override=[gram[:-cut]]), parts=1)
    backend.compat = True
    with pytest.raises(S.CollectError, match="truncated"):
        backend.dump([(REST, backend.parts)], Blocks())
    with pytest.raises(S.CollectError, match="truncated"):
        backend.listeners(S.AF_INET, [0] * 32)


@pytest.mark.parametrize("name, code", [("netlink-error-einval.bin", errno.EINVAL),
                                        ("netlink-error-enoent.bin", errno.ENOENT)])
def test_recorded_errors_mean_refused(name, code):
    backend = S.NetlinkBackend(opener=FakeNetlink(grams_override=read_datagrams(name)))
    backend.compat = False
    with pytest.raises(S.NetlinkRefused, match="errno %d" % code):
        backend.dump([(REST, backend.parts)], Blocks())
    # Refused at the probe, only the legacy request is given up.
    assert S.NetlinkBackend(opener=FakeNetlink(grams_override=read_datagrams(name)))._probe_compat() is False


def test_other_errors_are_not_refusals():
    gram = bytearray(read_datagrams("netlink-error-einval.bin")[0])
    gram[16:20] = (-errno.EBUSY).to_bytes(4, "little", signed=True)
    backend = S.NetlinkBackend(opener=FakeNetlink(grams_override=[bytes(gram)]))
    with pytest.raises(S.CollectError, match="errno %d" % errno.EBUSY) as info:
        backend.listeners(S.AF_INET, [0] * 32)
    assert not isinstance(info.value, S.NetlinkRefused)


def test_socket_refused():
    def refuse():
        raise OSError(errno.EPROTONOSUPPORT, "Protocol not supported")
    with pytest.raises(S.NetlinkRefused, match="refused"):
        S.NetlinkBackend(opener=refuse).listeners(S.AF_INET, [0] * 32)
    with pytest.raises(S.NetlinkRefused, match="refused"):
        S.NetlinkBackend(opener=refuse).dump([(REST, 1)], Blocks())


def test_proc_missing_tcp_names_the_file(tmp_path):
    backend = S.ProcBackend(fake_proc(str(tmp_path), tcp=None))
    with pytest.raises(S.CollectError, match=r"/proc/net/tcp: file not found"):
        backend.listeners(S.AF_INET, [0] * 32)


def test_proc_missing_tcp6_means_no_ipv6(tmp_path):
    counts, listeners, records = collect(S.ProcBackend(fake_proc(str(tmp_path), tcp6=None)))
    assert sum(counts[16:]) == 0 and listeners[S.AF_INET6] == [] and records[S.AF_INET6] == []


def test_proc_truncated_line(tmp_path):
    root = fake_proc(str(tmp_path))
    path = os.path.join(root, "proc", "net", "tcp")
    with open(path, "rb") as handle:
        data = handle.read()
    with open(path, "wb") as handle:
        handle.write(data[:-60])  # cut inside the last line, no newline
    with pytest.raises(S.CollectError, match="truncated"):
        collect(S.ProcBackend(root))


def test_proc_unknown_state_is_skipped(tmp_path):
    root = fake_proc(str(tmp_path))
    path = os.path.join(root, "proc", "net", "tcp")
    with open(path, "rb") as handle:
        lines = handle.read().split(b"\n")
    lines[5] = lines[5].replace(b" 01 ", b" 0D ", 1)  # a state this code does not know
    with open(path, "wb") as handle:
        handle.write(b"\n".join(lines))
    counts = collect(S.ProcBackend(root))[0]
    assert sum(named(counts).values()) == sum(ss_counts().values()) - 1


@pytest.mark.parametrize("states, mask", [([], 0), ([1], 2), ([6, 8], 0x140), (range(1, 12), S.ALL_STATES)])
def test_states_mask(states, mask):
    assert S.states_mask(states) == mask


def test_uniform_stride_rejects_mixed_datagrams():
    gram = read_datagrams("netlink-inet.bin")[0]  # TIME_WAIT (88/96 B) mixed with full sockets
    buf = bytearray(65536)
    buf[:len(gram)] = gram
    assert S._uniform_stride(buf, len(gram)) == 0
    tw = [m for t, m in messages(gram) if t == 20 and m[17] == S.TIME_WAIT]
    data = b"".join(tw)
    buf[:len(data)] = data
    assert S._uniform_stride(buf, len(data)) == len(tw[0])
    assert S._uniform_stride(buf, len(data) - 4) == 0


def test_an_error_in_the_sink_is_not_taken_for_the_end_of_the_dumps():
    """Only an empty queue of dumps ends a worker; an IndexError raised while parsing propagates."""
    def sink(data, size, stride):
        raise IndexError("parser bug")
    backend = S.NetlinkBackend(opener=FakeNetlink(), parts=2)
    with pytest.raises(IndexError, match="parser bug"):
        backend.dump([(REST, backend.parts)], sink)


def test_the_legacy_request_is_probed_once_per_process(monkeypatch):
    """namespaces=all builds a backend per namespace; only the first one probes the kernel."""
    opener = FakeNetlink()
    monkeypatch.setattr(S, "_open_netlink", opener)
    monkeypatch.setattr(S, "_COMPAT", {})
    first = S.NetlinkBackend(parts=1)
    assert first.compat is None
    first.dump([(REST, 1)], Blocks())
    opened = len(opener.opened)
    second = S.NetlinkBackend(parts=1)
    assert first.compat is not None and second.compat == first.compat
    second.dump([(REST, 1)], Blocks())
    assert len(opener.opened) - opened == opened - 1  # the same dumps, without the probe


def test_proc_records_carry_the_time_left_on_the_timer(tmp_path):
    """tm->when (clock ticks) becomes milliseconds in the tenth field: 0x174A ticks left on a TIME_WAIT timer."""
    _counts, _listeners, records = collect(S.ProcBackend(fake_proc(str(tmp_path))))
    tw = sorted(rec[9] for rec in records[S.AF_INET] if rec[0] == S.TIME_WAIT)
    tick_ms = 1000.0 / os.sysconf("SC_CLK_TCK")
    assert int(0x174A * tick_ms) in tw and all(0 < ms <= S.TIMEWAIT_MS for ms in tw)
