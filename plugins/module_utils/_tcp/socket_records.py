# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The records of the socket table: ``Socket`` (one socket, its fields named), the per-state counts of every socket
(a list read through ``count_cell``), and the ``CloseWait`` rows the tally keeps for the owner lookup.

Records are tuples underneath, so the hot loops keep C-level access: a record unpacks and slices as a tuple, and
``operator.itemgetter(..._FIELD)`` reads one field of many. The /proc reader hands the rest of the table to the
tally as plain tuples in ``Socket``'s field order (a NamedTuple per socket costs more than a tenth of that parse);
every record read one by one (listeners, CLOSE_WAIT rows) is named.
"""

import typing

# Family slots of the counts: IPv4 (and IPv4-mapped IPv6 peers, which really are IPv4 hosts) and IPv6.
IPV4_SLOT, IPV6_SLOT = 0, 1


class Socket(typing.NamedTuple):
    """One socket as sock_diag or /proc/net/tcp{,6} tell it.

    ``state`` is the kernel number (1 ESTABLISHED .. 11 CLOSING), ports host-order ints, ``src`` and ``dst`` the
    16 raw address bytes as ``inet_diag_sockid`` carries them (IPv4 in the first four, the rest zero). ``wqueue``
    of a listener is its backlog limit (None from /proc, which does not show it). ``timer_ms`` is the time left on
    the socket's pending timer (/proc's ``tm->when``; None from netlink, whose messages the tally reads in place).
    """

    state: int
    sport: int
    dport: int
    src: bytes
    dst: bytes
    rqueue: int
    wqueue: typing.Optional[int]
    uid: int
    inode: int
    timer_ms: typing.Optional[int]


# Field positions, for operator.itemgetter in loops over many records.
STATE_FIELD = Socket._fields.index("state")
SPORT_FIELD = Socket._fields.index("sport")
TIMER_FIELD = Socket._fields.index("timer_ms")
DPORT_FIELD = Socket._fields.index("dport")
SRC_FIELD = Socket._fields.index("src")
DST_FIELD = Socket._fields.index("dst")


# Per-state counts of every socket: one plain list of ints (the readers count into it in their loops, where a list
# subclass or a method call per socket would cost), cell ``count_cell(slot, state)``.
COUNT_CELLS = 16  # cells per family slot: state numbers 1..11 fit, with room for newer kernels' states
KNOWN_STATES = range(1, 12)


def new_counts():
    return [0] * (2 * COUNT_CELLS)


def count_cell(slot, state):
    """Index of the count of ``state`` in family ``slot`` (IPV4_SLOT, IPV6_SLOT)."""
    return slot * COUNT_CELLS + state


def state_total(counts, state):
    """Sockets in ``state``, both families."""
    return counts[count_cell(IPV4_SLOT, state)] + counts[count_cell(IPV6_SLOT, state)]


def family_total(counts, slot):
    """Sockets of family ``slot`` in the known states (1..11)."""
    base = count_cell(slot, 0)
    return sum(counts[base + state] for state in KNOWN_STATES)


class CloseWait(typing.NamedTuple):
    """A CLOSE_WAIT socket kept by the tally for the owner lookup (the leak to explain).

    An inbound socket (its local port is a listening port) keeps that ``local_port`` and no ``remote_port`` (a
    client's ephemeral port, aggregated away); an outbound one keeps its ``remote_port`` and no ``local_port``.
    ``dst`` is the peer's 16 raw address bytes, ``slot`` its family slot.
    """

    inode: int
    uid: int
    slot: int
    dst: bytes
    remote_port: typing.Optional[int]
    local_port: typing.Optional[int]
