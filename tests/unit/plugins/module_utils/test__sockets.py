"""Socket-table readers on recorded netlink dumps and /proc text from a real namespace (see fixtures/tcp)."""
from __future__ import annotations

import errno
import os

import pytest
from tcp_fixtures import FakeNetlink, fake_proc, fixture_path, messages, read_datagrams, ss_counts

from ansible_collections.linuxnet.tcp.plugins.module_utils import _sockets as S

REST = S.ALL_STATES & ~S.LISTEN_BIT


def collect(backend, detail=S.ALL_STATES):
    counts = [0] * 32
    listeners, records = {}, {}
    for family in (S.AF_INET, S.AF_INET6):
        listeners[family] = backend.listeners(family, counts)
    for family in (S.AF_INET, S.AF_INET6):
        records[family] = [rec for batch in backend.scan(family, REST, detail, counts) for rec in batch]
    return counts, listeners, records


def named(counts):
    return {name: counts[num] + counts[16 + num] for num, name in enumerate(S.STATE_NAMES) if name and
            counts[num] + counts[16 + num]}


def test_netlink_counts_equal_ss():
    counts, _listeners, _records = collect(S.NetlinkBackend(opener=FakeNetlink()))
    assert named(counts) == ss_counts()


@pytest.mark.parametrize("tcp", ["proc-net-tcp.txt", "proc-net-tcp-wide.txt"])
def test_proc_counts_equal_ss(tmp_path, tcp):
    counts, _listeners, _records = collect(S.ProcBackend(fake_proc(str(tmp_path), tcp=tcp)))
    assert named(counts) == ss_counts()


def test_ipv4_mapped_peers_count_as_ipv4(tmp_path):
    # ss shows 6 sockets with [::ffff:127.0.0.1] peers: they are IPv4 peers of a dual-stack socket.
    with open(fixture_path("ss-tan.txt"), encoding="ascii") as handle:
        rows = [line.split() for line in handle if line.strip()]
    # ss prints a dual-stack IPv6 listener's wildcard peer as "*:*".
    v4 = sum(1 for row in rows if row[4][0] not in "[*" or row[4].startswith("[::ffff:"))
    for backend in (S.NetlinkBackend(opener=FakeNetlink()), S.ProcBackend(fake_proc(str(tmp_path)))):
        counts = collect(backend)[0]
        assert sum(counts[1:12]) == v4
        assert sum(counts[17:28]) == len(rows) - v4


def test_both_backends_give_the_same_records(tmp_path):
    _c1, nl_listen, nl_recs = collect(S.NetlinkBackend(opener=FakeNetlink()))
    _c2, proc_listen, proc_recs = collect(S.ProcBackend(fake_proc(str(tmp_path))))
    for family in (S.AF_INET, S.AF_INET6):
        assert sorted(nl_recs[family]) == sorted(proc_recs[family])
        # /proc has no listener backlog limit (tx_queue is 0 for listeners): only that field differs.
        strip = sorted(rec[:6] + rec[7:] for rec in nl_listen[family])
        assert strip == sorted(rec[:6] + rec[7:] for rec in proc_listen[family])
        assert all(rec[6] is None for rec in proc_listen[family])
    full = [rec for rec in nl_listen[S.AF_INET] if rec[1] == 8080]
    assert [(rec[5], rec[6]) for rec in full] == [(3, 2)]  # accept queue 3, backlog 2: ss "LISTEN 3 2"


def test_record_shape():
    _counts, listeners, records = collect(S.NetlinkBackend(opener=FakeNetlink()))
    v6only = [rec for rec in listeners[S.AF_INET6] if rec[1] == 7070][0]
    assert v6only[3] == b"\0" * 15 + b"\1"  # ::1
    tw = [rec for rec in records[S.AF_INET] if rec[0] == S.TIME_WAIT]
    assert len(tw) == 4
    for state, _sport, dport, src, dst, rqueue, wqueue, uid, inode in tw:
        assert (dport, src, dst, rqueue, wqueue, uid, inode) == (9090, b"\x7f\0\0\1" + b"\0" * 12,
                                                                 b"\x7f\0\0\1" + b"\0" * 12, 0, 0, 0, 0)
    cw = [rec for rec in records[S.AF_INET] if rec[0] == S.CLOSE_WAIT]
    assert len(cw) == 2 and all(rec[8] > 0 for rec in cw)


def test_kernel_filter_splits_the_mask():
    requests = []
    backend = S.NetlinkBackend(opener=FakeNetlink(requests=requests))
    counts, _listeners, records = collect(backend, detail=1 << S.TIME_WAIT)
    assert named(counts) == ss_counts()
    assert {rec[0] for fam in records for rec in records[fam]} == {S.TIME_WAIT}
    # Per family: a LISTEN-only dump, a counting dump of the full sockets, a counting dump of the other
    # minisocket states, a detail dump of TIME_WAIT only.
    full, mini = REST & ~S.MINISOCK_STATES, S.MINISOCK_STATES & ~(1 << S.TIME_WAIT)
    assert requests == [(2, S.LISTEN_BIT), (10, S.LISTEN_BIT), (2, full), (2, mini), (2, 1 << S.TIME_WAIT),
                        (10, full), (10, mini), (10, 1 << S.TIME_WAIT)]


def test_counts_only_sends_no_detail():
    requests = []
    counts, _listeners, records = collect(S.NetlinkBackend(opener=FakeNetlink(requests=requests)), detail=0)
    assert named(counts) == ss_counts()
    assert records == {S.AF_INET: [], S.AF_INET6: []}
    full, mini = REST & ~S.MINISOCK_STATES, S.MINISOCK_STATES
    assert requests[2:] == [(2, full), (2, mini), (10, full), (10, mini)]
    # Every state is asked for exactly once per family.
    assert full | mini == REST and not full & mini


def test_done_in_the_same_datagram_ends_the_dump():
    grams = read_datagrams("netlink-inet.bin")
    merged = b"".join(grams)  # the kernel may append NLMSG_DONE to the last batch
    backend = S.NetlinkBackend(opener=FakeNetlink(grams_override=[merged]))
    counts = [0] * 32
    recs = [r for b in backend.scan(S.AF_INET, REST, REST, counts) for r in b]
    assert len(recs) == sum(counts) > 0


@pytest.mark.parametrize("cut", [5, 40, 100])
def test_truncated_datagram_is_an_error(cut):
    gram = read_datagrams("netlink-inet.bin")[0]
    backend = S.NetlinkBackend(opener=FakeNetlink(grams_override=[gram[:-cut]]))
    with pytest.raises(S.CollectError, match="truncated"):  # the parsing loop
        list(backend.scan(S.AF_INET, REST, REST, [0] * 32))
    with pytest.raises(S.CollectError, match="truncated"):  # the counting loop
        list(backend.scan(S.AF_INET, REST, 0, [0] * 32))


@pytest.mark.parametrize("name, code", [("netlink-error-einval.bin", errno.EINVAL),
                                        ("netlink-error-enoent.bin", errno.ENOENT)])
def test_recorded_errors_mean_refused(name, code):
    backend = S.NetlinkBackend(opener=FakeNetlink(grams_override=read_datagrams(name)))
    with pytest.raises(S.NetlinkRefused, match="errno %d" % code):
        list(backend.scan(S.AF_INET, REST, REST, [0] * 32))


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


@pytest.mark.parametrize("mask", [1 << S.TIME_WAIT, 1 << S.ESTABLISHED, REST])
def test_fast_path_equals_general_loop(monkeypatch, mask):
    """Uniform datagrams (one message length) go through struct.iter_unpack; results must not change."""
    def run():
        counts = [0] * 32
        recs = []
        for family in (S.AF_INET, S.AF_INET6):
            recs += [r for b in S.NetlinkBackend(opener=FakeNetlink()).scan(family, REST, mask, counts) for r in b]
        return counts, sorted(recs)
    seen = []
    real = S._uniform_stride
    monkeypatch.setattr(S, "_uniform_stride", lambda buf, size: seen.append(real(buf, size)) or seen[-1])
    fast = run()
    monkeypatch.setattr(S, "_uniform_stride", lambda buf, size: 0)
    assert run() == fast
    if mask != REST:
        assert any(seen), "the filtered dumps hold one message length: the fast path must be taken"


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
