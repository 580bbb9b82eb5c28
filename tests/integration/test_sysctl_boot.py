# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""sysctl_facts against the real systemd-sysctl: what the facts say boot applies is what boot leaves in /proc/sys.

Each layout is generated from a seed (same basenames across /etc, /run, /usr/local/lib and /usr/lib, the
99-sysctl.conf symlink, '-' prefixes, exclusions, globs with braces and brackets, /dev/null masks, files that
are not read, tabs and CRLF, both key spellings, interfaces named eth0.100 and bond0.20) and replayed by
tests/integration/sysctl_boot_lab.py in a private mount namespace and a fresh network namespace, writing only
per-namespace net.ipv4 keys. Each namespace starts as boot does: ``default`` at the kernel's boot-time values, the
interfaces copies of it, ``lo`` up. Values the layouts write are often the ones already there, so systemd-sysctl
skips writes (an interface stays unmarked and a later ``default`` write reaches it), and ``default`` never
reaches ``lo``: the cases the boot model replays (docs/sysctl.md). The VM tests (tests/vm) check the same model
on real boots. Replay one failing layout with::

    LINUXNET_TCP_BOOT_SEED=<seed> LINUXNET_TCP_BOOT_LAYOUTS=1 .venv/bin/python -m pytest tests/integration/test_sysctl_boot.py
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

import sysctl_boot_lab as lab

pytestmark = pytest.mark.live

SEED = int(os.environ.get("LINUXNET_TCP_BOOT_SEED", "1100"))
LAYOUTS = int(os.environ.get("LINUXNET_TCP_BOOT_LAYOUTS", "60"))


def _usable():
    return os.geteuid() == 0 and lab.SYSTEMD_SYSCTL is not None and shutil.which("unshare") and shutil.which("ip")


@pytest.mark.skipif(not _usable(), reason="needs root, systemd-sysctl, unshare and iproute2")
def test_facts_predict_what_systemd_sysctl_applies(tmp_path):
    out = str(tmp_path / "report.json")
    proc = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable, lab.__file__, "random",
                           "--seed", str(SEED), "--count", str(LAYOUTS), "--out", out],
                          capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=lab.COLLECTIONS), timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(out) as handle:
        report = json.load(handle)
    assert len(report) == LAYOUTS
    failed = [r for r in report if r["mismatches"]]
    detail = ""
    if failed:
        first = failed[0]
        detail = "seed %d: [key, before, after systemd-sysctl, predicted by sysctl_facts]\n%s\nlayout:\n%s\nlog:\n%s" % (
            first["seed"], "\n".join(map(str, first["mismatches"])), json.dumps(first["layout"], indent=1), first["log"])
    assert not failed, "%d of %d layouts disagree; %s" % (len(failed), LAYOUTS, detail)
    # The layouts really exercise boot: most set keys, and together they set interface keys with a dot.
    assert sum(1 for r in report if r["persisted"] > 0) > LAYOUTS * 0.8
    assert any(r["keys"] > 100 for r in report)  # every net.ipv4 key of the probe namespace was read and compared
    # The skip case really happened: some interface key that a line assigns kept its value through systemd-sysctl.
    assert sum(r["skipped_interface_writes"] for r in report) > 0
    # Keys of eth0.100 and bond0.20 (spelled with '/') that boot sets were really compared, not only plain keys.
    assert sum(r["dotted_interface_keys"] for r in report) > 0
    assert all(r["dotted_interface_keys"] <= r["persisted"] for r in report)


def test_generator_is_seeded_and_stays_in_net_ipv4():
    assert lab.generate(42) == lab.generate(42) and lab.generate(42) != lab.generate(43)
    for seed in range(200):
        layout = lab.generate(seed)
        for text in list(layout["files"].values()) + [layout["sysctl_conf"]]:
            for line in text.replace("\r", "\n").split("\n"):
                line = line.strip()
                if not line or line[0] in "#;" or line == "not an assignment":
                    continue
                key = line.split("=", 1)[0].strip().lstrip("-").strip()
                assert key.lstrip("/").startswith(("net.ipv4.", "net/ipv4/")), line


def test_dotted_interface_keys_counts_only_compared_keys_of_dotted_interfaces():
    result = {"before": {"net.ipv4.conf.eth0/100.rp_filter": "7", "net.ipv4.conf.lo.rp_filter": "7"},
              "after": {"net.ipv4.conf.eth0/100.rp_filter": "1", "net.ipv4.conf.lo.rp_filter": "1"},
              "facts": {"persisted": {"net.ipv4.conf.eth0/100.rp_filter": {"value": "1"}, "net.ipv4.conf.lo.rp_filter": {"value": "1"},
                                      "net.ipv4.conf.bond0/20.no_such_leaf": {"value": "1"}}}}
    assert lab.dotted_interface_keys(result) == 1
    assert lab.compare(result) == []
