# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The sock_diag wire format: the one place that knows where each field of a netlink message lies.

A dump reply is a run of messages, each a ``nlmsghdr`` (16 bytes) followed by an ``inet_diag_msg``; a message is
padded to a multiple of 4 bytes (NLMSG_ALIGN). Offsets below are from the start of the message (nlmsghdr included),
which is how both the dump (``sockets.NetlinkBackend``) and the tally that folds whole datagrams
(``tally.Tally.block``, which reads one field of every message with one extended slice ``data[OFFSET:size:stride]``)
address them. Everything here is layout: no I/O, no policy.

Sources: ``include/uapi/linux/netlink.h`` (nlmsghdr), ``include/uapi/linux/inet_diag.h`` (inet_diag_req_v2,
inet_diag_req, inet_diag_sockid, inet_diag_msg, inet_diag_bc_op), ``include/uapi/linux/sock_diag.h``; the kernel
side: ``net/ipv4/inet_diag.c``.

    offset  size  field                                  byte order
         0     4  nlmsg_len                              host
         4     2  nlmsg_type                             host
         6    10  nlmsg_flags, nlmsg_seq, nlmsg_pid      host
        16     1  idiag_family
        17     1  idiag_state
        18     2  idiag_timer, idiag_retrans
        20     2  id.idiag_sport                         big endian
        22     2  id.idiag_dport                         big endian
        24    16  id.idiag_src (IPv4: first 4 bytes)
        40    16  id.idiag_dst (IPv4: first 4 bytes)
        56     4  id.idiag_if                            host
        60     8  id.idiag_cookie                        host
        68     4  idiag_expires (ms)                     host
        72     4  idiag_rqueue                           host
        76     4  idiag_wqueue                           host
        80     4  idiag_uid                              host
        84     4  idiag_inode                            host
        88        end of inet_diag_msg; attributes follow in full sockets' messages
"""

import struct

# Netlink and sock_diag numbers.
NETLINK_SOCK_DIAG = 4
TCPDIAG_GETSOCK = 18
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST_DUMP = 0x301  # NLM_F_REQUEST | NLM_F_ROOT | NLM_F_MATCH
NLMSG_ERROR = 2
NLMSG_DONE = 3
IPPROTO_TCP = 6
INET_DIAG_REQ_BYTECODE = 1
BC_JMP, BC_S_LE, BC_D_LE = 1, 3, 5  # inet_diag_bc_op codes used by the port filter

# Message offsets (see the table above).
NLMSGHDR_LEN = 16
LEN_OFFSET = 0
TYPE_OFFSET = 4
FAMILY_OFFSET = 16
STATE_OFFSET = 17
SPORT_OFFSET = 20
DPORT_OFFSET = 22
SRC_OFFSET = 24
DST_OFFSET = 40
ADDRESS_LEN = 16
EXPIRES_OFFSET = 68
RQUEUE_OFFSET = 72
UID_OFFSET = 80
DIAG_MIN = NLMSGHDR_LEN + 72  # nlmsghdr + inet_diag_msg, the smallest valid socket message

# Requests: nlmsghdr (16 bytes) + inet_diag_req_v2 (family, protocol, ext, pad, states) + a zeroed 48-byte sockid.
REQUEST = struct.Struct("=IHHIIBBBxI48x")
# nlmsghdr + the legacy inet_diag_req: family, src_len, dst_len, ext, a zeroed sockid, states, dbs. The kernel
# turns it into an AF_UNSPEC dump (inet_diag_dump_compat()): both families in one walk of the hash.
REQUEST_V1 = struct.Struct("=IHHIIBBBB48xII")
BC_OP = struct.Struct("=BBH")  # inet_diag_bc_op: code, yes, no
NLATTR = struct.Struct("=HH")  # nlattr: len, type

# Replies.
U32 = struct.Struct("=I")
U16 = struct.Struct("=H")
I32 = struct.Struct("=i")  # the error code of NLMSG_ERROR and NLMSG_DONE, at NLMSGHDR_LEN
HDR = struct.Struct("=IH")  # nlmsg_len, nlmsg_type
# family, state, timer, retrans, sport, dport, src, dst at FAMILY_OFFSET. Bytes and big-endian ports decode the
# same on every host, so '>' is right for this part...
HEAD = struct.Struct(">xBxxHH16s16s")
HEAD_OFFSET = FAMILY_OFFSET
# ...while rqueue, wqueue, uid and inode are host-endian.
TAIL = struct.Struct("=IIII")
TAIL_OFFSET = RQUEUE_OFFSET
PORTS = struct.Struct(">HH")  # sport, dport at SPORT_OFFSET
OWNER = struct.Struct("=II")  # uid, inode at UID_OFFSET

# The aggregation key of a socket: the KEY_LEN contiguous bytes of inet_diag_sockid from dport to dst (dport, src,
# dst), as the message carries them; KEY_SRC and KEY_DST are where src and dst lie inside it.
KEY_LEN = DST_OFFSET + ADDRESS_LEN - DPORT_OFFSET
KEY_SRC = slice(SRC_OFFSET - DPORT_OFFSET, DST_OFFSET - DPORT_OFFSET)
KEY_DST = slice(DST_OFFSET - DPORT_OFFSET, KEY_LEN)
KEY_PORT_SRC = slice(0, DST_OFFSET - DPORT_OFFSET)  # dport and src: the tie-breaker after dst when keys are ranked
_KEY_PORT = struct.Struct(">H")
_KEYS = {}


def key_struct(stride):
    """struct.Struct reading the key of each message of a block of ``stride``-byte messages (iter_unpack)."""
    found = _KEYS.get(stride)
    if found is None:
        found = _KEYS[stride] = struct.Struct("=%dx%ds%dx" % (DPORT_OFFSET, KEY_LEN, stride - DPORT_OFFSET - KEY_LEN))
    return found


def make_key(dport, src, dst):
    """The aggregation key from record fields (host-order port, 16-byte addresses), as a message carries it."""
    return _KEY_PORT.pack(dport) + src + dst


def key_port(key):
    """The remote port (dport) of an aggregation key, host order."""
    return _KEY_PORT.unpack_from(key)[0]


def aligned(length):
    """NLMSG_ALIGN: the offset from one message to the next."""
    return (length + 3) & ~3
