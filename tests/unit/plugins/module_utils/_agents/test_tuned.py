# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""TuneD's profiles (plugins/module_utils/_agents/tuned.py); its keys on recorded trees are in test_writers.py."""
import os
import shutil

import pytest

from ansible_collections.linuxnet.tcp.plugins.module_utils._agents import tuned as T
from ansible_collections.linuxnet.tcp.plugins.module_utils._agents import writers as A

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))), "fixtures", "agents")


def tuned_agent(root):
    return [agent for agent in A.detect(root) if agent["agent"] == "tuned"][0]


def test_tuned_reads_each_file_once(monkeypatch):
    """Every tuned.conf once, and the uname fields once for all the units with a uname_regex."""
    reads = []
    real = T.read_text

    def counting(root, path, *args, **kwargs):
        reads.append(path)
        return real(root, path, *args, **kwargs)

    monkeypatch.setattr(T, "read_text", counting)
    agent = tuned_agent(os.path.join(FIXTURES, "tuned-network-throughput"))
    assert "net.core.somaxconn" in agent["keys"] and "kernel.numa_balancing" not in agent["keys"]
    assert "/usr/lib/tuned/throughput-performance/tuned.conf" in reads and "/proc/sys/kernel/osrelease" in reads
    assert sorted(path for path in set(reads) if reads.count(path) > 1) == []


@pytest.mark.parametrize("value, expected", [
    ('"4096 87380 16777216"', "4096 87380 16777216"), ("'1'", "1"), ("4096\t87380   16777216", "4096 87380 16777216"),
    (' " 1 " ', "1"), ('"unbalanced', '"unbalanced'), ("", ""), (None, ""),
])
def test_unquote(value, expected):
    assert T._unquote(value) == expected


def test_a_profile_configparser_cannot_read_is_skipped(tmp_path):
    """A key without '=' continued on an indented line made configparser raise AttributeError before Python 3.13:
    the profile is skipped, the rest of the chain still counts, and detection does not fail."""
    root = str(tmp_path / "root")
    shutil.copytree(os.path.join(FIXTURES, "tuned-network-throughput"), root)
    path = os.path.join(root, "usr/lib/tuned/throughput-performance/tuned.conf")
    with open(path, "a") as handle:
        handle.write("\n[sysctl]\nbroken\n  continued\n")
    keys = tuned_agent(root)["keys"]
    assert "net.core.somaxconn" not in keys                       # the included profile's units are gone with its file
    assert keys["net.ipv4.tcp_rmem"]["value"] == "4096 87380 16777216"  # the active profile's own unit still counts
