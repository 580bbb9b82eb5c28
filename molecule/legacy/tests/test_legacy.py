"""Verify the legacy_blog scenario: the kernel and the drop-in, then what the summary told the user."""
from __future__ import annotations

import pytest

from ansible_collections.linuxnet.tcp.molecule.default.tests.snapshot import snapshot

DROP_IN = "/etc/sysctl.d/90-linuxnet-legacy.conf"
SUMMARY = "/root/tuning-summary.txt"

# Harmful advice: the live value must still be the kernel default of a fresh network namespace
# (kernel 6.18, see docs/sysctl.md) and the key must not be in the drop-in.
KEPT_DEFAULT = {
    "net.ipv4.tcp_fin_timeout": "60",               # blog 2: refused by the engine
    "net.ipv4.tcp_syn_retries": "6",                # blog 1: refused by the engine
    "net.ipv4.tcp_synack_retries": "5",             # blog 1: refused by the role's guard
    "net.ipv4.ip_local_port_range": "32768 60999",  # blog 4000 65000: refused by the role's guard
    "net.ipv4.tcp_max_tw_buckets": "131072",        # blog 36000: lowering refused by the engine
    "net.netfilter.nf_conntrack_tcp_timeout_established": "432000",  # blog 180 under the legacy name: guard
}
ABSENT_FROM_FILE = list(KEPT_DEFAULT) + [
    "net.ipv4.tcp_tw_recycle", "net.ipv4.route.gc_timeout", "net.core.netdev_max_backlog", "net.ipv4.tcp_max_orphans",
    "net.ipv4.ip_conntrack_max", "net.netfilter.nf_conntrack_max",
]
# Harmless advice is applied, legacy conntrack names under their modern name.
APPLIED = {
    "net.ipv4.tcp_syncookies": "1",
    "net.ipv4.tcp_tw_reuse": "1",
    "net.ipv4.tcp_keepalive_time": "600",
    "net.ipv4.tcp_max_syn_backlog": "16384",
    "net.core.somaxconn": "16384",
    "net.netfilter.nf_conntrack_tcp_timeout_time_wait": "120",
    "net.netfilter.nf_conntrack_tcp_timeout_close_wait": "60",
    "net.netfilter.nf_conntrack_tcp_timeout_fin_wait": "120",
}
# Every rejected key of the blog list, with words of the reason the summary must give.
REJECTED = [
    ("skipped: net.ipv4.tcp_tw_recycle [removed]", "4.12"),
    ("refused: net.ipv4.tcp_fin_timeout = 2", "does not shorten TIME_WAIT"),
    ("refused: net.ipv4.tcp_syn_retries = 1", "lost SYN"),
    ("refused: net.ipv4.tcp_max_tw_buckets = 36000", "must not be lowered"),
    ("refused (role guard): net.ipv4.ip_local_port_range = 4000 65000", "parity"),
    ("refused (role guard): net.ipv4.tcp_synack_retries = 1", "half-open"),
    ("refused (role guard): net.ipv4.netfilter.ip_conntrack_tcp_timeout_established = 180", "idle"),
    ("skipped: net.ipv4.route.gc_timeout [global_in_child_netns]", "host"),
    ("skipped: net.core.netdev_max_backlog [global_in_child_netns]", "host"),
    ("skipped: net.ipv4.tcp_max_orphans [global_in_child_netns]", "host"),
    ("skipped: net.netfilter.nf_conntrack_max [global_in_child_netns]", "host"),
    ("mapped: net.ipv4.ip_conntrack_max -> net.netfilter.nf_conntrack_max", "legacy name"),
]


@pytest.fixture(scope="module")
def state(host):
    return snapshot(host, list(KEPT_DEFAULT) + list(APPLIED) + ["net.ipv4.tcp_tw_recycle"], [SUMMARY], DROP_IN)


def test_harmful_values_never_reached_the_kernel(state):
    for key, value in KEPT_DEFAULT.items():
        assert state["proc"][key] == value, key
    assert state["proc"]["net.ipv4.tcp_tw_recycle"] is None


def test_harmful_and_unsupported_keys_never_reached_the_file(state):
    persisted = {k.lstrip("-") for k in state["persisted"]}
    for key in ABSENT_FROM_FILE:
        assert key not in persisted, key


def test_harmless_advice_is_applied_and_persisted_under_modern_names(state):
    for key, value in APPLIED.items():
        assert state["proc"][key] == value, key
        assert state["persisted"].get(key, state["persisted"].get("-" + key)) == value, key
    assert not any("ip_conntrack" in k for k in state["persisted"])


def test_summary_names_each_rejected_key_with_its_reason(state):
    lines = state["files"][SUMMARY]["text"].splitlines()
    for prefix, reason in REJECTED:
        matching = [line for line in lines if line.startswith(prefix)]
        assert len(matching) == 1, (prefix, lines)
        assert reason in matching[0], (reason, matching[0])


def test_summary_explains_the_inert_key(state):
    assert any(line.startswith("note: net.ipv4.tcp_max_syn_backlog:") and "syncookies" in line
               for line in state["files"][SUMMARY]["text"].splitlines())
