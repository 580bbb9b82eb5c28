"""Simulated hosts for the audit at fleet scale: an inventory of N local-connection hosts whose TCP and sysctl facts
are recorded documents put into a jsonfile fact cache, the way AWX's fact cache (use_fact_cache) or a controller's
fact_caching hands them to a play. With tcp_audit_gather: false the audit then runs its real per-host task, its
real aggregation and its real templates for every host without touching any machine.

Used by the audit report tests (tests/integration/test_audit_scale_report.py, test_awx.py) and the benchmark
(benchmarks/audit_scale/run.py). The cache is written through Ansible's own cache plugin, so its format is the
one the installed ansible-core reads.
"""
from __future__ import annotations

import json
import os

# Inventory groups, in turn (a host's group is decided by its number): web, db, cache and lb in proportions
# 4:2:2:1. Nine entries, so that a kind of host that comes every tenth host lands in every group.
GROUPS = ("web", "db", "web", "cache", "web", "db", "web", "lb", "cache")


def plan(count, kinds):
    """[(host, group, document name)] for ``count`` hosts; ``kinds`` is [(document name, every)], the first kind
    whose ``every`` divides the host number wins, the last one (every 1) takes the rest."""
    out = []
    for number in range(count):
        group = GROUPS[number % len(GROUPS)]
        kind = next(name for name, every in kinds if number % every == 0)
        out.append(("%s%d" % (group, number + 1), group, kind))
    return out


def write(directory, hosts, documents, ansible_cfg_extra=""):
    """Write ``inventory.ini``, ``ansible.cfg`` (jsonfile fact cache, forks, profile_tasks) and the fact cache
    under ``directory`` for ``hosts`` from plan(); ``documents`` maps a document name to {tcp, sysctl}.
    Returns the paths (inventory, ansible.cfg, cache directory)."""
    from ansible.plugins.loader import cache_loader, init_plugin_loader  # pylint: disable=import-outside-toplevel

    os.makedirs(directory, exist_ok=True)
    cache_dir = os.path.join(directory, "facts")
    init_plugin_loader()
    cache = cache_loader.get("ansible.builtin.jsonfile", _uri=cache_dir, _timeout=0)
    groups = {}
    for host, group, kind in hosts:
        cache.set(host, {"tcp": documents[kind]["tcp"], "sysctl": documents[kind]["sysctl"]})
        groups.setdefault(group, []).append(host)
    inventory = os.path.join(directory, "inventory.ini")
    with open(inventory, "w", encoding="utf-8") as handle:
        for group, members in groups.items():
            handle.write("[%s]\n" % group)
            handle.writelines("%s ansible_connection=local\n" % host for host in members)
        handle.write("[all:vars]\ntcp_audit_gather=false\n")
    config = os.path.join(directory, "ansible.cfg")
    with open(config, "w", encoding="utf-8") as handle:
        handle.write("[defaults]\nfact_caching = ansible.builtin.jsonfile\nfact_caching_connection = %s\n"
                     "fact_caching_timeout = 0\ngathering = explicit\nhost_key_checking = false\n%s"
                     % (cache_dir, ansible_cfg_extra))
    return inventory, config, cache_dir


def load_documents(directory, names):
    """{name: document} of ``directory/<name>.json`` files ({tcp, sysctl}, as record_fixtures.py writes them)."""
    out = {}
    for name in names:
        with open(os.path.join(directory, name + ".json"), encoding="utf-8") as handle:
            out[name] = json.load(handle)
    return out
