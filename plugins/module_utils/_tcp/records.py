# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The records the socket readers hand to the tally: one ``Socket`` per socket read in detail, and the per-state
counts of every socket (``StateCounts``); the tally keeps a ``CloseWait`` per CLOSE_WAIT socket.

Both are plain sequences underneath (a tuple, a list), so the hot loops keep C-level access: a ``Socket`` unpacks
and slices as a tuple, ``operator.itemgetter(Socket.FIELD)`` reads one field of many; code that reads a few
records names the fields.
"""

import typing

# Family slots of StateCounts: IPv4 (and IPv4-mapped IPv6 peers, which really are IPv4 hosts) and IPv6.
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
KEY_FIELDS = tuple(Socket._fields.index(name) for name in ("dport", "src", "dst"))


class StateCounts(list):
    """Socket counts per family slot (IPV4_SLOT, IPV6_SLOT) and state number: a list of 32 ints, cell
    ``cell(slot, state)``. The readers count into it in their loops by index (``base = cell(slot, 0)`` once, then
    ``counts[base + state] += 1``); the report reads it by name."""

    FAMILY_CELLS = 16  # cells per family slot: state numbers 1..11 fit, with room for newer kernels' states

    def __init__(self):
        list.__init__(self, [0] * (2 * self.FAMILY_CELLS))

    @classmethod
    def cell(cls, slot, state):
        """Index of the count of ``state`` in family ``slot``."""
        return slot * cls.FAMILY_CELLS + state

    def get(self, slot, state):
        return self[self.cell(slot, state)]

    def add(self, slot, state, count=1):
        self[self.cell(slot, state)] += count

    def of_state(self, state):
        """Sockets in ``state``, both families."""
        return self[state] + self[self.FAMILY_CELLS + state]

    def of_family(self, slot, states=range(1, 12)):
        """Sockets of family ``slot`` in the known states (1..11)."""
        base = self.cell(slot, 0)
        return sum(self[base + state] for state in states)


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
