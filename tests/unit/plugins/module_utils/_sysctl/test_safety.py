# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The safety table: every rule on both sides of its threshold, and the places that describe it to users."""
import os
import re

import pytest

from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import catalog
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import safety
from ansible_collections.linuxnet.tcp.plugins.modules import sysctl_profile

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "..")
# The running values of a default host (kernel 6.x, tcp_tw_reuse 2, no reserved ports).
BASE = {
    "net.ipv4.tcp_timestamps": "1", "net.ipv4.tcp_tw_reuse": "2", "net.ipv4.tcp_max_tw_buckets": "131072",
    "net.ipv4.tcp_max_orphans": "131072", "net.ipv4.ip_unprivileged_port_start": "1024",
    "net.ipv4.ip_local_port_range": "32768 60999", "net.ipv4.ip_local_reserved_ports": "", "net.core.somaxconn": "4096",
}
LISTENERS = (22, 5432, 8080)
RANGE = "net.ipv4.ip_local_port_range"


@pytest.mark.parametrize("targets, running, listeners, refused_keys, words", [
    # tcp_tw_recycle: anything but 0.
    ({"net.ipv4.tcp_tw_recycle": "1"}, {}, (), ["net.ipv4.tcp_tw_recycle"], "NAT"),
    ({"net.ipv4.tcp_tw_recycle": "0"}, {}, (), [], ""),
    # tcp_timestamps 0 while tcp_tw_reuse is on, whichever of the two the run sets.
    ({"net.ipv4.tcp_timestamps": "0"}, {}, (), ["net.ipv4.tcp_timestamps"], "PAWS"),
    ({"net.ipv4.tcp_timestamps": "0", "net.ipv4.tcp_tw_reuse": "0"}, {}, (), [], ""),
    ({"net.ipv4.tcp_timestamps": "1", "net.ipv4.tcp_tw_reuse": "1"}, {}, (), [], ""),
    ({"net.ipv4.tcp_tw_reuse": "1"}, {"net.ipv4.tcp_timestamps": "0"}, (), ["net.ipv4.tcp_tw_reuse"], "PAWS"),
    # A host that already runs both, with a run that sets neither: nothing to refuse (was a KeyError).
    ({"net.core.somaxconn": "8192"}, {"net.ipv4.tcp_timestamps": "0"}, (), [], ""),
    # Capacity limits: never below the running value; equal or higher is fine.
    ({"net.ipv4.tcp_max_tw_buckets": "36000"}, {}, (), ["net.ipv4.tcp_max_tw_buckets"], "running value 131072, wanted 36000"),
    ({"net.ipv4.tcp_max_tw_buckets": "131072"}, {}, (), [], ""),
    ({"net.ipv4.tcp_max_orphans": "16384"}, {}, (), ["net.ipv4.tcp_max_orphans"], "must not be lowered"),
    ({"net.core.somaxconn": "1024"}, {}, (), ["net.core.somaxconn"], "write '>= 1024'"),
    ({"net.core.somaxconn": "1024"}, {"net.core.somaxconn": None}, (), [], ""),  # running value unknown
    # One integer below a limit.
    ({"net.ipv4.tcp_fin_timeout": "9"}, {}, (), ["net.ipv4.tcp_fin_timeout"], "below 10 s"),
    ({"net.ipv4.tcp_fin_timeout": "10"}, {}, (), [], ""),
    ({"net.ipv4.tcp_syn_retries": "2"}, {}, (), ["net.ipv4.tcp_syn_retries"], "tcp_syn_retries 2 makes connect() fail"),
    ({"net.ipv4.tcp_syn_retries": "3"}, {}, (), [], ""),
    ({"net.ipv4.tcp_synack_retries": "1"}, {}, (), ["net.ipv4.tcp_synack_retries"], "half-open"),
    ({"net.ipv4.tcp_synack_retries": "2"}, {}, (), [], ""),
    ({"net.netfilter.nf_conntrack_tcp_timeout_established": "3599"}, {}, (),
     ["net.netfilter.nf_conntrack_tcp_timeout_established"], "NAT and stateful firewalls"),
    ({"net.netfilter.nf_conntrack_tcp_timeout_established": "3600"}, {}, (), [], ""),
    ({"net.netfilter.nf_conntrack_tcp_timeout_close_wait": "59"}, {}, (), ["net.netfilter.nf_conntrack_tcp_timeout_close_wait"],
     "half-closed"),
    ({"net.netfilter.nf_conntrack_tcp_timeout_close_wait": "60"}, {}, (), [], ""),
    # The port range: its start against ip_unprivileged_port_start (1024 where the kernel has no such key) ...
    ({RANGE: "1023 65000"}, {}, (), [RANGE], "starts at 1023, below ip_unprivileged_port_start 1024"),
    ({RANGE: "1023 65000"}, {"net.ipv4.ip_unprivileged_port_start": None}, (), [RANGE], "below ip_unprivileged_port_start 1024"),
    ({RANGE: "1024 65001"}, {}, (), [], ""),
    ({RANGE: "1023 65000"}, {"net.ipv4.ip_unprivileged_port_start": "1000"}, (), [], ""),
    # ... the local listeners inside it, unless reserved, and only when the range changes ...
    ({RANGE: "4001 65000"}, {}, LISTENERS, [RANGE], "covers port(s) 5432, 8080 used by local listeners"),
    ({RANGE: "8081 65000"}, {}, LISTENERS, [], ""),
    ({RANGE: "4001 65000", "net.ipv4.ip_local_reserved_ports": "5432,8000-8100"}, {}, LISTENERS, [], ""),
    ({RANGE: "4001 65000"}, {"net.ipv4.ip_local_reserved_ports": "5432,8080"}, LISTENERS, [], ""),
    ({RANGE: "32768 60999"}, {}, (40000,), [], ""),
    # ... and the parity of its ends (ip-sysctl.rst: one even, one odd).
    ({RANGE: "4000 65000"}, {}, (), [RANGE], "same parity"),
    ({RANGE: "4001 65001"}, {}, (), [RANGE], "same parity"),
    ({RANGE: "4000 64999"}, {}, (), [], ""),
    # One refusal per key: the first rule in table order speaks.
    ({RANGE: "1000 65000"}, {}, LISTENERS, [RANGE], "starts at 1000"),
    ({RANGE: "4000 65000"}, {}, LISTENERS, [RANGE], "5432, 8080"),
    # Values that are not one integer (or two ports) are left to the kernel's own checks.
    ({"net.ipv4.tcp_synack_retries": "1 2"}, {}, (), [], ""),
    ({RANGE: "4000"}, {}, (), [], ""),
])
def test_rule_both_sides_of_its_threshold(targets, running, listeners, refused_keys, words):
    current = dict(BASE)
    current.update(running)
    current = {key: value for key, value in current.items() if value is not None}
    refused = safety.refusals(targets, current, set(listeners))
    assert [item["key"] for item in refused] == refused_keys
    for item in refused:
        assert words in item["reason"] + " " + item["suggestion"], item
        assert item["value"] == targets[item["key"]] and item["suggestion"]


def test_refusals_come_in_table_order_and_rules_can_be_chosen():
    targets = {"net.netfilter.nf_conntrack_tcp_timeout_close_wait": "10", "net.ipv4.tcp_synack_retries": "0",
               "net.ipv4.tcp_fin_timeout": "2", "net.ipv4.tcp_tw_recycle": "1"}
    refused = safety.refusals(targets, dict(BASE))
    assert [item["key"] for item in refused] == ["net.ipv4.tcp_tw_recycle", "net.ipv4.tcp_fin_timeout",
                                                 "net.ipv4.tcp_synack_retries", "net.netfilter.nf_conntrack_tcp_timeout_close_wait"]
    guarded = safety.refusals(targets, {}, rules=safety.ROLE_GUARDS)
    assert [item["key"] for item in guarded] == ["net.ipv4.tcp_synack_retries", "net.netfilter.nf_conntrack_tcp_timeout_close_wait"]
    assert guarded == refused[2:]  # the same words as the module's


def test_the_table_is_well_formed():
    for rule in safety.RULES:
        assert rule.test in safety._VERDICTS, rule  # pylint: disable=protected-access
        assert rule.keys and all(catalog.info(key) or catalog.removed(key) for key in rule.keys), rule
        assert not any(catalog.renamed_to(key) for key in rule.keys), "rules name keys by their modern name: %s" % (rule,)
        if isinstance(rule.limit, str):
            assert catalog.info(rule.limit), rule
    raise_only = sorted(key for key, rec in catalog.KEYS.items() if rec["raise_only"])
    assert sorted(key for rule in safety.RULES if rule.test == safety.LOWERED for key in rule.keys) == raise_only
    assert safety.CONTEXT_KEYS == ("net.ipv4.ip_local_reserved_ports", "net.ipv4.ip_unprivileged_port_start",
                                   "net.ipv4.tcp_timestamps", "net.ipv4.tcp_tw_reuse")
    # The role judges its guards on the controller, without running values or listeners: only tests of the value itself.
    assert safety.ROLE_GUARDS and all(rule.test in (safety.BELOW, safety.OTHER_THAN, safety.SAME_PARITY) for rule in safety.ROLE_GUARDS)


def _words(text):
    return re.sub(r"\s+", " ", text)


def _allow_unsafe_text():
    doc = sysctl_profile.DOCUMENTATION
    return _words(doc[doc.index("\n  allow_unsafe:"):doc.index("\nnotes:")])


def _docs_section():
    with open(os.path.join(ROOT, "docs", "sysctl.md")) as handle:
        text = handle.read()
    start = text.index("## Safety rules")
    return _words(text[start:text.index("\n## ", start + 1)])


@pytest.mark.parametrize("rule", safety.RULES, ids=lambda rule: "%s-%s" % (rule.keys[0], rule.test))
def test_every_rule_is_described_where_users_read(rule):
    """The allow_unsafe option of sysctl_profile and docs/sysctl.md name each rule's keys and threshold."""
    for text in (_allow_unsafe_text(), _docs_section()):
        for key in rule.keys:
            assert key.split(".")[-1] in text, key
        if rule.test == safety.BELOW:
            assert "%s) below %d" % (rule.keys[0], rule.limit) in text or "%s` < %d" % (rule.keys[0].split(".")[-1], rule.limit) in text
