# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Read the kernel's TCP socket table: netlink ``sock_diag`` first, ``/proc/net/tcp{,6}`` as fallback.

Listeners, from both backends, come as ``socket_records.Socket`` records, and the rest of the table from /proc as tuples
in the same field order; from /proc only, ``timer_ms`` carries the socket's pending timer (``tm->when``; for a
TIME_WAIT socket the time it has left, which tells its age, see ``TIMEWAIT_MS``). The rest of the table from netlink comes as the raw
messages themselves (their layout: ``wire.py``), in blocks of one message length that a sink folds in place
(``NetlinkBackend.dump``, ``tally.Tally.block``).
Batches and blocks never outlive one ``recv`` (netlink) or one chunk of text (/proc), so memory stays flat
however large the table is.

Per-state counts are added to a caller-provided list (``socket_records.new_counts()``, cell ``count_cell(slot, state)``,
slot 0 IPv4, 1 IPv6) by the readers of records; the sink of a netlink dump counts its blocks itself. IPv4-mapped IPv6
peers (``::ffff:a.b.c.d``) count in the IPv4 slot, because the peer really is an IPv4 host talking to a
dual-stack socket.

Wire formats: ``include/uapi/linux/inet_diag.h``, ``include/uapi/linux/sock_diag.h``,
``Documentation/networking/proc_net_tcp.rst``; the kernel side: ``net/ipv4/inet_diag.c``.
"""

import collections
import errno
import os
import socket
import sys
import threading
import time
from ansible_collections.linuxnet.tcp.plugins.module_utils._common import LinuxnetError
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp import wire
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp.socket_records import IPV4_SLOT, IPV6_SLOT, Socket, count_cell
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp.wire import (
    DIAG_MIN,
    HDR,
    NLMSG_DONE,
    NLMSG_ERROR,
    SOCK_DIAG_BY_FAMILY,
    TCPDIAG_GETSOCK,
    aligned,
)

STATE_NAMES = (
    None, "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE",
    "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING",
)
STATE_NUMBERS = {name: num for num, name in enumerate(STATE_NAMES) if name}
ESTABLISHED, SYN_RECV, FIN_WAIT2, TIME_WAIT, CLOSE_WAIT, LISTEN = 1, 3, 5, 6, 8, 10
# A TIME_WAIT socket lives TCP_TIMEWAIT_LEN (60 s, include/net/tcp.h; tcp_time_wait() in net/ipv4/tcp_minisocks.c
# arms the timer with it), so its age is TIMEWAIT_MS minus the time left on its timer: sock_diag's idiag_expires
# (ms, inet_twsk_diag_fill() in net/ipv4/inet_diag.c) or /proc's tm->when (clock ticks). A FIN retransmitted by the
# peer re-arms the timer without changing the entry time, so such a socket reads younger than it is (never older).
TIMEWAIT_MS = 60000

# Bits 1..11 (TCPF_ESTABLISHED .. TCPF_CLOSING). Never set bit 13: new kernels then add "bound inactive"
# sockets reported as CLOSE. Bit 12 (NEW_SYN_RECV) is implied by bit 3 in inet_diag_dump_icsk().
ALL_STATES = 0xFFE
LISTEN_BIT = 1 << LISTEN
# TIME_WAIT sockets, SYN_RECV request sockets and orphaned FIN_WAIT2 sockets are minisockets: their messages
# are 88/96 bytes, full sockets' 116/124. Both kinds share the established hash, so a dump of both yields
# datagrams of mixed message lengths, which only a Python loop per message can walk (639 of 873 datagrams
# of the 231k benchmark table). Dumping the two groups separately keeps every datagram uniform for the C
# fast path, but each dump walks the whole hash once more in the kernel: worth it only when both kinds
# are plentiful (see dump_plan). FIN_WAIT2 goes with the minisockets whether or not it is orphaned.
MINISOCK_STATES = (1 << TIME_WAIT) | (1 << SYN_RECV) | (1 << FIN_WAIT2)


def dump_plan(mask, full, mini, parts, walked=None):
    """The dumps to run for ``mask``: (state mask, number of higher-port ranges) pairs, from the number of
    full sockets and of minisockets expected (sockstat ``inuse`` and ``tw``) and the ranges allowed.

    Each dump walks the whole established hash in the kernel, about 0.2 us per socket on 6.18; building a
    message costs about 0.8 us for a full socket and 0.17 us for a minisocket. The hash holds the sockets of
    every network namespace: ``walked`` is how many a walk visits (default ``full + mini``, a host whose own
    namespace holds nearly all; more where containers hold many, which makes each extra walk dearer). Hence:

    * full sockets and minisockets are dumped apart only when the datagrams that mix them cost more than
      another walk: a datagram holds about 300 messages, so when the smaller kind is rare few are mixed, and
      mixed ones, walked message by message in Python, cost about 0.33 us a message. On a host's own table
      this is when the smaller kind exceeds 0.2 % of it;
    * a dump is cut into ``parts`` ranges only when the messages it builds cost more than the walk each
      range adds: for full sockets on their own when they outnumber the rest of what a walk visits, for a
      dump of both kinds when full sockets outnumber 0.6 times the minisockets (and what else a walk
      visits). A TIME_WAIT storm is one walk.
    """
    total = full + mini
    others = max((walked or 0) - total, 0)
    if total and min(total, 300 * min(full, mini)) * 5 > (total + others) * 3:
        return [(mask & ~MINISOCK_STATES, parts if full > mini + others else 1), (mask & MINISOCK_STATES, 1)]
    return [(mask, parts if full * 5 > mini * 3 + others * 5 else 1)]


AF_UNSPEC = socket.AF_UNSPEC
AF_INET = socket.AF_INET
AF_INET6 = socket.AF_INET6
FAMILY_SLOT = {AF_INET: IPV4_SLOT, AF_INET6: IPV6_SLOT}
_NO_TIMER = (None,)  # Socket.timer_ms of a netlink listener record

# errno values that mean "this kernel/sandbox has no usable sock_diag": fall back to /proc.
_REFUSED = {errno.EPROTONOSUPPORT, errno.EAFNOSUPPORT, errno.EPERM, errno.EACCES, errno.ENOENT,
            errno.EOPNOTSUPP, errno.EINVAL, errno.ESOCKTNOSUPPORT}


class CollectError(LinuxnetError):
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
    return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, wire.NETLINK_SOCK_DIAG)


# The outcome of the legacy-request probe for the real netlink socket, once known (see NetlinkBackend.compat).
_COMPAT = {}


def default_parts():
    """Concurrent dumps for this process: 2 where it may use two CPUs or more, else 1.

    Each dump walks the whole established hash in the kernel, so more parts cost more kernel time in total;
    two parts on two CPUs was measured to pay off (see docs/tcp_facts.md), more was not measured.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return 2 if cpus >= 2 else 1


def port_filter(above=None, upto=None):
    """INET_DIAG_REQ_BYTECODE attribute keeping the sockets whose higher port, max(sport, dport), is
    greater than ``above`` and at most ``upto`` (None: no bound). b"" when neither bound is given.

    The higher port of a connection is almost always its ephemeral end, the local port of an outbound
    socket and the remote port of an inbound one, so ranges of it split both kinds evenly. Every socket has
    exactly one higher port, so consecutive ranges partition the table. The program (``inet_diag_bc_run()``
    in net/ipv4/inet_diag.c): an op jumps ``yes`` bytes when its condition holds, else ``no`` bytes;
    landing exactly on the end accepts, jumping 4 bytes past it rejects. ``inet_diag_bc_audit()`` requires
    the chain of ``yes`` jumps to end exactly on the end, so a rejection is always a ``no`` jump.
    """
    ops = []
    if upto is not None:
        # sport <= upto, else reject; dport <= upto, else reject.
        ops.append([wire.BC_S_LE, 8, None, upto])
        ops.append([wire.BC_D_LE, 8, None, upto])
    if above is not None:
        # sport <= above and dport <= above reaches the JMP, which always takes its "no": reject.
        ops.append([wire.BC_S_LE, 8, "accept", above])
        ops.append([wire.BC_D_LE, 8, "accept", above])
    if not ops:
        return b""
    total = 8 * len(ops) + (4 if above is not None else 0)
    out = b""
    for index, (code, yes, no, port) in enumerate(ops):
        left = total - 8 * index
        out += wire.BC_OP.pack(code, yes, left if no == "accept" else left + 4) + wire.BC_OP.pack(0, 0, port)
    if above is not None:
        out += wire.BC_OP.pack(wire.BC_JMP, 4, 8)
    return wire.NLATTR.pack(wire.NLATTR.size + len(out), wire.INET_DIAG_REQ_BYTECODE) + out


def port_parts(port_range, parts):
    """(above, upto) bounds of the higher port for ``parts`` dumps, cutting the ephemeral range evenly."""
    if parts <= 1:
        return [(None, None)]
    lo, hi = port_range if port_range and 0 <= port_range[0] <= port_range[1] <= 65535 else (32768, 65535)
    cuts = [lo + (hi - lo + 1) * k // parts - 1 for k in range(1, parts)]
    bounds = [None] + cuts + [None]
    return list(zip(bounds[:-1], bounds[1:]))


class NetlinkBackend:
    """Dump TCP sockets with NETLINK_SOCK_DIAG, several dumps at once, handing uniform blocks to a sink.

    The kernel builds a dump's messages inside recv(), which releases the GIL, so while one thread waits
    for the kernel another parses what it received: each part of the table has its own netlink socket and
    thread. Sockets are opened (and the requests sent) by the calling thread, so every dump reads the
    network namespace the caller is in; the worker threads only receive. All of them are joined before
    ``dump()`` returns or raises.
    """

    name = "netlink"

    def __init__(self, bufsize=65536, opener=None, parts=None, timeout=30.0):
        # recv buffer >= 32 KiB: the kernel sizes its batches from the largest read it has seen
        # (max_recvmsg_len in net/netlink/af_netlink.c, capped at 32 KiB).
        self._bufsize = bufsize
        self._buf = bytearray(bufsize)
        self._seq = 0
        self._open = opener or _open_netlink
        self.parts = parts or default_parts()
        self.timeout = timeout
        # The legacy TCPDIAG_GETSOCK request dumps IPv4 and IPv6 in one walk of the established hash;
        # SOCK_DIAG_BY_FAMILY needs one walk per family. None: not probed yet. Whether the request is taken is
        # a property of the kernel, the same in every network namespace: probed once per process for the real
        # socket (namespaces=all builds one backend per namespace).
        self.compat = _COMPAT.get(self._open)
        # Seconds spent in send() and recv() of the dumps: the kernel builds the dump's messages there, walking
        # its socket hash, with the GIL released. Summed without a lock: exact for the dumps of one thread (a scan
        # of every namespace, parts=1), which decides from it whether a second thread would pay.
        self.waited = 0.0

    def _start(self, family, mask, bytecode=b"", compat=False):
        """Open a socket and send one dump request; the caller owns (closes) the returned socket."""
        try:
            sock = self._open()
        except OSError as exc:
            raise NetlinkRefused("netlink sock_diag socket refused: %s" % exc) from exc
        # One socket per dump: a second dump on a socket with one still running gets EBUSY.
        try:
            self._seq += 1
            if self.timeout:
                sock.settimeout(self.timeout)
            sock.bind((0, 0))
            if compat:
                request = wire.REQUEST_V1.pack(wire.REQUEST_V1.size + len(bytecode), TCPDIAG_GETSOCK, wire.NLM_F_REQUEST_DUMP,
                                               self._seq, 0, family, 0, 0, 0, mask, 0)
            else:
                request = wire.REQUEST.pack(wire.REQUEST.size + len(bytecode), SOCK_DIAG_BY_FAMILY, wire.NLM_F_REQUEST_DUMP,
                                            self._seq, 0, family, wire.IPPROTO_TCP, 0, mask)
            started = time.monotonic()
            sock.send(request + bytecode)
            self.waited += time.monotonic() - started
        except OSError as exc:
            sock.close()
            raise _dump_error(exc) from exc
        except BaseException:
            sock.close()
            raise
        return sock

    def _sizes(self, sock, buf):
        """Yield the received length of each datagram of the dump running on ``sock`` (data is in buf)."""
        recv_into = sock.recv_into
        clock = time.monotonic
        try:
            while True:
                started = clock()
                size = recv_into(buf)
                self.waited += clock() - started
                if size == 0:
                    raise CollectError("netlink sock_diag dump ended without NLMSG_DONE")
                yield size
        except socket.timeout:
            raise CollectError("netlink sock_diag dump timed out after %g s" % self.timeout) from None
        except OSError as exc:
            raise _dump_error(exc) from exc

    def _datagrams(self, family, mask):
        """One dump on the calling thread, into self._buf: yield each datagram's length."""
        sock = self._start(family, mask)
        try:
            yield from self._sizes(sock, self._buf)
        finally:
            sock.close()

    def listeners(self, family, counts):
        """Records of the LISTEN sockets of one family (a dump that only walks the listening hash)."""
        buf = self._buf
        hdr = HDR.unpack_from
        head = wire.HEAD.unpack_from
        tail = wire.TAIL.unpack_from
        make = Socket._make
        base = count_cell(FAMILY_SLOT[family], 0)
        out = []
        for size in self._datagrams(family, LISTEN_BIT):
            off = 0
            while off < size:
                mlen, mtype = hdr(buf, off)
                if mtype == SOCK_DIAG_BY_FAMILY and mlen >= DIAG_MIN and off + mlen <= size:
                    rec = make(head(buf, off + wire.HEAD_OFFSET) + tail(buf, off + wire.TAIL_OFFSET) + _NO_TIMER)
                    counts[base + rec.state] += 1
                    out.append(rec)
                elif control(buf, off, mlen, mtype, size):
                    return out
                off += (mlen + 3) & ~3
        return out

    def _probe_compat(self):
        """Whether this kernel takes the legacy request with a bytecode filter.

        The probe asks for listeners with a filter no socket passes: the kernel walks the listening hash
        only and answers NLMSG_DONE, or NLMSG_ERROR where the request is not supported.
        """
        sock = self._start(AF_UNSPEC, LISTEN_BIT, port_filter(above=65535, upto=0), compat=True)
        try:
            for size in self._sizes(sock, self._buf):
                off = 0
                while off < size:
                    mlen, mtype = HDR.unpack_from(self._buf, off)
                    if control(self._buf, off, mlen, mtype, size):
                        return True
                    off += (mlen + 3) & ~3
        except NetlinkRefused:
            return False
        finally:
            sock.close()
        raise CollectError("netlink sock_diag probe ended without NLMSG_DONE")  # _sizes only ends by raising

    def dump(self, plan, sink, port_range=None):
        """Run the dumps of ``plan`` (see dump_plan); call ``sink(data, size, stride)`` per block.

        A block holds ``size // stride`` complete sock_diag messages of ``stride`` bytes each (any address
        family); calls to ``sink`` never overlap. Each (mask, parts) of the plan is one dump per range of the
        higher port (see port_filter, port_parts), each on its own socket. At most ``self.parts`` dumps run
        at once, one per thread, the calling thread included; a thread done with one dump takes the next.
        """
        if self.compat is None:
            self.compat = self._probe_compat()
            if self._open is _open_netlink:
                _COMPAT[_open_netlink] = self.compat
        families = [AF_UNSPEC] if self.compat else [AF_INET, AF_INET6]
        msgtype = TCPDIAG_GETSOCK if self.compat else SOCK_DIAG_BY_FAMILY
        jobs = [(family, mask, port_filter(*bounds)) for mask, parts in plan for family in families
                for bounds in port_parts(port_range, parts)]
        socks = []
        try:
            for family, mask, bytecode in jobs:
                socks.append(self._start(family, mask, bytecode, compat=self.compat))
            pending = collections.deque(socks)
            lock = threading.Lock()
            errors = []

            def work(buf):
                try:
                    while not errors:
                        try:
                            sock = pending.popleft()
                        except IndexError:
                            return  # every dump is taken
                        for size in self._sizes(sock, buf):
                            if _feed(buf, size, msgtype, sink, lock):
                                break
                except BaseException as exc:  # pylint: disable=broad-exception-caught
                    errors.append(exc)

            threads = [threading.Thread(target=work, args=(bytearray(self._bufsize),), daemon=True)
                       for _index in range(min(self.parts, len(socks)) - 1)]
            for thread in threads:
                thread.start()
            try:
                work(self._buf)
            finally:
                for thread in threads:
                    thread.join()
            if errors:
                raise errors[0]
        finally:
            for sock in socks:
                sock.close()


def _dump_error(exc):
    if exc.errno in _REFUSED:
        return NetlinkRefused("netlink sock_diag dump refused: %s" % exc)
    return CollectError("netlink sock_diag dump failed: %s" % exc)


def _feed(buf, size, msgtype, sink, lock):
    """Pass one datagram to ``sink`` as uniform blocks; True once NLMSG_DONE is seen.

    Within one datagram, sockets of the same kind usually have the same message length (full sockets
    116/124 bytes, timewait and request sockets 88/96). A datagram holding only sock_diag messages of one
    length goes to the sink as it is; any other (mixed lengths, NLMSG_DONE appended, errors) is walked
    message by message and its messages are regrouped by length.
    """
    stride = _uniform_stride(buf, size, msgtype)
    if stride:
        with lock:
            sink(buf, size, stride)
        return False
    hdr = HDR.unpack_from
    groups = {}
    done = False
    off = 0
    while off < size:
        mlen, mtype = hdr(buf, off)
        if mtype == msgtype and mlen >= DIAG_MIN and off + mlen <= size:
            offs = groups.get(mlen)
            if offs is None:
                offs = groups[mlen] = []
            offs.append(off)
        elif control(buf, off, mlen, mtype, size):
            done = True
            break
        off += (mlen + 3) & ~3
    if groups:
        data = bytes(buf[:size])
        for mlen, offs in groups.items():
            stride = aligned(mlen)
            block = b"".join(map(data.__getitem__, map(slice, offs, map(stride.__add__, offs))))
            if len(block) < stride * len(offs):  # the last message's padding is not in the datagram
                block += b"\0" * (stride * len(offs) - len(block))
            with lock:
                sink(block, len(block), stride)
    return done


def _uniform_stride(buf, size, msgtype=SOCK_DIAG_BY_FAMILY):
    """The common message length if the datagram holds only sock_diag messages of one length, else 0."""
    stride = wire.U32.unpack_from(buf, wire.LEN_OFFSET)[0] if size >= 4 else 0
    if stride < DIAG_MIN or stride % 4 or size % stride or stride > 4096:
        return 0
    # Every message starts with the same nlmsg_len and nlmsg_type iff the extended slices of these fields
    # equal the first one repeated: two C-level comparisons instead of a tuple per message.
    count = size // stride
    view = memoryview(buf)[:size]
    words = view.cast("I")
    halves = view.cast("H")
    try:
        if words[wire.LEN_OFFSET >> 2::stride >> 2].tobytes() != wire.U32.pack(stride) * count:
            return 0
        if halves[wire.TYPE_OFFSET >> 1::stride >> 1].tobytes() != wire.U16.pack(msgtype) * count:
            return 0
    finally:
        halves.release()
        words.release()
        view.release()
    return stride


def _truncated(mlen, off, size):
    return CollectError("truncated netlink message: length %d at offset %d of a %d-byte datagram" % (mlen, off, size))


def control(buf, off, mlen, mtype, size):
    """Handle a message that is not a complete socket: True for NLMSG_DONE, raise for NLMSG_ERROR, for a
    truncated message or a short inet_diag message, False for anything else (skipped, e.g. NLMSG_NOOP)."""
    if mlen < wire.NLMSGHDR_LEN or off + mlen > size:
        raise _truncated(mlen, off, size)
    if mtype in (NLMSG_DONE, NLMSG_ERROR):
        # Both carry an int: 0, or a negative errno. A dump that fails after it started (e.g. ENOENT when
        # no handler exists for the protocol) ends with NLMSG_DONE carrying the error (netlink_dump_done()).
        code = -wire.I32.unpack_from(buf, off + wire.NLMSGHDR_LEN)[0] if mlen >= wire.NLMSGHDR_LEN + wire.I32.size else 0
        if code <= 0:
            return mtype == NLMSG_DONE
        msg = "netlink sock_diag error: %s (errno %d)" % (os.strerror(code), code)
        if code in _REFUSED:
            raise NetlinkRefused(msg)
        raise CollectError(msg)
    if mtype in (SOCK_DIAG_BY_FAMILY, TCPDIAG_GETSOCK):
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

    def __init__(self, root="/", net="proc/net"):
        self.root = root
        self.net = net  # "proc/thread-self/net" in a thread that entered another namespace (see counters.py)

    def path(self, family):
        return os.path.join(self.root, self.net, "tcp" if family == AF_INET else "tcp6")

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
                out.extend(map(Socket._make, batch))
                if stop:
                    return out
        return out

    def scan(self, family, mask, detail, counts):
        """Batches of the sockets of ``family`` in ``mask`` read in ``detail`` (tuples in Socket's field order), all
        of them counted into ``counts``."""
        detail &= mask
        for lines in self._chunks(family):
            for batch, _stop in self._parse(family, lines, mask, detail, counts):
                yield batch

    @staticmethod
    def _parse(family, lines, mask, detail, counts, until_other=False, tick_ms=1000.0 / (os.sysconf("SC_CLK_TCK") or 100)):
        """Parse /proc lines. Positions are relative to the first ':' because ``sl`` widens past 9999."""
        base = count_cell(FAMILY_SLOT[family], 0)
        ipv4 = count_cell(IPV4_SLOT, 0)
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
            cells = base
            if v6 and raddr_hex[:24] == _PROC_MAPPED:
                cells = ipv4
            counts[cells + state] += 1
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
            # tm->when: clock ticks left on the socket's timer (jiffies_delta_to_clock_t() in tcp_ipv4.c).
            when = int(line[col + queues_at + 21:col + queues_at + 29], 16)
            # A plain tuple in Socket's field order (see socket_records.py).
            append((state, int(line[col + lport_at:col + lport_at + 4], 16),
                    int(line[col + rport_at:col + rport_at + 4], 16), src, dst, rxq, txq,
                    int(fields[0]), int(fields[2]), int(when * tick_ms)))
        yield batch, False
