# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Read the kernel's TCP socket table: netlink ``sock_diag`` first, ``/proc/net/tcp{,6}`` as fallback.

Both backends hand out the same record shape, one tuple per socket, in batches:

    (state, sport, dport, src, dst, rqueue, wqueue, uid, inode)

``state`` is the kernel number (1 ESTABLISHED .. 11 CLOSING), ports are host-order ints, ``src`` and ``dst``
are 16 raw address bytes exactly as ``inet_diag_sockid`` carries them (an IPv4 address fills the first four
bytes, the rest are zero). Batches never outlive one ``recv`` (netlink) or one chunk of text (/proc), so
memory stays flat however large the table is.

Per-state counts of every socket are added to a caller-provided list indexed ``family_slot * 16 + state``
(slot 0 IPv4, 1 IPv6). IPv4-mapped IPv6 peers (``::ffff:a.b.c.d``) are counted in the IPv4 slot, because the
peer really is an IPv4 host talking to a dual-stack socket.

Wire formats: ``include/uapi/linux/inet_diag.h``, ``include/uapi/linux/sock_diag.h``,
``Documentation/networking/proc_net_tcp.rst``.
"""
from __future__ import annotations

import collections
import errno
import operator
import os
import socket
import struct
import sys

STATE_NAMES = (
    None, "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE",
    "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING",
)
STATE_NUMBERS = {name: num for num, name in enumerate(STATE_NAMES) if name}
ESTABLISHED, SYN_RECV, FIN_WAIT2, TIME_WAIT, CLOSE_WAIT, LISTEN = 1, 3, 5, 6, 8, 10

# Bits 1..11 (TCPF_ESTABLISHED .. TCPF_CLOSING). Never set bit 13: new kernels then add "bound inactive"
# sockets reported as CLOSE. Bit 12 (NEW_SYN_RECV) is implied by bit 3 in inet_diag_dump_icsk().
ALL_STATES = 0xFFE
LISTEN_BIT = 1 << LISTEN
# TIME_WAIT sockets, SYN_RECV request sockets and orphaned FIN_WAIT2 sockets are minisockets: their messages
# are 88/96 bytes, full sockets' 116/124. Both kinds share the established hash, so a dump of both yields
# datagrams of mixed message lengths, which only a Python loop per message can walk (579 of 737 datagrams
# of the 231k benchmark table). Dumping the two groups separately keeps almost every datagram uniform for
# the C fast path; the kernel builds no message for a socket whose state a dump does not ask for.
# FIN_WAIT2 goes with the minisockets whether or not the socket is orphaned.
MINISOCK_STATES = (1 << TIME_WAIT) | (1 << SYN_RECV) | (1 << FIN_WAIT2)

AF_INET = socket.AF_INET
AF_INET6 = socket.AF_INET6
FAMILY_SLOT = {AF_INET: 0, AF_INET6: 1}

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST_DUMP = 0x301  # NLM_F_REQUEST | NLM_F_ROOT | NLM_F_MATCH
NLMSG_ERROR = 2
NLMSG_DONE = 3
IPPROTO_TCP = 6

# nlmsghdr (16 bytes) + inet_diag_req_v2 (family, protocol, ext, pad, states) + a zeroed 48-byte sockid.
_REQUEST = struct.Struct("=IHHIIBBBxI48x")
_U32 = struct.Struct("=I")
_I32 = struct.Struct("=i")
_HDR = struct.Struct("=IH")
# inet_diag_msg: family, state, timer, retrans, sport, dport (big endian), src[16], dst[16]. Bytes and
# big-endian ports decode the same on every host, so '>' is right for this part...
_HEAD = struct.Struct(">xBxxHH16s16s")
# ...while rqueue, wqueue, uid and inode at payload offset 56 are host-endian.
_TAIL = struct.Struct("=IIII")
_DIAG_MIN = 16 + 72  # nlmsghdr + inet_diag_msg, the smallest valid socket message
_MAPPED = b"\0" * 10 + b"\xff\xff"
_ZERO10 = b"\0" * 10

# errno values that mean "this kernel/sandbox has no usable sock_diag": fall back to /proc.
_REFUSED = {errno.EPROTONOSUPPORT, errno.EAFNOSUPPORT, errno.EPERM, errno.EACCES, errno.ENOENT,
            errno.EOPNOTSUPP, errno.EINVAL, errno.ESOCKTNOSUPPORT}


class CollectError(Exception):
    """The socket table could not be read; the message names the file or the netlink error."""


class NetlinkRefused(CollectError):
    """sock_diag is unavailable here (refused, missing or forbidden); /proc may still work."""


def states_mask(states):
    """Bitmask (TCPF_*) for an iterable of state numbers."""
    mask = 0
    for state in states:
        mask |= 1 << state
    return mask


def _open_netlink():
    return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_SOCK_DIAG)


class NetlinkBackend:
    """Dump TCP sockets with NETLINK_SOCK_DIAG / SOCK_DIAG_BY_FAMILY, parsing each batch in place."""

    name = "netlink"

    def __init__(self, bufsize=65536, opener=None):
        # recv buffer >= 32 KiB: the kernel sizes its batches from the largest read it has seen
        # (max_recvmsg_len in net/netlink/af_netlink.c).
        self._buf = bytearray(bufsize)
        self._seq = 0
        self._open = opener or _open_netlink

    def _datagrams(self, family, mask):
        """Send one dump request; yield the received length of each datagram (data is in self._buf)."""
        try:
            sock = self._open()
        except OSError as exc:
            raise NetlinkRefused("netlink sock_diag socket refused: %s" % exc) from exc
        # One socket per dump: a second dump on a socket with one still running gets EBUSY.
        try:
            self._seq += 1
            sock.bind((0, 0))
            sock.send(_REQUEST.pack(_REQUEST.size, SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST_DUMP, self._seq, 0,
                                    family, IPPROTO_TCP, 0, mask))
            recv_into = sock.recv_into
            buf = self._buf
            while True:
                size = recv_into(buf)
                if size == 0:
                    raise CollectError("netlink sock_diag dump ended without NLMSG_DONE")
                yield size
        except OSError as exc:
            if exc.errno in _REFUSED:
                raise NetlinkRefused("netlink sock_diag dump refused: %s" % exc) from exc
            raise CollectError("netlink sock_diag dump failed: %s" % exc) from exc
        finally:
            sock.close()

    def listeners(self, family, counts):
        """Records of the LISTEN sockets of one family (a dump that only walks the listening hash)."""
        out = []
        for batch in self.scan(family, LISTEN_BIT, LISTEN_BIT, counts):
            out.extend(batch)
        return out

    def scan(self, family, mask, detail, counts):
        """Count every socket whose state is in ``mask``; yield record batches for those also in ``detail``.

        The kernel filters by state, so the mask is split: states counted only go through a counting dump,
        detailed states through a parsing dump, and every socket crosses the netlink socket once. Each of
        the two is split again into full sockets and minisockets (see MINISOCK_STATES).
        """
        detail &= mask
        for group in (ALL_STATES & ~MINISOCK_STATES, MINISOCK_STATES):
            count_only = mask & ~detail & group
            if count_only:
                self._count(family, count_only, counts)
            if detail & group:
                yield from self._detail(family, detail & group, counts)

    def _count(self, family, mask, counts):
        buf = self._buf
        hdr = _HDR.unpack_from
        base = FAMILY_SLOT[family] * 16
        v6 = family == AF_INET6
        for size in self._datagrams(family, mask):
            stride = _uniform_stride(buf, size)
            if stride:
                _count_uniform(buf, size, stride, base, counts)
                continue
            off = 0
            while off < size:
                mlen, mtype = hdr(buf, off)
                if mtype == SOCK_DIAG_BY_FAMILY and mlen >= _DIAG_MIN and off + mlen <= size:
                    slot = base
                    # dst bytes 10/11 of the payload (offset 16 + 24) are 0xffff for a v4-mapped peer.
                    if v6 and buf[off + 50] == 255 and buf[off + 51] == 255 and buf[off + 40:off + 50] == _ZERO10:
                        slot = 0
                    counts[slot + buf[off + 17]] += 1
                elif control(buf, off, mlen, mtype, size):
                    return
                off += (mlen + 3) & ~3

    def _detail(self, family, mask, counts):
        buf = self._buf
        hdr = _HDR.unpack_from
        head = _HEAD.unpack_from
        tail = _TAIL.unpack_from
        base = FAMILY_SLOT[family] * 16
        v6 = family == AF_INET6
        for size in self._datagrams(family, mask):
            stride = _uniform_stride(buf, size)
            if stride:
                _count_uniform(buf, size, stride, base, counts)
                heads, tails = _record_structs(stride)
                view = memoryview(buf)[:size]
                try:
                    yield list(map(operator.add, heads.iter_unpack(view), tails.iter_unpack(view)))
                finally:
                    view.release()
                continue
            off = 0
            batch = []
            append = batch.append
            done = False
            while off < size:
                mlen, mtype = hdr(buf, off)
                if mtype == SOCK_DIAG_BY_FAMILY and mlen >= _DIAG_MIN and off + mlen <= size:
                    rec = head(buf, off + 16) + tail(buf, off + 72)
                    slot = base
                    if v6 and rec[4][:12] == _MAPPED:
                        slot = 0
                    counts[slot + rec[0]] += 1
                    append(rec)
                elif control(buf, off, mlen, mtype, size):
                    done = True
                    break
                off += (mlen + 3) & ~3
            yield batch
            if done:
                return


# Fast path. Within one datagram, sockets of the same kind usually have the same message length (full
# sockets 116/124 bytes, timewait and request sockets 88/96). When every message of a datagram is a
# sock_diag message of one length, struct.iter_unpack walks it at a fixed stride in C instead of a Python
# loop per message. Any other datagram (mixed lengths, NLMSG_DONE appended, errors) takes the general loop.
_STRUCTS = {}


def _structs(stride):
    found = _STRUCTS.get(stride)
    if found is None:
        found = _STRUCTS[stride] = (
            struct.Struct("=IH%dx" % (stride - 6)),  # nlmsg_len, nlmsg_type
            struct.Struct("=17xB22x12s%dx" % (stride - 52)),  # state, first 12 bytes of dst (v4-mapped?)
            struct.Struct(">16xxBxxHH16s16s%dx" % (stride - 56)),  # as _HEAD
            struct.Struct("=72xIIII%dx" % (stride - 88)),  # as _TAIL
        )
    return found


def _uniform_stride(buf, size):
    """The common message length if the datagram holds only sock_diag messages of one length, else 0."""
    stride = _U32.unpack_from(buf, 0)[0] if size >= 4 else 0
    if stride < _DIAG_MIN or stride % 4 or size % stride or stride > 4096:
        return 0
    # Every message starts with the same 6 bytes (nlmsg_len, nlmsg_type) iff each extended slice of
    # header byte k is that byte repeated: six C-level comparisons instead of a tuple per message.
    count = size // stride
    head = _HDR.pack(stride, SOCK_DIAG_BY_FAMILY)
    for k in range(_HDR.size):
        if buf[k:size:stride] != head[k:k + 1] * count:
            return 0
    return stride


def _count_uniform(buf, size, stride, base, counts):
    # The state byte of every message, gathered by one extended slice. When no peer can be IPv4-mapped
    # (dst bytes 10-11 are never 0xffff), bytes.count per state is all the work left.
    states = bytes(buf[17:size:stride])
    if not base or 255 not in buf[50:size:stride]:
        for state in set(states):
            counts[base + state] += states.count(state)
        return
    view = memoryview(buf)[:size]
    try:
        tally = collections.Counter(_structs(stride)[1].iter_unpack(view))
    finally:
        view.release()
    for (state, prefix), num in tally.items():
        counts[(0 if prefix == _MAPPED else base) + state] += num


def _record_structs(stride):
    found = _structs(stride)
    return found[2], found[3]


def _truncated(mlen, off, size):
    return CollectError("truncated netlink message: length %d at offset %d of a %d-byte datagram" % (mlen, off, size))


def control(buf, off, mlen, mtype, size):
    """Handle a message that is not a complete socket: True for NLMSG_DONE, raise for NLMSG_ERROR, for a
    truncated message or a short inet_diag message, False for anything else (skipped, e.g. NLMSG_NOOP)."""
    if mlen < 16 or off + mlen > size:
        raise _truncated(mlen, off, size)
    if mtype in (NLMSG_DONE, NLMSG_ERROR):
        # Both carry an int: 0, or a negative errno. A dump that fails after it started (e.g. ENOENT when
        # no handler exists for the protocol) ends with NLMSG_DONE carrying the error (netlink_dump_done()).
        code = -_I32.unpack_from(buf, off + 16)[0] if mlen >= 20 else 0
        if code <= 0:
            return mtype == NLMSG_DONE
        msg = "netlink sock_diag error: %s (errno %d)" % (os.strerror(code), code)
        if code in _REFUSED:
            raise NetlinkRefused(msg)
        raise CollectError(msg)
    if mtype == SOCK_DIAG_BY_FAMILY:
        raise CollectError("truncated inet_diag message: length %d" % mlen)
    return False


def _proc_word_order():
    """Hex text of the ``::ffff:0:0/96`` prefix as /proc/net/tcp6 prints it on this host.

    tcp6 prints the address as four host-endian 32-bit words (``%08X%08X%08X%08X``).
    """
    third = "FFFF0000" if sys.byteorder == "little" else "0000FFFF"
    return ("0" * 16 + third).encode()


_PROC_MAPPED = _proc_word_order()
_STATE_HEX = {("%02X" % num).encode(): num for num in range(1, 12)}


def _decode_proc_addr(text, little=sys.byteorder == "little"):
    """/proc hex address -> 16 bytes in sock_diag layout (IPv4 in the first 4 bytes)."""
    raw = bytes.fromhex(text.decode())
    if little:
        raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return raw + b"\0" * (16 - len(raw))


class ProcBackend:
    """Parse /proc/net/tcp and /proc/net/tcp6 (the fallback: kernels, sandboxes without sock_diag)."""

    name = "proc"
    _CHUNK = 1 << 20

    def __init__(self, root="/"):
        self.root = root

    def path(self, family):
        return os.path.join(self.root, "proc", "net", "tcp" if family == AF_INET else "tcp6")

    def _chunks(self, family):
        """Yield lists of complete lines (bytes), header removed, ~1 MiB at a time."""
        path = self.path(family)
        try:
            handle = open(path, "rb", buffering=0)
        except FileNotFoundError:
            if family == AF_INET6:
                # A kernel without IPv6 has no tcp6 file: no IPv6 sockets, not an error.
                return
            raise CollectError("cannot read %s: file not found (is /proc mounted?)" % path) from None
        except OSError as exc:
            raise CollectError("cannot read %s: %s" % (path, exc.strerror)) from exc
        with handle:
            rest = b""
            first = True
            while True:
                data = handle.read(self._CHUNK)
                if not data:
                    break
                data = rest + data
                cut = data.rfind(b"\n") + 1
                rest = data[cut:]
                lines = data[:cut].split(b"\n")
                lines.pop()
                if first and lines:
                    lines.pop(0)
                    first = False
                yield lines
            if rest.strip():
                raise CollectError("truncated line at the end of %s" % path)

    def listeners(self, family, counts):
        """LISTEN records of one family.

        The kernel prints the listening hash before the established one (tcp_get_idx() in
        net/ipv4/tcp_ipv4.c), so reading stops at the first line in another state.
        """
        out = []
        for lines in self._chunks(family):
            for batch, stop in self._parse(family, lines, LISTEN_BIT, LISTEN_BIT, counts, until_other=True):
                out.extend(batch)
                if stop:
                    return out
        return out

    def scan(self, family, mask, detail, counts):
        detail &= mask
        for lines in self._chunks(family):
            for batch, _stop in self._parse(family, lines, mask, detail, counts):
                yield batch

    @staticmethod
    def _parse(family, lines, mask, detail, counts, until_other=False):
        """Parse /proc lines. Positions are relative to the first ':' because ``sl`` widens past 9999."""
        base = FAMILY_SLOT[family] * 16
        v6 = family == AF_INET6
        width = 32 if v6 else 8
        # Offsets after the "sl:" colon: " local:port remote:port st tx:rx ..."
        lport_at = 3 + width
        raddr_at = lport_at + 5
        rport_at = raddr_at + width + 1
        state_at = rport_at + 5
        queues_at = state_at + 3
        uid_at = queues_at + 39
        states = _STATE_HEX
        cache = {}
        batch = []
        append = batch.append
        for line in lines:
            col = line.find(b":")
            if col < 0:
                continue
            state = states.get(line[col + state_at:col + state_at + 2])
            if state is None:
                # An unknown state (a newer kernel) or a cut line: never guess.
                if len(line) < col + state_at + 2:
                    raise CollectError("truncated line in /proc/net/tcp%s: %r" % ("6" if v6 else "", line[:80]))
                continue
            if until_other and state != LISTEN:
                yield batch, True
                return
            bit = 1 << state
            if not mask & bit:
                continue
            raddr_hex = line[col + raddr_at:col + raddr_at + width]
            slot = base
            if v6 and raddr_hex[:24] == _PROC_MAPPED:
                slot = 0
            counts[slot + state] += 1
            if not detail & bit:
                continue
            laddr_hex = line[col + 2:col + 2 + width]
            src = cache.get(laddr_hex)
            if src is None:
                src = cache[laddr_hex] = _decode_proc_addr(laddr_hex)
            dst = cache.get(raddr_hex)
            if dst is None:
                dst = cache[raddr_hex] = _decode_proc_addr(raddr_hex)
            fields = line[col + uid_at:].split(None, 3)
            if len(fields) < 3:
                raise CollectError("truncated line in /proc/net/tcp%s: %r" % ("6" if v6 else "", line[:80]))
            txq = int(line[col + queues_at:col + queues_at + 8], 16)
            rxq = int(line[col + queues_at + 9:col + queues_at + 17], 16)
            if state == LISTEN:
                # /proc has no backlog limit for listeners (tx_queue is 0); sock_diag has it in wqueue.
                txq = None
            append((state, int(line[col + lport_at:col + lport_at + 4], 16),
                    int(line[col + rport_at:col + rport_at + 4], 16), src, dst, rxq, txq,
                    int(fields[0]), int(fields[2])))
        yield batch, False
