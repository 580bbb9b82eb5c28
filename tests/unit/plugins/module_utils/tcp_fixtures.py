"""Shared helpers for the tcp_facts unit tests: replay recorded netlink dumps, build fake /proc trees."""
from __future__ import annotations

import os
import shutil
import struct

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "fixtures", "tcp")
REQ = struct.Struct("=IHHIIBBBxI48x")
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


class FakeNetlink:
    """Socket stand-in replaying recorded all-states dumps; filters by the request's state mask like the kernel."""

    def __init__(self, dumps=None, requests=None, grams_override=None):
        self.dumps = dumps or {2: "netlink-inet.bin", 10: "netlink-inet6.bin"}
        self.requests = requests if requests is not None else []
        self.grams_override = grams_override
        self.queue = []

    def __call__(self):
        return self

    def bind(self, addr):
        assert addr == (0, 0)

    def send(self, data):
        fields = REQ.unpack(data)
        assert fields[0] == 72 and fields[1] == 20 and fields[2] == 0x301
        family, proto, mask = fields[5], fields[6], fields[8]
        assert proto == 6
        self.requests.append((family, mask))
        if self.grams_override is not None:
            self.queue = list(self.grams_override)
            return len(data)
        out = []
        for gram in read_datagrams(self.dumps[family]):
            kept = b"".join(msg + b"\0" * (-len(msg) % 4) for mtype, msg in messages(gram)
                            if mtype != 20 or mask & (1 << msg[17]))
            if kept:
                out.append(kept)
        self.queue = out
        return len(data)

    def recv_into(self, buf):
        gram = self.queue.pop(0)
        buf[:len(gram)] = gram
        return len(gram)

    def close(self):
        pass


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
