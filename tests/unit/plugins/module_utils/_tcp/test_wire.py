"""The wire layout against the kernel's structures, declared here as include/uapi/linux/{netlink,inet_diag}.h write
them (ctypes lays them out by the C rules, independently of the offsets written in wire.py), and against a recorded
dump."""
import ctypes
import struct

import pytest
from ansible_collections.linuxnet.tcp.tests.unit.plugins.module_utils.tcp_fixtures import (  # pylint: disable=wrong-import-order
    messages, read_datagrams)

from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp import wire


class NlMsgHdr(ctypes.Structure):
    _fields_ = [("nlmsg_len", ctypes.c_uint32), ("nlmsg_type", ctypes.c_uint16), ("nlmsg_flags", ctypes.c_uint16),
                ("nlmsg_seq", ctypes.c_uint32), ("nlmsg_pid", ctypes.c_uint32)]


class SockId(ctypes.Structure):
    _fields_ = [("idiag_sport", ctypes.c_uint16), ("idiag_dport", ctypes.c_uint16), ("idiag_src", ctypes.c_uint32 * 4),
                ("idiag_dst", ctypes.c_uint32 * 4), ("idiag_if", ctypes.c_uint32), ("idiag_cookie", ctypes.c_uint32 * 2)]


class DiagMsg(ctypes.Structure):
    _fields_ = [("idiag_family", ctypes.c_uint8), ("idiag_state", ctypes.c_uint8), ("idiag_timer", ctypes.c_uint8),
                ("idiag_retrans", ctypes.c_uint8), ("id", SockId), ("idiag_expires", ctypes.c_uint32),
                ("idiag_rqueue", ctypes.c_uint32), ("idiag_wqueue", ctypes.c_uint32), ("idiag_uid", ctypes.c_uint32),
                ("idiag_inode", ctypes.c_uint32)]


class Message(ctypes.Structure):
    _fields_ = [("hdr", NlMsgHdr), ("msg", DiagMsg)]


class ReqV2(ctypes.Structure):
    _fields_ = [("hdr", NlMsgHdr), ("sdiag_family", ctypes.c_uint8), ("sdiag_protocol", ctypes.c_uint8),
                ("idiag_ext", ctypes.c_uint8), ("pad", ctypes.c_uint8), ("idiag_states", ctypes.c_uint32), ("id", SockId)]


class ReqV1(ctypes.Structure):
    _fields_ = [("hdr", NlMsgHdr), ("idiag_family", ctypes.c_uint8), ("idiag_src_len", ctypes.c_uint8),
                ("idiag_dst_len", ctypes.c_uint8), ("idiag_ext", ctypes.c_uint8), ("id", SockId),
                ("idiag_states", ctypes.c_uint32), ("idiag_dbs", ctypes.c_uint32)]


def offset(*path):
    """Offset of a (nested) field of Message."""
    kind, total = Message, 0
    for name in path:
        field = getattr(kind, name)
        total += field.offset
        kind = dict((n, t) for n, t in kind._fields_)[name]
    return total


@pytest.mark.parametrize("constant, path", [
    (wire.LEN_OFFSET, ("hdr", "nlmsg_len")), (wire.TYPE_OFFSET, ("hdr", "nlmsg_type")),
    (wire.FAMILY_OFFSET, ("msg", "idiag_family")), (wire.STATE_OFFSET, ("msg", "idiag_state")),
    (wire.SPORT_OFFSET, ("msg", "id", "idiag_sport")), (wire.DPORT_OFFSET, ("msg", "id", "idiag_dport")),
    (wire.SRC_OFFSET, ("msg", "id", "idiag_src")), (wire.DST_OFFSET, ("msg", "id", "idiag_dst")),
    (wire.EXPIRES_OFFSET, ("msg", "idiag_expires")), (wire.RQUEUE_OFFSET, ("msg", "idiag_rqueue")),
    (wire.UID_OFFSET, ("msg", "idiag_uid")),
])
def test_offsets_are_the_kernels(constant, path):
    assert constant == offset(*path)


def test_sizes_are_the_kernels():
    assert wire.NLMSGHDR_LEN == ctypes.sizeof(NlMsgHdr) and wire.DIAG_MIN == ctypes.sizeof(Message)
    assert wire.ADDRESS_LEN == ctypes.sizeof(ctypes.c_uint32 * 4)
    assert wire.REQUEST.size == ctypes.sizeof(ReqV2) and wire.REQUEST_V1.size == ctypes.sizeof(ReqV1)
    assert (wire.HEAD_OFFSET, wire.HEAD.size) == (offset("msg", "idiag_family"), offset("msg", "id", "idiag_if") - offset("msg"))
    assert (wire.TAIL_OFFSET, wire.TAIL.size) == (offset("msg", "idiag_rqueue"), ctypes.sizeof(Message) - offset("msg", "idiag_rqueue"))
    assert wire.KEY_LEN == offset("msg", "id", "idiag_if") - offset("msg", "id", "idiag_dport")


def test_fields_of_a_message_built_by_the_c_layout():
    raw = Message()
    raw.hdr.nlmsg_len, raw.hdr.nlmsg_type = ctypes.sizeof(Message), wire.SOCK_DIAG_BY_FAMILY
    raw.msg.idiag_family, raw.msg.idiag_state = 10, 8
    # __be16 ports: network order in memory, whatever the host's.
    sport, dport = 8080, 3306
    raw.msg.id.idiag_sport, raw.msg.id.idiag_dport = (struct.unpack("=H", struct.pack(">H", port))[0] for port in (sport, dport))
    src, dst = bytes(range(1, 17)), bytes(range(101, 117))
    ctypes.memmove(ctypes.addressof(raw.msg.id.idiag_src), src, 16)
    ctypes.memmove(ctypes.addressof(raw.msg.id.idiag_dst), dst, 16)
    raw.msg.idiag_expires, raw.msg.idiag_rqueue, raw.msg.idiag_wqueue = 59000, 3, 128
    raw.msg.idiag_uid, raw.msg.idiag_inode = 1000, 4242
    data = bytes(raw)
    assert wire.HDR.unpack_from(data) == (ctypes.sizeof(Message), wire.SOCK_DIAG_BY_FAMILY)
    assert data[wire.FAMILY_OFFSET] == 10
    assert wire.HEAD.unpack_from(data, wire.HEAD_OFFSET) == (8, sport, dport, src, dst)  # state onwards
    assert wire.TAIL.unpack_from(data, wire.TAIL_OFFSET) == (3, 128, 1000, 4242)
    assert wire.PORTS.unpack_from(data, wire.SPORT_OFFSET) == (sport, dport)
    assert wire.OWNER.unpack_from(data, wire.UID_OFFSET) == (1000, 4242)
    assert wire.U32.unpack_from(data, wire.EXPIRES_OFFSET) == (59000,)
    stride = wire.aligned(len(data) + 1)
    block = (data + b"\0" * (stride - len(data))) * 2
    key = wire.make_key(dport, src, dst)
    assert [k for (k,) in wire.key_struct(stride).iter_unpack(block)] == [key, key]
    assert (key[wire.KEY_SRC], key[wire.KEY_DST], wire.key_port(key)) == (src, dst, dport)
    assert key[wire.KEY_PORT_SRC] + key[wire.KEY_DST] == key and len(key) == wire.KEY_LEN


@pytest.mark.parametrize("length, aligned", [(88, 88), (89, 92), (90, 92), (92, 92), (116, 116), (117, 120)])
def test_aligned(length, aligned):
    assert wire.aligned(length) == aligned


def test_recorded_messages_read_at_these_offsets():
    """Every socket message of the recorded dump: a known family and state, and the header's own length."""
    seen = 0
    for gram in read_datagrams("netlink-inet.bin") + read_datagrams("netlink-inet6.bin"):
        for kind, msg in messages(gram):
            if kind != wire.SOCK_DIAG_BY_FAMILY:
                continue
            family, state = msg[wire.FAMILY_OFFSET], msg[wire.STATE_OFFSET]
            assert family in (2, 10) and 1 <= state <= 11 and len(msg) >= wire.DIAG_MIN
            assert wire.HDR.unpack_from(msg)[0] == len(msg)
            seen += 1
    assert seen == 30  # the 30 sockets of the recording (ss-tan.txt)
