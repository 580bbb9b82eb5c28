# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
import pytest

from ansible_collections.linuxnet.tcp.plugins.module_utils import _sysctl_files as files
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl_keys import SysctlError

from sysctl_fixtures import DROPIN  # pylint: disable=wrong-import-order


@pytest.mark.parametrize("name, file, expected", [
    ("web", None, DROPIN),
    ("db-primary.v2", None, "/etc/sysctl.d/90-linuxnet-db-primary.v2.conf"),
    ("web", "/run/sysctl.d/50-web.conf", "/run/sysctl.d/50-web.conf"),
])
def test_dropin_path(name, file, expected):
    assert files.dropin_path(name, file) == expected


@pytest.mark.parametrize("name, file, words", [
    ("../../etc/passwd", None, "name"),
    ("a/b", None, "name"),
    ("a..b", None, "name"),
    (".hidden", None, "name"),
    ("", None, "name"),
    (5, None, "name"),
    ("web", "relative.conf", "absolute"),
    ("web", "/etc/sysctl.d/x.txt", ".conf"),
    ("web", "/etc/sysctl.d/../sysctl.d/x.conf", "normalised"),
    ("web", "/etc/sysctl.conf", "never edits /etc/sysctl.conf"),
    ("web", "/etc/sysctl.d/99-sysctl.conf", "never edits /etc/sysctl.conf"),
])
def test_dropin_path_rejects(name, file, words):
    with pytest.raises(SysctlError) as err:
        files.dropin_path(name, file)
    assert words in str(err.value)


def test_render_is_stable_and_marks_module_keys():
    text = files.render("web", [("net.netfilter.nf_conntrack_max", "262144", True), ("net.core.somaxconn", "8192", False)])
    assert text.startswith(files.MARKER)
    lines = text.splitlines()
    assert lines[-2:] == ["net.core.somaxconn = 8192", "-net.netfilter.nf_conntrack_max = 262144"]
    assert text == files.render("web", [("net.core.somaxconn", "8192", False), ("net.netfilter.nf_conntrack_max", "262144", True)])
