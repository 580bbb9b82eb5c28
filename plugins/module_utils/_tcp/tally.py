# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fold the socket table into running aggregates (``Tally``), whichever backend reads it.

Netlink hands whole datagrams of uniform sock_diag messages (``Tally.block``), folded with extended slices of the
buffer at the offsets of ``wire.py``; /proc hands ``socket_records.Socket`` batches (``Tally.add``). Both give the same
aggregates, which ``report.document()`` turns into the facts document.

A local port in the ephemeral range is held towards (src, dst, dport) by every socket using it except a
TIME_WAIT socket the kernel would hand to a new connect() (tcp_twsk_unique() in net/ipv4/tcp_ipv4.c): here each
TIME_WAIT socket younger than tcp_tw_reuse_delay is counted apart (``tw_young``), from the time left on its timer;
report.py decides from the settings which of the others are reusable.
"""

import array
import collections
import itertools
import operator
import sys

from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp import wire
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp.socket_records import (
    IPV4_SLOT,
    DPORT_FIELD,
    DST_FIELD,
    SPORT_FIELD,
    SRC_FIELD,
    STATE_FIELD,
    TIMER_FIELD,
    CloseWait,
    count_cell,
    new_counts,
)
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp.sockets import (
    AF_INET,
    AF_INET6,
    ALL_STATES,
    CLOSE_WAIT,
    FAMILY_SLOT,
    LISTEN,
    TIME_WAIT,
    TIMEWAIT_MS,
)

# Record fields read in the loops over a batch of records (C-level itemgetters, as fast as on plain tuples).
_SPORT = operator.itemgetter(SPORT_FIELD)
_STATE = operator.itemgetter(STATE_FIELD)
_DPORT = operator.itemgetter(DPORT_FIELD)
_SRC = operator.itemgetter(SRC_FIELD)
_DST_ADDRESS = operator.itemgetter(DST_FIELD)
_FIRST = operator.itemgetter(0)
_DST = operator.itemgetter(wire.KEY_DST)  # dst out of an aggregation key
_LITTLE = sys.byteorder == "little"
# A record from a tuple without the Python-level __new__ of a NamedTuple (several times dearer): one per socket.
_new = tuple.__new__
INBOUND, EPHEMERAL, FIXED = 0, 1, 2
# Where the dst bytes that mark an IPv4-mapped peer (::ffff:a.b.c.d: bytes 0-9 zero, 10-11 0xff) lie in a message.
_MAPPED_ZERO = range(wire.DST_OFFSET, wire.DST_OFFSET + 10)
_MAPPED_FF = (wire.DST_OFFSET + 10, wire.DST_OFFSET + 11)


def _keys(view, stride):
    """Iterator over the aggregation key of each message of a block (wire.key_struct)."""
    return map(_FIRST, wire.key_struct(stride).iter_unpack(view))


def _record_keys(records):
    """The aggregation key of each record, as its message would carry it."""
    return list(map(wire.make_key, map(_DPORT, records), map(_SRC, records), map(_DST_ADDRESS, records)))


def _mapped_lanes(data, size, stride):
    """One byte per message, 1 where the peer is IPv4-mapped (dst ``::ffff:a.b.c.d``), b"" if none is.

    Each of the first 12 dst bytes is gathered for all messages by one extended slice; these columns, read as
    big integers, are combined lane by lane (one lane, one byte, per message): dst bytes 0-9 zero and bytes
    10-11 0xff. IPv4 messages never match (their dst bytes 4-15 are zero).
    """
    high = data[_MAPPED_FF[0]:size:stride]
    if 255 not in high:
        return b""
    count = len(high)
    zero = 0
    for offset in _MAPPED_ZERO:
        zero |= int.from_bytes(data[offset:size:stride], "little")
    lanes = (int.from_bytes(zero.to_bytes(count, "little").translate(_ZERO_LANES), "little")
             & int.from_bytes(high.translate(_one(255)), "little")
             & int.from_bytes(data[_MAPPED_FF[1]:size:stride].translate(_one(255)), "little"))
    return lanes.to_bytes(count, "little")


_ZERO_LANES = bytes([1] + [0] * 255)  # translate: 0 -> 1, anything else -> 0
_ONES = {}


def _one(value):
    """bytes.translate table: ``value`` -> 1, any other byte -> 0."""
    table = _ONES.get(value)
    if table is None:
        table = _ONES[value] = bytes(256)[:value] + b"\1" + bytes(255 - value)
    return table


def _both(first, second):
    """Lane-wise AND of two 0/1 selectors of the same length."""
    return (int.from_bytes(first, "little") & int.from_bytes(second, "little")).to_bytes(len(first), "little")


def _column_u16(column):
    """Host ints from a strided memoryview of big-endian u16 fields (ports)."""
    values = array.array("H", column.tobytes())
    if _LITTLE:
        values.byteswap()
    return values.tolist()


class Tally:
    """Running aggregates over the socket table, fed by uniform blocks of sock_diag messages (``block``) or by
    record batches from /proc (``add``); both give the same aggregates.

    Per family slot and state, sockets are counted by key, with no object per socket kept: outbound sockets
    by their key, the wire.KEY_LEN bytes of dport, src and dst (``ephemeral`` when the local port lies in the ephemeral range,
    ``fixed`` otherwise), inbound sockets by dst (their remote port is a client's ephemeral port). Local
    ports are counted per state. The per-socket work is C-level: extended slices and casts of the received
    buffer, struct.iter_unpack, map, itertools.compress and collections.Counter. Only CLOSE_WAIT sockets
    (few, and whose owners are wanted) are read one by one.
    """

    def __init__(self, port_range=None, detail=ALL_STATES, settings=None):
        self.counts = new_counts()  # see socket_records.count_cell
        # Per-namespace sysctls (counters.read_socket_sysctls); without them every TIME_WAIT port counts as held.
        self.settings = dict(settings or {})
        delay = self.settings.get("tcp_tw_reuse_delay") or 1000
        # A TIME_WAIT socket whose timer has more than this left (ms) entered TIME_WAIT less than the reuse delay
        # ago: tcp_twsk_unique() refuses to reuse it yet. None when no setting was read.
        self.young_after = TIMEWAIT_MS - delay if self.settings.get("tcp_tw_reuse") is not None else None
        self.tw_young = (collections.Counter(), collections.Counter())  # [slot]: ephemeral TIME_WAIT keys, young
        self.detail = detail
        self.listen_ports = {AF_INET: set(), AF_INET6: set()}
        self.listeners = []
        self.lports = tuple(collections.Counter() for _state in range(12))  # state -> {sport: n}
        # [slot][state] -> Counter
        self.ephemeral = tuple(tuple(collections.Counter() for _state in range(12)) for _slot in range(2))
        self.fixed = tuple(tuple(collections.Counter() for _state in range(12)) for _slot in range(2))
        self.inbound = tuple(tuple(collections.Counter() for _state in range(12)) for _slot in range(2))
        self.close_wait = []  # CloseWait records
        self.port_range = port_range
        self._classes = {}  # family -> 65536-byte table: INBOUND, EPHEMERAL or FIXED per local port

    def add_listeners(self, family, records):
        ports = self.listen_ports[family]
        slot = FAMILY_SLOT[family]
        self._classes.pop(family, None)
        for rec in records:
            ports.add(rec.sport)
            self.lports[LISTEN][rec.sport] += 1
            self.listeners.append((slot, rec))

    def _class_table(self, family):
        """Each socket with a listening local port is inbound (it uses no ephemeral port); any other holds
        one local port towards (src, dst, dport), the pool that runs dry in port exhaustion
        (__inet_hash_connect() in net/ipv4/inet_hashtables.c) when it lies in the ephemeral range."""
        table = self._classes.get(family)
        if table is None:
            table = bytearray([FIXED]) * 65536
            if self.port_range:
                lo, hi = self.port_range
                if 0 <= lo <= hi <= 65535:
                    table[lo:hi + 1] = bytes([EPHEMERAL]) * (hi - lo + 1)
            for port in self.listen_ports[family]:
                table[port] = INBOUND
            table = self._classes[family] = bytes(table)
        return table

    def block(self, data, size, stride):
        """Fold ``size // stride`` sock_diag messages of ``stride`` bytes each (non-LISTEN, any family).

        Messages are selected by family, state and class with byte columns (one extended slice each)
        turned into 0/1 selectors by bytes.translate, and combined as big integers, all in C.
        """
        families = data[wire.FAMILY_OFFSET:size:stride]
        states = data[wire.STATE_OFFSET:size:stride]
        count = len(families)
        one_family = families.count(families[0]) == count
        one_state = states.count(states[0]) == count
        view = memoryview(data)[:size]
        try:
            keys = sports = mapped = None
            for family in (families[0],) if one_family else set(families):
                slot = FAMILY_SLOT.get(family)
                if slot is None:
                    continue  # a family this code does not know: never guess
                for state in (states[0],) if one_state else set(states):
                    if not 0 < state < 12:
                        continue  # a state this code does not know (a newer kernel): never guess
                    if one_family and one_state:
                        select = None
                        num = count
                    else:
                        select = (states.translate(_one(state)) if one_family else
                                  families.translate(_one(family)) if one_state else
                                  _both(families.translate(_one(family)), states.translate(_one(state))))
                        num = select.count(1)
                        if not num:
                            continue
                    if slot:
                        if mapped is None:
                            mapped = _mapped_lanes(data, size, stride)
                        if mapped:
                            # IPv4-mapped peers (::ffff:a.b.c.d) count as IPv4.
                            four = (_both(mapped, select) if select else mapped).count(1)
                            self.counts[count_cell(IPV4_SLOT, state)] += four
                            num -= four
                    self.counts[count_cell(slot, state)] += num
                    if not self.detail & (1 << state):
                        continue
                    if sports is None:
                        words = view.cast("H")
                        sports = _column_u16(words[wire.SPORT_OFFSET >> 1::stride >> 1])
                        words.release()
                    if select is None:
                        self._fold(family, state, sports, _keys(view, stride))
                    else:
                        if keys is None:
                            keys = list(_keys(view, stride))
                        self._fold(family, state, list(itertools.compress(sports, select)), itertools.compress(keys, select))
                    if state == CLOSE_WAIT:
                        self._close_wait_rows(family, data, count, stride, select)
                    elif state == TIME_WAIT and self.young_after is not None:
                        if keys is None:
                            keys = list(_keys(view, stride))
                        self._young_block(family, view, stride, select, sports, keys)
        finally:
            view.release()

    def _young_block(self, family, view, stride, select, sports, keys):
        """Count the TIME_WAIT messages of a block (``select``: 0/1 per message, None for all) still younger than
        the reuse delay, from the time left on their timers (idiag_expires)."""
        words = view.cast("I")
        try:
            expires = words[wire.EXPIRES_OFFSET >> 2::stride >> 2].tolist()
        finally:
            words.release()
        young = bytes(map(self.young_after.__lt__, expires))
        if select is not None:
            young = _both(young, select)
        if young.count(1):
            self._fold_young(family, list(itertools.compress(sports, young)), list(itertools.compress(keys, young)))

    def _fold_young(self, family, sports, keys):
        """Count young TIME_WAIT sockets by key, those holding an ephemeral port only."""
        slot = FAMILY_SLOT[family]
        kind = self._uniform_class(family, sports)
        if kind is not None:
            if kind == EPHEMERAL:
                self.tw_young[slot].update(keys)
            return
        classes = bytes(map(self._class_table(family).__getitem__, sports))
        self.tw_young[slot].update(itertools.compress(keys, classes.translate(_one(EPHEMERAL))))

    def add(self, family, batch):
        """Fold one batch of non-LISTEN records of ``family`` (tuples in Socket's field order, counted already by the
        backend)."""
        seen = set(map(_STATE, batch))
        field = STATE_FIELD
        for state in seen:
            part = batch if len(seen) == 1 else [rec for rec in batch if rec[field] == state]
            self._fold(family, state, list(map(_SPORT, part)), _record_keys(part))
            if state == TIME_WAIT and self.young_after is not None:
                after = self.young_after
                young = [rec for rec in part if rec[TIMER_FIELD] is not None and rec[TIMER_FIELD] > after]
                if young:
                    self._fold_young(family, list(map(_SPORT, young)), _record_keys(young))
            if state == CLOSE_WAIT:
                listen = self.listen_ports[family]
                slot = FAMILY_SLOT[family]
                append = self.close_wait.append
                for _state, sport, dport, _src, dst, _rqueue, _wqueue, uid, inode, _timer in part:
                    inbound = sport in listen
                    append(_new(CloseWait, (inode, uid, slot, dst, None if inbound else dport, sport if inbound else None)))

    def _fold(self, family, state, sports, keys):
        """Count sockets of one family and state by local port and by key (see the class docstring)."""
        slot = FAMILY_SLOT[family]
        self.lports[state].update(sports)
        if not sports:
            return
        kind = self._uniform_class(family, sports)
        if kind is not None:
            self._by_class(slot, state, kind, keys)
            return
        classes = bytes(map(self._class_table(family).__getitem__, sports))
        keys = list(keys)
        for kind in (INBOUND, EPHEMERAL, FIXED):
            if classes.count(kind):
                self._by_class(slot, state, kind, itertools.compress(keys, classes.translate(_one(kind))))

    def _by_class(self, slot, state, kind, keys):
        if kind == INBOUND:
            self.inbound[slot][state].update(map(_DST, keys))
        elif kind == EPHEMERAL:
            self.ephemeral[slot][state].update(keys)
        else:
            self.fixed[slot][state].update(keys)

    def _uniform_class(self, family, sports):
        """The class all these local ports share, found from their min and max; None when they differ."""
        low, high = min(sports), max(sports)
        listen = self.listen_ports[family]
        if any(low <= port <= high for port in listen):
            return INBOUND if low == high else None
        if self.port_range and self.port_range[0] <= low and high <= self.port_range[1]:
            return EPHEMERAL
        if not self.port_range or high < self.port_range[0] or low > self.port_range[1]:
            return FIXED
        return None

    def _close_wait_rows(self, family, data, count, stride, select):
        """One row per CLOSE_WAIT message of the block's ``count`` messages (``select``: 0/1 per message, None for all).

        ``data`` may be a receive buffer longer than the block: only the first ``count`` messages are the dump's.
        """
        listen = self.listen_ports[family]
        slot = FAMILY_SLOT[family]
        index = 0
        while index < count:
            if select is not None:
                index = select.find(1, index)
                if index < 0:
                    return
            off = index * stride
            sport, dport = wire.PORTS.unpack_from(data, off + wire.SPORT_OFFSET)
            uid, inode = wire.OWNER.unpack_from(data, off + wire.UID_OFFSET)
            inbound = sport in listen
            dst = bytes(data[off + wire.DST_OFFSET:off + wire.DST_OFFSET + wire.ADDRESS_LEN])
            self.close_wait.append(_new(CloseWait, (inode, uid, slot, dst, None if inbound else dport, sport if inbound else None)))
            index += 1

    # ----- report -----------------------------------------------------------------------------------
