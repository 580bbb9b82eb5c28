"""Socket records and per-state counts: named access over plain sequences."""
import operator

from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp import socket_records as D
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp import sockets as S


def test_socket_fields_in_reader_order():
    rec = D.Socket(S.CLOSE_WAIT, 40000, 5432, b"s" * 16, b"d" * 16, 1, 2, 1000, 77, None)
    assert (rec.state, rec.sport, rec.dport, rec.uid, rec.inode, rec.timer_ms) == (S.CLOSE_WAIT, 40000, 5432, 1000, 77, None)
    assert tuple(rec)[:3] == (S.CLOSE_WAIT, 40000, 5432) and rec == tuple(rec)  # still a tuple underneath
    assert operator.itemgetter(D.STATE_FIELD, D.SPORT_FIELD)(rec) == (S.CLOSE_WAIT, 40000)
    assert operator.itemgetter(D.DPORT_FIELD, D.SRC_FIELD, D.DST_FIELD)(rec) == (5432, b"s" * 16, b"d" * 16)
    # What the tally does for CLOSE_WAIT rows: a record from a tuple, without the NamedTuple's Python-level __new__,
    # and exactly a Socket (not a subclass, not a plain tuple).
    made = tuple.__new__(D.Socket, tuple(rec))
    assert made == rec and type(made) is D.Socket  # pylint: disable=unidiomatic-typecheck


def test_counts():
    counts = D.new_counts()
    assert counts == [0] * 32 and D.count_cell(D.IPV6_SLOT, S.TIME_WAIT) == 16 + S.TIME_WAIT
    counts[D.count_cell(D.IPV4_SLOT, S.TIME_WAIT)] += 3
    counts[D.count_cell(D.IPV6_SLOT, S.TIME_WAIT)] += 1
    counts[D.count_cell(D.IPV6_SLOT, 0) + S.LISTEN] += 2  # as the readers count, from a family's base cell
    assert counts[D.count_cell(D.IPV6_SLOT, S.LISTEN)] == 2
    assert D.state_total(counts, S.TIME_WAIT) == 4 and D.state_total(counts, S.LISTEN) == 2
    assert (D.family_total(counts, D.IPV4_SLOT), D.family_total(counts, D.IPV6_SLOT)) == (3, 3)
    counts[D.count_cell(D.IPV4_SLOT, 12)] = 9  # a state this code does not know is never in a total
    assert D.family_total(counts, D.IPV4_SLOT) == 3


def test_close_wait_record():
    row = D.CloseWait(77, 1000, D.IPV4_SLOT, b"d" * 16, None, 8443)
    inode, uid, _slot, _dst, remote, local = row
    assert (inode, uid, remote, local) == (row.inode, row.uid, row.remote_port, row.local_port) == (77, 1000, None, 8443)
