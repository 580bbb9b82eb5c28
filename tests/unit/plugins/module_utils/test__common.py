# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_common: paths under a root, regular-file-only reading, and the one root of the collection's errors."""
import os
import signal

import pytest

from ansible_collections.linuxnet.tcp.plugins.module_utils import _common as common
from ansible_collections.linuxnet.tcp.plugins.module_utils._host.netns import NetnsError
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.files import LockTimeout, OwnedFileError, ProfileError
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.ipvs import IpvsError
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.keys import SysctlError
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.tree import ApplyError
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp.counters import KstatsError
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp.sockets import CollectError, NetlinkRefused


@pytest.mark.parametrize("root, path, expected", [
    ("/", "/etc/sysctl.d", "/etc/sysctl.d"),
    ("/tmp/t", "/etc/sysctl.d/a.conf", "/tmp/t/etc/sysctl.d/a.conf"),
    ("/tmp/t", "etc/x", "/tmp/t/etc/x"),
    ("/tmp/t", "//proc//sys", "/tmp/t/proc//sys"),
])
def test_host_path_maps_target_paths_into_the_root(root, path, expected):
    assert common.host_path(root, path) == expected


def test_links_are_followed_inside_the_root(tmp_path):
    root = str(tmp_path)
    os.makedirs(os.path.join(root, "etc", "sysctl.d"))
    os.makedirs(os.path.join(root, "usr", "lib"))
    with open(os.path.join(root, "usr", "lib", "real.conf"), "w") as handle:
        handle.write("net.ipv4.tcp_fin_timeout = 30\n")
    # An absolute link resolves under the root, not on the host running the test; a relative one beside the link.
    os.symlink("/usr/lib/real.conf", os.path.join(root, "etc", "sysctl.d", "abs.conf"))
    os.symlink("../../usr/lib/real.conf", os.path.join(root, "etc", "sysctl.d", "rel.conf"))
    os.symlink("/dev/null", os.path.join(root, "etc", "sysctl.d", "masked.conf"))
    assert common.resolve(root, "/etc/sysctl.d/abs.conf") == os.path.join(root, "usr/lib/real.conf")
    assert common.read_text(root, "/etc/sysctl.d/abs.conf") == "net.ipv4.tcp_fin_timeout = 30\n"
    assert common.read_text(root, "/etc/sysctl.d/rel.conf") == "net.ipv4.tcp_fin_timeout = 30\n"
    # systemd's way to mask a file: an empty regular file, never the host's /dev/null device.
    assert common.resolve(root, "/etc/sysctl.d/masked.conf") is None
    assert common.read_text(root, "/etc/sysctl.d/masked.conf") == ""
    assert common.special_kind(root, "/etc/sysctl.d/masked.conf") is None
    assert common.read_text(root, "/etc/sysctl.d/missing.conf") is None
    assert common.special_kind(root, "/etc/sysctl.d/missing.conf") is None


def test_a_link_loop_is_unreadable_not_a_hang(tmp_path):
    root = str(tmp_path)
    os.symlink("/b", os.path.join(root, "a"))
    os.symlink("/a", os.path.join(root, "b"))
    assert common.read_text(root, "/a") is None


def test_what_is_not_a_regular_file_is_named_and_never_opened(tmp_path):
    root = str(tmp_path)
    os.mkfifo(os.path.join(root, "fifo"))
    os.mkdir(os.path.join(root, "dir"))
    os.symlink("/fifo", os.path.join(root, "to-fifo"))
    assert common.special_kind(root, "/fifo") == "a FIFO"
    assert common.special_kind(root, "/to-fifo") == "a FIFO"
    assert common.special_kind(root, "/dir") == "a directory"
    assert common.special_kind(root, "/dev/null") is None  # read under the root, where no /dev/null exists: not the host device
    # Opening a FIFO for reading blocks until a writer comes: read_text must return at once.
    previous = signal.signal(signal.SIGALRM, lambda *_args: pytest.fail("read_text blocked on a FIFO"))
    signal.alarm(5)
    try:
        assert common.read_text(root, "/fifo") is None
        assert common.read_text(root, "/to-fifo") is None
        assert common.read_text(root, "/dir") is None
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_read_text_decodes_bad_bytes_instead_of_failing(tmp_path):
    root = str(tmp_path)
    with open(os.path.join(root, "f"), "wb") as handle:
        handle.write(b"a = \xff\n" + b"x" * 200000)
    text = common.read_text(root, "/f")
    assert text.startswith("a = \ufffd\n") and len(text) == 6 + 200000


def test_listed_files_follow_systemds_conf_files_rules(tmp_path):
    root = str(tmp_path)
    for path, text in (("/etc/x.d/20-b.conf", "etc b"), ("/usr/lib/x.d/20-b.conf", "usr b"), ("/usr/lib/x.d/10-a.conf", "usr a"),
                       ("/run/x.d/.hidden.conf", "hidden"), ("/etc/x.d/30-c.txt", "other suffix"), ("/etc/x.d/40-d.conf", "etc d")):
        os.makedirs(os.path.dirname(root + path), exist_ok=True)
        with open(root + path, "w") as handle:
            handle.write(text)
    os.mkfifo(root + "/etc/x.d/35-fifo.conf")
    # One file per name, the first directory winning; sorted by name whatever the directory; hidden names, other
    # suffixes, missing directories and what is not a regular file left out.
    assert common.listed_files(root, ["/etc/x.d", "/run/x.d", "/usr/lib/x.d", "/nowhere"], ".conf") == [
        ("/usr/lib/x.d/10-a.conf", "usr a"), ("/etc/x.d/20-b.conf", "etc b"), ("/etc/x.d/40-d.conf", "etc d")]


@pytest.mark.parametrize("error", [SysctlError, ProfileError, OwnedFileError, LockTimeout, ApplyError, IpvsError,
                                   NetnsError, KstatsError, CollectError, NetlinkRefused])
def test_every_domain_error_has_the_one_root(error):
    assert issubclass(error, common.LinuxnetError) and error is not common.LinuxnetError
