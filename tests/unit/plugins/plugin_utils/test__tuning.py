# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The tuning role's input on the controller: the role's own argument spec, defaults and profiles (read from
roles/tuning), its guards (from the collection's safety table), the values users give, and what
linuxnet.tcp.sysctl_profile gets."""
from __future__ import annotations

import os

import pytest
import yaml

from ansible_collections.linuxnet.tcp.plugins.filter.tcp_tuning_plan import tcp_tuning_plan
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import safety
from ansible_collections.linuxnet.tcp.plugins.plugin_utils import _tuning

ROLE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "roles", "tuning")


def _load(*parts):
    with open(os.path.join(ROLE, *parts), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


SPEC = _load("meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
DEFAULTS = _load("defaults", "main.yml")
ROLE_VARS = _load("vars", "main.yml")
POLICY = {"profiles": ROLE_VARS["__tcp_tuning_builtin_profiles"],
          "conntrack": {"min": ROLE_VARS["__tcp_tuning_conntrack_min"], "per_cpu": ROLE_VARS["__tcp_tuning_conntrack_per_cpu"],
                        "mem_factor": ROLE_VARS["__tcp_tuning_conntrack_mem_factor"]}}
HOST_NAMES = {"names": ["net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_ecn", "net.ipv4.tcp_tw_reuse"], "kernel": "6.1.0-test"}


def plan(host=None, host_keys=None, **given):
    """The plan of the role's defaults with ``given`` on top, as the role hands them over."""
    return _tuning.plan(dict(DEFAULTS, **given), SPEC, POLICY, host=host, host_keys=host_keys)


def test_defaults_are_valid_and_give_baseline():
    out = plan()
    assert out["errors"] == [] and out["warnings"] == [] and out["chain"] == ["baseline"]
    assert out["apply"] == ROLE_VARS["__tcp_tuning_builtin_profiles"]["baseline"]["settings"]
    assert out["vars"]["tcp_tuning_unknown_keys"] == "fail" and out["ask_host"] == []


def test_every_option_of_the_spec_has_its_default_in_defaults_main():
    assert set(SPEC) == set(DEFAULTS), "meta/argument_specs.yml and defaults/main.yml list different variables"
    for name, option in SPEC.items():
        assert option.get("default") == DEFAULTS[name], name


@pytest.mark.parametrize("given, chain", [
    ({"tcp_tuning_profiles": "web"}, ["baseline", "web"]),                 # -e tcp_tuning_profiles=web
    ({"tcp_tuning_profiles": "web,database"}, ["baseline", "web", "database"]),
    ({"tcp_tuning_profiles": "[proxy]"}, ["baseline", "web", "proxy"]),
    ({"tcp_tuning_profiles": ["database", "web"]}, ["baseline", "database", "web"]),
])
def test_profiles_as_users_type_them(given, chain):
    out = plan(**given)
    assert out["errors"] == [] and out["chain"] == chain


def test_settings_from_a_key_value_string_override_the_profile():
    out = plan(tcp_tuning_profiles=["web"], tcp_tuning_settings="net.core.somaxconn=8192")
    assert out["errors"] == [] and out["apply"]["net.core.somaxconn"] == "8192"


def test_merge_order_null_drops_and_slashed_keys():
    out = plan(tcp_tuning_profiles=["web"], tcp_tuning_reserved_ports=[11211, "27017-27019"],
               tcp_tuning_settings={"net/ipv4/tcp_notsent_lowat": None, "net.ipv4.tcp_keepalive_time": 300})
    assert out["errors"] == [] and out["warnings"] == []
    assert "net.ipv4.tcp_notsent_lowat" not in out["apply"]
    assert out["apply"]["net.ipv4.ip_local_reserved_ports"] == ">= 11211,27017-27019"
    assert out["apply"]["net.ipv4.tcp_keepalive_time"] == 300
    assert out["ask_host"] == []  # every key is in the catalogue


def test_conntrack_sizing_needs_the_host_and_then_computes():
    out = plan(tcp_tuning_profiles=["proxy"])
    assert out["needs_host_facts"] and "net.netfilter.nf_conntrack_max" not in out["apply"]
    out = plan(tcp_tuning_profiles=["proxy"], host={"vcpus": 8, "memtotal_mb": 4096})
    # max(131072, 32768 x 8) = 262144, capped by 4096 MB x 64 x 4 = 1048576
    assert out["conntrack_max"] == 262144 and out["apply"]["net.netfilter.nf_conntrack_buckets"] == ">= 262144"
    assert out["modules"] == ["nf_conntrack"] and not out["needs_host_facts"]


def test_ipvs_parts_only_for_directors():
    assert plan(tcp_tuning_profiles=["proxy"])["ipvs_timeouts"] is None
    out = plan(tcp_tuning_profiles=["proxy"], tcp_tuning_ipvs="true", tcp_tuning_ipvs_timeouts="{tcp: 3600}")
    assert out["ipvs_timeouts"] == {"tcp": 3600} and out["modules"] == ["nf_conntrack", "ip_vs"]
    assert out["apply"]["net.ipv4.vs.expire_nodest_conn"] == 1


def test_guards_refuse_before_the_engine_runs():
    out = plan(tcp_tuning_profiles=["legacy_blog"])
    refused = {item["key"] for item in out["guard_refused"]}
    assert refused == {"net.ipv4.ip_local_port_range", "net.ipv4.tcp_synack_retries",
                       "net.ipv4.netfilter.ip_conntrack_tcp_timeout_established"}
    assert not refused & set(out["apply"])
    assert plan(tcp_tuning_profiles=["legacy_blog"], tcp_tuning_allow_unsafe=True)["guard_refused"] == []


def test_guards_say_what_the_module_says_under_the_name_as_written():
    """One table: each guard's refusal is the module's refusal of the same value, keyed by the name the profile uses."""
    out = plan(tcp_tuning_profiles=["legacy_blog"])
    assert [item["key"] for item in out["guard_refused"]] == [
        "net.ipv4.ip_local_port_range", "net.ipv4.tcp_synack_retries", "net.ipv4.netfilter.ip_conntrack_tcp_timeout_established"]
    for item in out["guard_refused"]:
        modern = "net.netfilter.nf_conntrack_tcp_timeout_established" if "ip_conntrack" in item["key"] else item["key"]
        (module,) = safety.refusals({modern: item["value"]}, {})
        assert dict(item, key=modern) == module
    assert out["guard_refused"][0] == {
        "key": "net.ipv4.ip_local_port_range", "value": "4000 65000",
        "reason": "both ends of the range have the same parity; ip-sysctl.rst asks for one even and one odd value, and a low "
                  "start overlaps local service ports (5432, 6379, 8080, 9090)",
        "suggestion": 'use "10240 65535" (web) or "9000 65499" (database) and list local listeners in net.ipv4.ip_local_reserved_ports'}


@pytest.mark.parametrize("settings, refused", [
    ({"net.netfilter.nf_conntrack_tcp_timeout_close_wait": 59}, ["net.netfilter.nf_conntrack_tcp_timeout_close_wait"]),
    ({"net.netfilter.nf_conntrack_tcp_timeout_close_wait": 60}, []),
    # Both names of one key: each refused as written, the modern one first.
    ({"net.ipv4.netfilter.ip_conntrack_tcp_timeout_close_wait": 30, "net.netfilter.nf_conntrack_tcp_timeout_close_wait": 30},
     ["net.netfilter.nf_conntrack_tcp_timeout_close_wait", "net.ipv4.netfilter.ip_conntrack_tcp_timeout_close_wait"]),
    # A relational value depends on the running one: the module judges it once resolved.
    ({"net.ipv4.tcp_synack_retries": ">= 1"}, []),
    # The engine's own rules are the engine's to report (as "refused:"), not the role's.
    ({"net.ipv4.tcp_fin_timeout": 2, "net.ipv4.tcp_syn_retries": 1}, []),
])
def test_guards_judge_only_the_role_guards(settings, refused):
    out = plan(tcp_tuning_settings=settings)
    assert out["errors"] == [] and [item["key"] for item in out["guard_refused"]] == refused


# (given, the one error): the variable, what it must be, the value; the closest known name where there is one.
REJECTED = [
    ({"tcp_tuning_profiles": ["wbe"]}, "tcp_tuning_profiles: unknown tuning profile(s) wbe (did you mean web?); built in: "),
    ({"tcp_tuning_profiles": {"web": 1}}, 'tcp_tuning_profiles must be a list of strings, got {"web": 1} (a mapping)'),
    ({"tcp_tuning_profile": ["web"]}, "tcp_tuning_profile is not a known variable (did you mean tcp_tuning_profiles?)"),
    ({"tcp_tuning_settings": "net.ipv4.ip_local_port_range=10240 65535"}, "tcp_tuning_settings must be a mapping, got "),
    ({"tcp_tuning_settings": {"net.core.somaxconn": True}}, "tcp_tuning_settings: net.core.somaxconn: boolean True is not a sysctl value"),
    ({"tcp_tuning_settings": {"net.ipv4.tcp_fin_timeout": "30 s"}}, "tcp_tuning_settings: net.ipv4.tcp_fin_timeout takes one integer"),
    ({"tcp_tuning_settings": {"net ipv4": 1}}, "tcp_tuning_settings: key 'net ipv4' contains characters outside"),
    ({"tcp_tuning_reserved_ports": ["80-abc"]},
     'tcp_tuning_reserved_ports[0] must be a port from 1 to 65535 or a range "low-high" of them, got "80-abc" (a string)'),
    ({"tcp_tuning_reserved_ports": [70000]}, "tcp_tuning_reserved_ports[0] must be a port from 1 to 65535"),
    ({"tcp_tuning_reserved_ports": ["9110-9100"]}, "tcp_tuning_reserved_ports[0] must be a port from 1 to 65535"),
    ({"tcp_tuning_ipvs_timeouts": {"tcp": -1}}, "tcp_tuning_ipvs_timeouts.tcp must be 0 or more seconds, got -1"),
    ({"tcp_tuning_custom_profiles": {"api": {"extend": ["web"], "settings": {}}}, "tcp_tuning_profiles": ["api"]},
     "tcp_tuning_custom_profiles.api.extend is not a known profile key (did you mean extends?)"),
    ({"tcp_tuning_custom_profiles": {"api": {"extends": ["wbe"], "settings": {}}}, "tcp_tuning_profiles": ["api"]},
     "tcp_tuning_custom_profiles.api.extends: unknown tuning profile wbe (did you mean web?)"),
    ({"tcp_tuning_custom_profiles": {"api": "web"}}, 'tcp_tuning_custom_profiles.api must be a mapping with settings'),
    ({"tcp_tuning_custom_profiles": {"api": {"extends": ["web"]}}}, "tcp_tuning_custom_profiles.api.settings is required"),
    ({"tcp_tuning_unknown_keys": "ignore"}, 'tcp_tuning_unknown_keys must be one of fail, warn, got "ignore"'),
]


@pytest.mark.parametrize("given, message", REJECTED)
def test_bad_input_names_the_variable(given, message):
    out = plan(**given)
    assert len(out["errors"]) == 1 and out["errors"][0].startswith(message), out["errors"]
    assert out["apply"] == {}, "nothing to apply when the input is bad"


def test_state_absent_checks_types_only():
    """Restoring must not fail over a profile typo in the inventory."""
    out = plan(tcp_tuning_state="absent", tcp_tuning_profiles=["wbe"])
    assert out["errors"] == [] and out["vars"]["tcp_tuning_state"] == "absent"
    assert plan(tcp_tuning_state="absent", tcp_tuning_persist="maybe")["errors"]


def test_results_of_the_role_are_not_input():
    out = plan(tcp_tuning_result={"changed": True}, tcp_tuning_summary=[], tcp_tuning_revert=None, tcp_tuning_check={})
    assert out["errors"] == []


def test_keys_outside_the_catalogue_are_asked_on_the_host_first():
    out = plan(tcp_tuning_settings={"net.ipv4.tcp_fin_timout": 30, "net.ipv4.tcp_ecn": 1})
    assert out["errors"] == [] and out["ask_host"] == ["net.ipv4.*", "net.ipv4.tcp_ecn", "net.ipv4.tcp_fin_timout"]
    out = plan(tcp_tuning_settings={"net.ipv4.tcp_fin_timout": 30, "net.ipv4.tcp_ecn": 1}, host_keys=HOST_NAMES)
    assert out["errors"] == ["tcp_tuning_settings: net.ipv4.tcp_fin_timout is not a sysctl of this host's kernel "
                             "(6.1.0-test) nor one the collection knows (did you mean net.ipv4.tcp_fin_timeout?); for a "
                             "key that only some kernels have, set tcp_tuning_unknown_keys: warn"]
    assert out["ask_host"] == []


@pytest.mark.parametrize("key, suggestion", [
    ("net.ipv4.somaxconn", "net.core.somaxconn"),            # the right name under another parent
    ("net.ipv4.tcp_keepalive_tme", "net.ipv4.tcp_keepalive_time"),
    ("net.ipv4.tcp_ecm", "net.ipv4.tcp_ecn"),                # known from the host only
    ("net.ipv4.something_else_entirely", None),
])
def test_suggestions(key, suggestion):
    known = set(_tuning.catalog.KEYS) | set(HOST_NAMES["names"])
    assert _tuning.suggest_key(key, known) == suggestion


def test_unknown_keys_warn_by_option_and_module_subtrees_are_left_to_the_engine():
    out = plan(tcp_tuning_settings={"net.ipv4.tcp_fin_timout": 30}, tcp_tuning_unknown_keys="warn", host_keys=HOST_NAMES)
    assert out["errors"] == [] and "(skipped: tcp_tuning_unknown_keys is warn)" in out["warnings"][0]
    assert out["apply"]["net.ipv4.tcp_fin_timout"] == 30  # the engine skips it as unknown_key
    out = plan(tcp_tuning_settings={"net.bridge.bridge-nf-call-iptables": 1}, host_keys=HOST_NAMES)
    assert out["errors"] == [] and out["warnings"] == []
    out = plan(tcp_tuning_force_owned_keys=["net.netfilter.nf_conntrack_tcp_timeout_establised"], host_keys=HOST_NAMES)
    assert out["errors"][0].startswith("tcp_tuning_force_owned_keys: net.netfilter.nf_conntrack_tcp_timeout_establised is "
                                       "not a sysctl") and "did you mean net.netfilter.nf_conntrack_tcp_timeout_established?" in out["errors"][0]


def test_warnings_for_input_that_does_less_than_it_seems():
    out = plan(tcp_tuning_profiles=["web"], tcp_tuning_reserved_ports=[8080, "9100-9110", 11211],
               tcp_tuning_settings={"net.ipv4.tcp_fin_timeout": None}, tcp_tuning_force_owned_keys=["net.core.rmem_default"])
    assert out["errors"] == []
    assert out["warnings"] == [
        "tcp_tuning_settings: net.ipv4.tcp_fin_timeout: null drops a key from the profiles, and none of baseline, web sets it",
        "tcp_tuning_reserved_ports: 8080, 9100-9110 outside the ephemeral range 10240-65535 that the profiles set "
        "(net.ipv4.ip_local_port_range): the kernel never picks such ports as local ports, so reserving them changes "
        "nothing; list the ports inside the range that a service must always find free",
        "tcp_tuning_force_owned_keys: net.core.rmem_default is not in the merged profile, so there is nothing to force"]
    assert plan(tcp_tuning_reserved_ports=[8080])["warnings"] == [], "no range in the profiles: nothing to compare with"


def test_the_filter_is_plan():
    given = dict(DEFAULTS, tcp_tuning_profiles="web")
    assert tcp_tuning_plan(given, SPEC, POLICY) == _tuning.plan(given, SPEC, POLICY)
