# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tcp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``ansible_facts.sysctl``: runtime values, what boot applies, drift and overrides. Reads only."""

from ansible_collections.linuxnet.tcp.plugins.module_utils._agents import writers as agents
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import catalog
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import conf
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import keys
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import tree as systree


def default_fact_keys():
    return catalog.group_keys(catalog.GROUP_TCP, catalog.GROUP_CORE)


def gather_facts(root="/", patterns=None, persisted=True):
    """Build ``ansible_facts.sysctl``: values, missing, persisted, drift, overrides, kernel, boot, agents, writers.

    ``patterns`` are keys or globs in either sysctl.d(5) spelling; every key in the result is spelled the
    sysctl(8) way (``net.ipv4.conf.eth0/100.rp_filter``).
    """
    tree = systree.SysctlTree(root)
    wanted = [keys.Pattern(keys.canonical_key(p, allow_glob=True)) for p in (patterns or default_fact_keys())]
    values, missing = {}, {}

    def note_missing(key):
        cls = systree.classify(tree, key)
        if cls["classification"] == systree.OK:
            cls = {"classification": systree.READ_ONLY, "reason": "%s is not readable" % key}
        missing[key] = cls

    for pattern in wanted:
        if pattern.glob:
            for key in tree.expand(pattern.text):
                try:
                    values[key] = tree.read(key)
                except OSError:
                    # Readable by mode yet failing read(2), e.g. net.ipv6.conf.*.stable_secret (EIO until set).
                    note_missing(key)
            for key in catalog.KEYS:
                if key not in values and pattern.matches(keys.parts_of(key)):
                    note_missing(key)
        else:
            key = keys.canonical_key(pattern.text)
            try:
                values[key] = tree.read(key)
            except OSError:
                note_missing(key)

    def is_wanted(key):
        parts = keys.parts_of(key)
        return any(p.matches(parts) for p in wanted)

    facts = {"runtime": values, "missing": missing, "persisted": {}, "drift": {}, "overrides": {}}
    if persisted:
        boot = conf.BootConfig(root)
        for key in sorted(set(boot.explicit_keys()) | set(values) | set(missing)):
            if not is_wanted(key):
                continue
            eff = boot.effective(key, tree.settable)
            if eff is None:
                continue
            facts["persisted"][key] = {"value": eff["value"], "file": eff["file"]}
            if eff.get("via"):
                facts["persisted"][key]["via"] = eff["via"]
            if key in values and not keys.values_equal(values[key], eff["value"]):
                facts["drift"][key] = {"runtime": values[key], "persisted": eff["value"], "file": eff["file"]}
        for key, items in conf.assignments(root, "procps").items():
            if is_wanted(key) and len(set(i["file"] for i in items)) > 1:
                facts["overrides"][key] = items
    facts["kernel"] = systree.context(tree)
    facts["boot"], facts["module_options"] = boot_report(root, tree, facts["persisted"], missing, facts["kernel"]) \
        if persisted else ({}, [])
    found = agents.in_this_netns(agents.detect(root), root)
    facts["agents"] = [dict((k, a[k]) for k in ("agent", "pid", "evidence", "advice")) for a in found]
    facts["writers"] = agents.writers_for(sorted(set(values) | set(missing) | set(facts["persisted"])), found)
    return facts


def boot_report(root, tree, persisted, missing, kernel):
    """For each key boot sets, whether the write takes effect; for each modprobe.d option, whether it is live.

    Returns ``(boot, module_options)``: ``boot`` key -> {value, file, applies, module, module_loaded_by, reason};
    ``module_options`` the modprobe.d options with the live value of a loaded module and whether it must be loaded
    again (or the host rebooted) for the file's value to take effect.
    """
    modules = conf.ModuleBoot(root, tree.kernel_release())
    out = {}
    for key in sorted(persisted):
        # Whether the key is there, from the tree: ``missing`` holds only requested and catalogue keys, not every key
        # a file sets that a pattern matches. A key of a module not loaded now is judged by the module instead.
        exists = tree.exists(key) or (missing.get(key) or systree.classify(tree, key))["classification"] == systree.MODULE_NOT_LOADED
        applies, module, loaded_by, reason = conf.boot_reason(modules, key, kernel, exists=exists)
        out[key] = {"value": persisted[key]["value"], "file": persisted[key]["file"], "applies": applies, "module": module,
                    "module_loaded_by": loaded_by, "reason": reason}
    return out, conf.module_options_state(root, tree.module_loaded, conf.modprobe_options(root))
