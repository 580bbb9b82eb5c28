# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The tuning role's input, checked and merged on the controller: what linuxnet.tcp.sysctl_profile gets.

Note that this plugin util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins!

``plan()`` takes the role's variables as the host sees them and returns one document: the converted values, the
errors (each naming the variable, what it must be and the value it has), the warnings, and the merged profile.
Merge order, a later layer winning per key: the profiles' settings (each profile after the profiles it extends),
their IPVS settings (``tcp_tuning_ipvs``), the conntrack sizing, the reserved ports, ``tcp_tuning_settings``; a
null value drops the key. Then the role's guards (the rules of ``module_utils/_sysctl/safety.py`` marked
``role_guard``) take keys out.

Sysctl keys the user wrote (``tcp_tuning_settings``, the custom profiles, ``tcp_tuning_force_owned_keys``) are
checked against the catalogue (``module_utils/_sysctl/catalog.py``). A key the catalogue does not know may still be one of
the target's kernel: the role reads the host's names once (``ask_host``, only when there are such keys) and calls
``plan()`` again with them (``host_keys``). A key that neither knows and that looks like a known one is a typo; one
without any close match is unknown (unless a kernel module registers its subtree, which the engine loads and
classifies). Both fail, or warn with ``tcp_tuning_unknown_keys: warn``.
"""
from __future__ import annotations

from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import catalog
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import keys as sysctl_keys
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import safety
from ansible_collections.linuxnet.tcp.plugins.plugin_utils._inputs import (
    check_variables, closest, did_you_mean, kind, plain, shown,
)

# tcp_tuning_* variables the role sets itself (results), which are not input.
OUTPUTS = frozenset(("tcp_tuning_result", "tcp_tuning_summary", "tcp_tuning_revert", "tcp_tuning_revert_result",
                     "tcp_tuning_revert_summary", "tcp_tuning_ipvs_result", "tcp_tuning_check"))
# The shape of a profile (roles/tuning/vars/main.yml describes it).
PROFILE = {
    "description": {"type": "str"},
    "extends": {"type": "list", "elements": "str", "default": []},
    "settings": {"type": "dict", "required": True},
    "modules": {"type": "list", "elements": "str", "default": []},
    "conntrack_sizing": {"type": "bool", "default": False},
    "ipvs_settings": {"type": "dict", "default": {}},
    "ipvs_timeouts": {"type": "dict", "options": {"tcp": {"type": "int"}, "tcpfin": {"type": "int"}, "udp": {"type": "int"}}},
}
PROFILE_DEFAULTS = {name: option.get("default") for name, option in PROFILE.items() if "default" in option}
RANGE_KEY = "net.ipv4.ip_local_port_range"
RESERVED_KEY = "net.ipv4.ip_local_reserved_ports"


def _profiles(values, builtin, errors):
    """Built-in and custom profiles by name, the custom ones checked against PROFILE (a custom name replaces a built-in)."""
    profiles = {name: dict(PROFILE_DEFAULTS, **profile) for name, profile in plain(builtin).items()}
    for name, profile in values["tcp_tuning_custom_profiles"].items():
        where = "tcp_tuning_custom_profiles.%s" % name
        if not isinstance(profile, dict):
            errors.append("%s must be a mapping with settings (and extends, modules, ...), got %s (%s)"
                          % (where, shown(profile), kind(profile)))
            continue
        checked, problems = check_variables(PROFILE, profile, prefix=where + ".", noun="profile key")
        errors += problems
        profiles[name] = checked
    return profiles


def _chain(values, profiles, errors):
    """Each requested profile after the ones it extends, first occurrence kept (extends are listed in full)."""
    chain, unknown = [], []
    for name in values["tcp_tuning_profiles"]:
        if name not in profiles:
            unknown.append(name)
            continue
        for parent in list(profiles[name].get("extends") or []) + [name]:
            if parent not in profiles:
                errors.append("tcp_tuning_custom_profiles.%s.extends: unknown tuning profile %s%s" % (
                    name, parent, did_you_mean(parent, profiles)))
            elif parent not in chain:
                chain.append(parent)
    if unknown:
        errors.append("tcp_tuning_profiles: unknown tuning profile(s) %s%s; built in: %s; add your own with "
                      "tcp_tuning_custom_profiles" % (", ".join(unknown), did_you_mean(unknown[0], profiles),
                                                      ", ".join(sorted(profiles))))
    return chain


def _keys(mapping, where, errors, user_keys):
    """``mapping`` with every key in the collection's spelling and every non-null value checked as the engine does."""
    out = {}
    for key, value in mapping.items():
        try:
            name = sysctl_keys.canonical_key(key)
        except sysctl_keys.SysctlError as exc:
            errors.append("%s: %s" % (where, exc))
            continue
        if value is not None:
            try:
                sysctl_keys.parse_setting(name, value)
            except sysctl_keys.SysctlError as exc:
                errors.append("%s: %s" % (where, exc))
                continue
        user_keys.setdefault(name, where)
        out[name] = value
    return out


def _reserved(values, errors):
    """The reserved ports as given (integers and "low-high" strings), each checked; and the set of ports."""
    items, ports = [], set()
    for index, item in enumerate(values["tcp_tuning_reserved_ports"]):
        text = str(item).strip() if not isinstance(item, bool) else ""
        bounds = text.split("-")
        if len(bounds) in (1, 2) and all(b.isdigit() and 1 <= int(b) <= 65535 for b in bounds) and int(bounds[0]) <= int(bounds[-1]):
            items.append(int(text) if len(bounds) == 1 else "%d-%d" % (int(bounds[0]), int(bounds[1])))
            ports.update(range(int(bounds[0]), int(bounds[-1]) + 1))
        else:
            errors.append('tcp_tuning_reserved_ports[%d] must be a port from 1 to 65535 or a range "low-high" of them, '
                          "got %s (%s)" % (index, shown(item), kind(item)))
    return items, ports


def _outside_range(ports, wanted):
    """The reserved ports outside the ephemeral range the merged profile sets, folded as the kernel prints them."""
    value = wanted.get(RANGE_KEY)
    ints = catalog.as_ints(str(value)) if value is not None and not str(value).strip().startswith(("<=", ">=")) else None
    if not ports or not ints or len(ints) != 2:
        return None, None
    low, high = ints
    return catalog.fold_ports({port for port in ports if not low <= port <= high}), "%d-%d" % (low, high)


def _guards(wanted):
    """The safety table's role guards over the merged values as written: the keys they refuse, as the summary prints them.

    The module judges the same rules again on what it would write; here they are judged first, on the controller, so
    that a legacy name is refused under the name the user wrote and whatever the kernel has. A ">=" or "<=" value
    depends on the running value: the module judges it once resolved.
    """
    refused = []
    for rule in safety.ROLE_GUARDS:
        for modern in rule.keys:
            # The modern name first, then the legacy names that map to it.
            for key in sorted((key for key in wanted if (catalog.renamed_to(key) or key) == modern), key=lambda key: key != modern):
                value = str(wanted[key]).strip()
                if value.startswith(("<=", ">=")):
                    continue
                refused += [dict(item, key=key) for item in safety.refusals({modern: value}, {}, rules=(rule,))]
    return refused


def _conntrack_max(sizing, host):
    """nf_conntrack_max = min(max(MIN, PER_CPU x vCPUs), MemTotal_bytes / 16384 x MEM_FACTOR) (vars/main.yml says why)."""
    return min(max(int(sizing["min"]), int(sizing["per_cpu"]) * int(host["vcpus"])),
               int(host["memtotal_mb"]) * 64 * int(sizing["mem_factor"]))


def suggest_key(key, known):
    """The known key most like ``key``: the same name under another parent, else a close name under the same parent."""
    parts = sysctl_keys.parts_of(key)
    leaf, parent = parts[-1], parts[:-1]
    by_parent = {}
    for other in known:
        other_parts = sysctl_keys.parts_of(other)
        by_parent.setdefault(tuple(other_parts[:-1]), []).append(other_parts[-1])
    siblings = by_parent.get(tuple(parent), [])
    match = closest(leaf, siblings, cutoff=0.8)
    if match:
        return sysctl_keys.name(parent + [match])
    moved = sorted(sysctl_keys.name(list(p) + [leaf]) for p, leaves in by_parent.items() if leaf in leaves)
    if moved:
        return moved[0]
    return closest(key, known, cutoff=0.9)


def _unknown_keys(user_keys, host_keys, mode, errors, warnings):
    """Keys the user wrote that neither the catalogue nor (once read) the host knows; returns the keys to ask about."""
    catalogued = set(catalog.KEYS) | set(catalog.REMOVED)
    ask = sorted(key for key in user_keys if key not in catalogued and not catalog.renamed_to(key))
    if host_keys is None:
        return ask
    on_host = set(host_keys["names"])
    for key in ask:
        if key in on_host:
            continue
        suggestion = suggest_key(key, catalogued | on_host)
        if not suggestion and catalog.module_for(key):
            continue  # a subtree a kernel module registers: the engine loads the module and classifies the key
        message = "%s: %s is not a sysctl of this host's kernel (%s) nor one the collection knows%s" % (
            user_keys[key], key, host_keys.get("kernel") or "?",
            (" (did you mean %s?)" % suggestion) if suggestion else "")
        if mode == "warn":
            warnings.append(message + " (skipped: tcp_tuning_unknown_keys is warn)")
        else:
            errors.append(message + "; for a key that only some kernels have, set tcp_tuning_unknown_keys: warn")
    return []


def plan(given, spec, policy, host=None, host_keys=None):
    """The role's input as one document (see the module docstring); ``errors`` empty means it may run."""
    given = {name: value for name, value in plain(given).items() if name not in OUTPUTS}
    values, errors = check_variables(spec, given)
    warnings = []
    out = {"vars": values, "errors": errors, "warnings": warnings, "chain": [], "modules": [], "wanted": {},
           "apply": {}, "guard_refused": [], "conntrack_sizing": False, "conntrack_max": None, "needs_host_facts": False,
           "ipvs_timeouts": None, "ask_host": []}
    if errors or values.get("tcp_tuning_state") != "present":
        return out
    profiles = _profiles(values, policy["profiles"], errors)
    chain = _chain(values, profiles, errors)
    parts = [profiles[name] for name in chain]
    ipvs = values["tcp_tuning_ipvs"]
    user_keys = {}
    profile_settings, ipvs_settings = {}, {}
    for name, part in zip(chain, parts):
        user = name in values["tcp_tuning_custom_profiles"]
        for field, into in (("settings", profile_settings), ("ipvs_settings", ipvs_settings)):
            layer = part.get(field) or {}
            if user:
                layer = _keys(layer, "tcp_tuning_custom_profiles.%s.%s" % (name, field), errors, user_keys)
            into.update(layer)
    settings = _keys(values["tcp_tuning_settings"], "tcp_tuning_settings", errors, user_keys)
    forced = []
    for key in values["tcp_tuning_force_owned_keys"]:
        forced += list(_keys({key: None}, "tcp_tuning_force_owned_keys", errors, user_keys))
    reserved, ports = _reserved(values, errors)
    for name, timeout in (values["tcp_tuning_ipvs_timeouts"] or {}).items():
        if timeout is not None and timeout < 0:
            errors.append("tcp_tuning_ipvs_timeouts.%s must be 0 or more seconds, got %s" % (name, shown(timeout)))

    sizing = any(part.get("conntrack_sizing") for part in parts)
    conntrack_max = None
    if sizing and host and host.get("vcpus") is not None and host.get("memtotal_mb") is not None:
        conntrack_max = _conntrack_max(policy["conntrack"], host)
    wanted = dict(profile_settings)
    if ipvs:
        wanted.update(ipvs_settings)
    if conntrack_max is not None:
        wanted.update({"net.netfilter.nf_conntrack_max": ">= %d" % conntrack_max,
                       "net.netfilter.nf_conntrack_buckets": ">= %d" % conntrack_max})
    if reserved:
        # ">=" adds to the ports reserved now and never removes one; the engine folds the list into the kernel's format.
        wanted[RESERVED_KEY] = ">= " + ",".join(str(item) for item in reserved)
    for key, value in settings.items():
        if value is None and key not in wanted:
            warnings.append("tcp_tuning_settings: %s: null drops a key from the profiles, and none of %s sets it%s"
                            % (key, ", ".join(chain) or "the profiles", did_you_mean(key, wanted, 0.9)))
    wanted.update(settings)
    wanted = {key: value for key, value in wanted.items() if value is not None}
    outside, span = _outside_range(ports, wanted)
    if outside:
        warnings.append("tcp_tuning_reserved_ports: %s outside the ephemeral range %s that the profiles set (%s): the "
                        "kernel never picks such ports as local ports, so reserving them changes nothing; list the ports "
                        "inside the range that a service must always find free" % (outside.replace(",", ", "), span, RANGE_KEY))
    for key in forced:
        if key not in wanted:
            warnings.append("tcp_tuning_force_owned_keys: %s is not in the merged profile, so there is nothing to force" % key)

    ask = _unknown_keys(user_keys, host_keys, values["tcp_tuning_unknown_keys"], errors, warnings)
    if errors:
        return out  # nothing to apply from bad input
    # What to read on the host: each such key and its siblings (for a suggestion), as linuxnet.tcp.sysctl_facts keys.
    out["ask_host"] = sorted({pattern for key in ask for pattern in (key, sysctl_keys.name(sysctl_keys.parts_of(key)[:-1]) + ".*")})
    refused = [] if values["tcp_tuning_allow_unsafe"] else _guards(wanted)
    refused_keys = {item["key"] for item in refused}
    timeouts = None
    if ipvs:
        merged = {}
        for part in parts:
            merged.update(part.get("ipvs_timeouts") or {})
        timeouts = values["tcp_tuning_ipvs_timeouts"] or merged or None
    modules = []
    for module in [m for part in parts for m in part.get("modules") or []] + (["ip_vs"] if ipvs else []):
        if module not in modules:
            modules.append(module)
    out.update({
        "chain": chain, "modules": modules, "wanted": wanted, "guard_refused": refused, "conntrack_sizing": sizing,
        "conntrack_max": conntrack_max, "needs_host_facts": sizing and conntrack_max is None, "ipvs_timeouts": timeouts,
        "apply": {key: value for key, value in wanted.items() if key not in refused_keys},
    })
    return out
