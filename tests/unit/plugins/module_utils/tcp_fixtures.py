"""Shared helpers for the tcp_facts unit tests: replay recorded netlink dumps, build fake /proc trees."""
import os
import shutil
import struct

from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp.socket_records import Socket

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "fixtures", "tcp")
REQ = struct.Struct("=IHHIIBBBxI48x")
REQ_V1 = struct.Struct("=IHHIIBBBB48xII")
SS_STATES = {"ESTAB": "ESTABLISHED", "SYN-SENT": "SYN_SENT", "SYN-RECV": "SYN_RECV", "FIN-WAIT-1": "FIN_WAIT1",
             "FIN-WAIT-2": "FIN_WAIT2", "TIME-WAIT": "TIME_WAIT", "UNCONN": "CLOSE", "CLOSE-WAIT": "CLOSE_WAIT",
             "LAST-ACK": "LAST_ACK", "LISTEN": "LISTEN", "CLOSING": "CLOSING"}


def fixture_path(name):
    return os.path.join(FIXTURES, name)


def read_datagrams(name):
    """Datagrams of a recorded dump (each stored behind a little-endian u32 length)."""
    with open(fixture_path(name), "rb") as handle:
        data = handle.read()
    grams, off = [], 0
    while off < len(data):
        (size,) = struct.unpack_from("<I", data, off)
        grams.append(data[off + 4:off + 4 + size])
        off += 4 + size
    return grams


def messages(gram):
    off = 0
    while off < len(gram):
        mlen, mtype = struct.unpack_from("=IH", gram, off)
        yield mtype, gram[off:off + mlen]
        off += (mlen + 3) & ~3


def ss_counts():
    """Per-state counts from the ss -tanH output recorded with the dumps (the independent truth)."""
    counts = {}
    with open(fixture_path("ss-tan.txt"), encoding="ascii") as handle:
        for line in handle:
            if line.strip():
                name = SS_STATES[line.split()[0]]
                counts[name] = counts.get(name, 0) + 1
    return counts


def run_bytecode(code, sport, dport):
    """The kernel's inet_diag_bc_run() for the port operations this collection sends."""
    off, length = 0, len(code)
    while length > 0:
        op, yes, no = struct.unpack_from("=BBH", code, off)
        if op == 1:  # JMP
            result = False
        elif op in (2, 3, 4, 5):  # S_GE, S_LE, D_GE, D_LE
            port = struct.unpack_from("=BBH", code, off + 4)[2]
            value = sport if op in (2, 3) else dport
            result = value >= port if op in (2, 4) else value <= port
        else:
            raise AssertionError("unexpected bytecode op %d" % op)
        step = yes if result else no
        off += step
        length -= step
    return length == 0


def assert_audit_passes(code):
    """The checks of the kernel's inet_diag_bc_audit() and valid_cc() for port comparisons and JMP: a
    program the kernel would refuse with EINVAL fails here."""
    def valid_cc(length, target):
        off = 0
        while length >= 0:
            if target > length:
                return False
            if target == length:
                return True
            yes = code[off + 1]
            assert yes >= 4 and not yes & 3
            length -= yes
            off += yes
        return False

    off, length = 0, len(code)
    while length > 0:
        op, yes, no = struct.unpack_from("=BBH", code, off)
        assert op in (1, 2, 3, 4, 5), op
        min_len = 8 if op != 1 else 4
        assert length >= min_len
        assert min_len <= no <= length + 4 and not no & 3, (off, no)
        assert no >= length or valid_cc(len(code), length - no), (off, no)
        assert min_len <= yes <= length + 4 and not yes & 3, (off, yes)
        off += yes
        length -= yes
    assert length == 0


class FakeNetlink:
    """Opener of fake sock_diag sockets replaying recorded all-states dumps, filtered like the kernel: by the
    request's state mask and by its bytecode (port comparisons). A legacy TCPDIAG_GETSOCK request gets both
    families in one dump (messages of type 18), or NLMSG_ERROR EOPNOTSUPP when ``compat`` is False."""

    def __init__(self, dumps=None, requests=None, grams_override=None, compat=True):
        self.dumps = dumps or {2: "netlink-inet.bin", 10: "netlink-inet6.bin"}
        self.requests = requests if requests is not None else []
        self.grams_override = grams_override
        self.compat = compat
        self.opened = []

    def __call__(self):
        sock = FakeSocket(self)
        self.opened.append(sock)
        return sock

    def replies(self, data):
        mlen, mtype, flags = struct.unpack_from("=IHH", data)
        assert mlen == len(data) and flags == 0x301
        if mtype == 18:
            fields = REQ_V1.unpack_from(data)
            families, mask, hdrlen = (2, 10), fields[9], REQ_V1.size
        else:
            assert mtype == 20
            fields = REQ.unpack_from(data)
            assert fields[6] == 6
            families, mask, hdrlen = (fields[5],), fields[8], REQ.size
        code = b""
        if len(data) > hdrlen:
            alen, atype = struct.unpack_from("=HH", data, hdrlen)
            assert atype == 1 and hdrlen + alen == len(data)
            code = data[hdrlen + 4:]
        self.requests.append((mtype, families[0] if len(families) == 1 else 0, mask, code))
        if self.grams_override is not None:
            return list(self.grams_override)
        if mtype == 18 and not self.compat:
            err = struct.pack("=IHHII", 36, 2, 0, 0, 0) + struct.pack("=i", -95) + data[:16]
            return [err]
        out = []
        for index, family in enumerate(families):
            for gram in read_datagrams(self.dumps[family]):
                kept = []
                for kind, msg in messages(gram):
                    if kind == 20:
                        if not mask & (1 << msg[17]):
                            continue
                        sport, dport = struct.unpack_from(">HH", msg, 20)
                        if code and not run_bytecode(code, sport, dport):
                            continue
                        msg = msg[:4] + struct.pack("=H", mtype) + msg[6:]
                    elif kind == 3 and index < len(families) - 1:
                        continue  # one NLMSG_DONE, after the last family
                    kept.append(msg + b"\0" * (-len(msg) % 4))
                if kept:
                    out.append(b"".join(kept))
        return out


class FakeSocket:
    def __init__(self, opener):
        self.opener = opener
        self.queue = []
        self.closed = False

    def settimeout(self, value):
        assert value > 0

    def bind(self, addr):
        assert addr == (0, 0)

    def send(self, data):
        self.queue = self.opener.replies(bytes(data))
        return len(data)

    def recv_into(self, buf):
        # A real dump socket blocks (until its timeout) once NLMSG_DONE has been read: a reader that gets
        # here has missed the end of its dump.
        assert self.queue, "read past the end of the dump (NLMSG_DONE missed)"
        gram = self.queue.pop(0)
        buf[:len(gram)] = gram
        return len(gram)

    def close(self):
        self.closed = True


def fake_proc(root, tcp="proc-net-tcp.txt", tcp6="proc-net-tcp6.txt", extra=None):
    """A fake root with /proc/net/tcp{,6} from the fixtures plus counter files; returns root."""
    net = os.path.join(root, "proc", "net")
    os.makedirs(net, exist_ok=True)
    if tcp:
        shutil.copy(fixture_path(tcp), os.path.join(net, "tcp"))
    if tcp6:
        shutil.copy(fixture_path(tcp6), os.path.join(net, "tcp6"))
    files = {
        "proc/net/sockstat": "sockets: used 40\nTCP: inuse 20 orphan 1 tw 7 alloc 30 mem 4\nUDP: inuse 0 mem 0\n",
        "proc/net/sockstat6": "TCP6: inuse 9\nUDP6: inuse 0\n",
        "proc/net/netstat": "TcpExt: SyncookiesSent ListenOverflows ListenDrops TW\nTcpExt: 0 5 6 100\n"
                            "IpExt: InNoRoutes\nIpExt: 0\n",
        "proc/net/snmp": "Ip: Forwarding\nIp: 1\nTcp: RtoAlgorithm CurrEstab ActiveOpens\nTcp: 1 14 200\n",
        "proc/sys/net/ipv4/ip_local_port_range": "32768\t60999\n",
    }
    files.update(extra or {})
    for rel, text in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if text is not None:
            with open(path, "w", encoding="ascii") as handle:
                handle.write(text)
    return root


# Addresses (16 raw bytes, IPv4 in the first four) and settings the tally and report tests share.
ME4 = b"\x0a\0\0\x01" + b"\0" * 12
DB4 = b"\x0a\0\0\x05" + b"\0" * 12
LO4 = b"\x7f\0\0\x01" + b"\0" * 12
REUSE_ON = {"tcp_tw_reuse": 1, "tcp_tw_reuse_delay": 1000, "tcp_timestamps": 1}


def record(*fields):
    """A socket_records.Socket from its fields in order; ``timer_ms`` None when left out (as netlink records have it)."""
    return Socket._make(fields + (None,) * (len(Socket._fields) - len(fields)))
