# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The audit report as data: per-host summaries, the fleet view built from them, the comparison with an earlier
report, and the merge of reports written by separate runs (controller side).

Note that this plugin util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins!

Everything a report shows is computed from the list of host summaries (plus the hosts without facts and the
options), never from the run that produced them. That is what makes a merge of sliced runs equal to one run over
the same hosts: ``report(a + b) == merge(report(a), report(b))`` apart from timestamps.
"""
from __future__ import annotations

import glob
import json
import os
import re

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.linuxnet.tcp.plugins.plugin_utils._rules import (
    SEVERITIES, SEVERITY_RANK, STATE_NAMES, RuleError, diagnose, plain)

SCHEMA = "linuxnet.tcp.audit/2"
OLD_SCHEMA = "linuxnet.tcp.audit/1"
# Item fields that say *what* a finding is about (so that the same finding is recognised in the next report) and
# how big it is (so that "grown" can be told from noise), in order of preference.
MAGNITUDE_KEYS = ("count", "total", "in_use", "queue", "overflows", "overflow", "orphan", "sent", "dropped",
                  "utilisation")
# Sockets that are neither working (ESTABLISHED) nor waiting for work (LISTEN): what "trouble" ranks by.
QUIET_STATES = ("ESTABLISHED", "LISTEN")
_DIGITS = re.compile(r"(\d+)")


def natural_key(name):
    """Sort key that puts h2 before h10: text parts compare case-folded, digit runs as numbers."""
    parts = _DIGITS.split(str(name))
    return [int(part) if index % 2 else part.casefold() for index, part in enumerate(parts)] + [str(name)]


def endpoint(remote):
    """How a remote endpoint reads: ``10.0.0.5:3306`` for an outbound connection, ``from 10.0.0.7 to local port
    8080`` for an inbound one (facts from tcp_facts with ``local_port``), ``from 10.0.0.7 (inbound)`` when the
    facts predate ``local_port``."""
    if not isinstance(remote, dict):
        return "-"
    address = str(remote.get("address") or "-")
    shown = "[%s]" % address if ":" in address else address
    if remote.get("port") is not None:
        return "%s:%s" % (shown, remote["port"])
    if remote.get("local_port") is not None:
        return "from %s to local port %s" % (address, remote["local_port"])
    return "from %s (inbound)" % address


def _number(value):
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def finding_subject(item):
    """What a finding is about, stable between runs: a sysctl key, a listener or destination, or a process
    (name and user: a restarted process gets a new pid). Empty for a finding about the host as a whole."""
    if not isinstance(item, dict):
        return ""
    if isinstance(item.get("key"), str):
        return item["key"]
    if item.get("address") is not None and "port" in item:
        return endpoint(item)
    if isinstance(item.get("name"), str):
        return "%s (%s)" % (item["name"], item["user"]) if item.get("user") else item["name"]
    return ""


def finding_magnitude(item):
    """How big a finding is (sockets, ports in use, queue length, ...), or None when it has no size."""
    if not isinstance(item, dict):
        return None
    for key in MAGNITUDE_KEYS:
        value = _number(item.get(key))
        if value is not None:
            return value
    return _number(item.get("value"))


def _host_view(value, with_findings=True):
    """tcp, sysctl, findings and groups of a hostvars entry (facts under ansible_facts) or a plain document
    ``{tcp, sysctl, findings, groups}``. Only the keys needed are read: a hostvars entry templates each variable
    on access."""
    facts = value.get("ansible_facts") if hasattr(value, "get") else None
    if not isinstance(facts, dict) or "tcp" not in facts:
        facts = value if hasattr(value, "get") else {}
    findings = facts.get("tcp_findings") if with_findings else None
    if findings is None and with_findings:
        findings = facts.get("findings")
    groups = value.get("group_names") if hasattr(value, "get") else None
    if groups is None:
        groups = facts.get("groups")
    return (plain(facts.get("tcp") or {}), plain(facts.get("sysctl") or {}), plain(list(findings or [])),
            plain(list(groups or [])))


def host_summary(host, tcp, sysctl, findings, groups=()):
    """One host's part of the report: what every view is computed from. None when the host has no TCP facts."""
    states = tcp.get("states") or {}
    if not states:
        return None
    counts = {name: 0 for name in SEVERITIES}
    kept = []
    for finding in findings:
        severity = finding.get("severity") if finding.get("severity") in SEVERITY_RANK else "info"
        counts[severity] += 1
        item = finding.get("item")
        where = finding.get("namespace")
        subject = finding_subject(item)
        kept.append({
            "id": finding.get("id"), "severity": severity, "title": finding.get("title") or finding.get("id"),
            "message": finding.get("message") or "", "remedy": finding.get("remedy") or "",
            # A container's finding is about that container: its label is part of what the finding is about.
            "subject": ("%s: %s" % (where.get("label"), subject) if subject else where.get("label")) if where else subject,
            "magnitude": finding_magnitude(item), "item": item, "namespace": where,
        })
    collection = tcp.get("collection") or {}
    time_wait = tcp.get("time_wait") or {}
    close_wait = tcp.get("close_wait") or {}
    tw_remote = (time_wait.get("by_remote") or [None])[0]
    top_proc = (close_wait.get("by_process") or [None])[0]
    cw_remote = ((top_proc or {}).get("remotes") or [None])[0]
    state_counts = {name: int(states.get(name) or 0) for name in STATE_NAMES}
    total = int(states.get("total") or 0)
    return {
        "host": host,
        "groups": sorted({str(group) for group in groups}, key=natural_key),
        "kernel": collection.get("kernel") or (sysctl.get("kernel") or {}).get("release"),
        "backend": collection.get("backend"),
        "states": state_counts,
        "total": total,
        "trouble": total - sum(state_counts[name] for name in QUIET_STATES),
        "worst": next((name for name in SEVERITIES if counts[name]), None),
        "counts": counts,
        "findings": kept,
        "time_wait": {
            "total": int(time_wait.get("total") or 0),
            "top_remote": dict(tw_remote, text=endpoint(tw_remote)) if tw_remote else None,
        },
        "close_wait": {
            "total": int(close_wait.get("total") or 0),
            "unowned": int(close_wait.get("unowned") or 0),
            "top_process": ({key: top_proc.get(key) for key in ("pid", "name", "user", "count")} if top_proc else None),
            "top_remote": dict(cw_remote, text=endpoint(cw_remote)) if cw_remote else None,
        },
        "namespaces": namespace_summaries(tcp.get("namespaces") or [], kept),
        "namespaces_scanned": len(tcp.get("namespaces") or []),
        "namespace_states": namespace_states(tcp.get("namespaces") or []),
    }


def namespace_states(docs):
    """Sockets per state (and ``total``) summed over every container namespace read on the host."""
    totals = {name: 0 for name in STATE_NAMES + ("total",)}
    for doc in docs:
        states = doc.get("states") or {}
        for name in totals:
            totals[name] += int(states.get(name) or 0)
    return totals


NAMESPACE_KEYS = ("label", "inode", "netns_name", "runtime", "container_id", "container_name", "pod_uid", "pod_name",
                  "pod_namespace")


def namespace_summaries(docs, findings):
    """The host's container namespaces worth a row: those with findings or with TIME_WAIT or CLOSE_WAIT sockets."""
    by_inode = {}
    for finding in findings:
        if finding.get("namespace"):
            by_inode.setdefault(finding["namespace"].get("inode"), []).append(finding)
    rows = []
    for doc in docs:
        owner = doc.get("owner") or {}
        states = doc.get("states") or {}
        mine = by_inode.get(doc.get("inode"), [])
        time_wait, close_wait = int(states.get("TIME_WAIT") or 0), int(states.get("CLOSE_WAIT") or 0)
        if not mine and not time_wait and not close_wait:
            continue
        top_tw = ((doc.get("time_wait") or {}).get("by_remote") or [None])[0]
        top_cw = ((doc.get("close_wait") or {}).get("by_process") or [None])[0]
        row = {key: (doc.get(key) if key in ("label", "inode", "netns_name") else owner.get(key)) for key in NAMESPACE_KEYS}
        first = (owner.get("processes") or [None])[0]
        row.update(process=first, total=int(states.get("total") or 0), TIME_WAIT=time_wait, CLOSE_WAIT=close_wait,
                   top_remote=dict(top_tw, text=endpoint(top_tw)) if top_tw else None,
                   top_process=({key: top_cw.get(key) for key in ("pid", "name", "user", "count")} if top_cw else None),
                   findings=[{"id": f["id"], "severity": f["severity"], "message": f["message"]} for f in mine],
                   worst=next((name for name in SEVERITIES if any(f["severity"] == name for f in mine)), None))
        rows.append(row)
    return rows


def rank_key(summary):
    """Most severe finding first, then more critical, warning and info findings, then more sockets in trouble
    states (neither ESTABLISHED nor LISTEN), then the name in natural order."""
    counts = summary["counts"]
    return (SEVERITY_RANK.get(summary["worst"], len(SEVERITIES)), -counts["critical"], -counts["warning"],
            -counts["info"], -summary["trouble"], natural_key(summary["host"]))


def _worst_counts():
    return {name: 0 for name in SEVERITIES + ("none",)}


def _rest(rows, shown, key):
    left = rows[shown:]
    return {"hosts": len(left), "total": sum(row[key] for row in left)}


def fleet_view(summaries, missing, top=10, report_top=20, rule_order=()):
    """Fleet totals, findings by rule, groups, leaders and the chart rows, from ranked host summaries."""
    order = {rule_id: index for index, rule_id in enumerate(rule_order)}
    totals = {name: 0 for name in STATE_NAMES}
    totals["total"] = 0
    finding_counts = {name: 0 for name in SEVERITIES}
    by_worst = _worst_counts()
    rules, groups = {}, {}
    for summary in summaries:
        for name in STATE_NAMES:
            totals[name] += summary["states"][name]
        totals["total"] += summary["total"]
        by_worst[summary["worst"] or "none"] += 1
        for name in SEVERITIES:
            finding_counts[name] += summary["counts"][name]
        seen = set()
        for finding in summary["findings"]:
            rule = rules.setdefault(finding["id"], {"id": finding["id"], "title": finding["title"],
                                                    "severity": finding["severity"], "findings": 0, "rows": []})
            # Overrides per host can give one rule several severities: the rule counts as its most severe finding.
            if SEVERITY_RANK[finding["severity"]] < SEVERITY_RANK[rule["severity"]]:
                rule["severity"] = finding["severity"]
            rule["findings"] += 1
            rule["rows"].append((summary, finding))
            seen.add(finding["id"])
        for group in summary["groups"] or ["ungrouped"]:
            row = groups.setdefault(group, {"group": group, "hosts": 0, "hosts_by_worst": _worst_counts(),
                                            "sockets": 0, "TIME_WAIT": 0, "CLOSE_WAIT": 0, "rules": {}})
            row["hosts"] += 1
            row["hosts_by_worst"][summary["worst"] or "none"] += 1
            row["sockets"] += summary["total"]
            row["TIME_WAIT"] += summary["states"]["TIME_WAIT"]
            row["CLOSE_WAIT"] += summary["states"]["CLOSE_WAIT"]
            for rule_id in seen:
                row["rules"][rule_id] = row["rules"].get(rule_id, 0) + 1
    by_rule = []
    for rule in rules.values():
        # The worst case of a rule: the biggest magnitude, then the host's own rank.
        rows = sorted(rule.pop("rows"), key=lambda pair: (-(pair[1]["magnitude"] or 0), rank_key(pair[0])))
        affected, worst_hosts = [], {}
        for summary, finding in rows:
            if summary["host"] not in worst_hosts:
                affected.append(summary["host"])
                worst_hosts[summary["host"]] = {"host": summary["host"], "magnitude": finding["magnitude"], "findings": 0}
            worst_hosts[summary["host"]]["findings"] += 1
        first = rows[0][1]
        # worst has a row per finding (a host can have several of one rule), worst_hosts one per host: the lists of
        # "worst hosts" name each host once, with its biggest finding, and count hosts, not findings.
        rule.update(hosts=len(affected), affected=affected, message=first["message"], remedy=first["remedy"],
                    example_host=rows[0][0]["host"],
                    worst=[{"host": summary["host"], "subject": finding["subject"], "magnitude": finding["magnitude"],
                            "message": finding["message"]} for summary, finding in rows[:report_top]],
                    worst_hosts=[worst_hosts[host] for host in affected[:report_top]])
        by_rule.append(rule)
    by_rule.sort(key=lambda r: (SEVERITY_RANK[r["severity"]], -r["hosts"], order.get(r["id"], len(order)), r["id"]))
    group_rows = []
    for row in groups.values():
        row["rules"] = [{"id": rule_id, "hosts": count} for rule_id, count in
                        sorted(row["rules"].items(), key=lambda kv: (-kv[1], order.get(kv[0], len(order)), kv[0]))[:3]]
        group_rows.append(row)
    group_rows.sort(key=lambda r: (-r["hosts_by_worst"]["critical"], -r["hosts_by_worst"]["warning"],
                                   -r["hosts_by_worst"]["info"], -r["hosts"], natural_key(r["group"])))
    tw_rows = sorted(({"host": s["host"], "total": s["time_wait"]["total"], "top_remote": s["time_wait"]["top_remote"]}
                      for s in summaries if s["time_wait"]["total"]), key=lambda r: (-r["total"], natural_key(r["host"])))
    cw_rows = sorted(({"host": s["host"], "total": s["close_wait"]["total"], "unowned": s["close_wait"]["unowned"],
                       "top_process": s["close_wait"]["top_process"], "top_remote": s["close_wait"]["top_remote"]}
                      for s in summaries if s["close_wait"]["total"]), key=lambda r: (-r["total"], natural_key(r["host"])))
    containers = []
    for summary in summaries:
        containers.extend(dict(row, host=summary["host"]) for row in summary.get("namespaces") or [])
    with_findings = sorted((row for row in containers if row["findings"]),
                           key=lambda r: (SEVERITY_RANK.get(r["worst"], len(SEVERITIES)), -len(r["findings"]),
                                          -(r["TIME_WAIT"] + r["CLOSE_WAIT"]), natural_key(r["host"]), r["label"]))
    ns_tw = sorted((r for r in containers if r["TIME_WAIT"]), key=lambda r: (-r["TIME_WAIT"], natural_key(r["host"]), r["label"]))
    ns_cw = sorted((r for r in containers if r["CLOSE_WAIT"]), key=lambda r: (-r["CLOSE_WAIT"], natural_key(r["host"]), r["label"]))
    # Both leader lists in one table, each namespace once. An inode number is unique within one kernel only, so
    # two hosts' namespaces can share one: a namespace is its host and its inode.
    leaders = {}
    for row in ns_tw[:top] + ns_cw[:top]:
        leaders.setdefault((row["host"], row["inode"] if row["inode"] is not None else row["label"]), row)
    # Sockets of the hosts' own namespaces plus those of every container namespace read: what the headline counts,
    # so that it agrees with the findings below it (a report from before namespace_states has none).
    in_containers = {name: sum((s.get("namespace_states") or {}).get(name, 0) for s in summaries)
                     for name in STATE_NAMES + ("total",)}
    sockets = {name: totals[name] + in_containers[name] for name in STATE_NAMES + ("total",)}
    sockets.update(hosts=totals["total"], containers=in_containers["total"])
    by_sockets = sorted(summaries, key=lambda s: (-s["total"], natural_key(s["host"])))
    rest_states = {name: sum(s["states"][name] for s in by_sockets[report_top:]) for name in STATE_NAMES}
    return {
        "hosts": len(summaries),
        "hosts_without_facts": sorted(missing, key=natural_key),
        "states": totals,
        "sockets": sockets,
        "findings": finding_counts,
        "hosts_by_worst": by_worst,
        "by_rule": by_rule,
        "groups": group_rows,
        "time_wait_leaders": tw_rows[:top],
        "time_wait_rest": _rest(tw_rows, top, "total"),
        "close_wait_leaders": cw_rows[:top],
        "close_wait_rest": _rest(cw_rows, top, "total"),
        "containers": {
            "hosts_scanned": sum(1 for s in summaries if s.get("namespaces_scanned")),
            "namespaces_scanned": sum(s.get("namespaces_scanned") or 0 for s in summaries),
            "states": in_containers,
            "with_findings": with_findings[:report_top],
            "with_findings_rest": len(with_findings[report_top:]),
            "time_wait_leaders": ns_tw[:top],
            "close_wait_leaders": ns_cw[:top],
            "leaders": list(leaders.values()),
        },
        "chart": {
            "rows": [{"host": s["host"], "states": s["states"], "total": s["total"]} for s in by_sockets[:report_top]],
            "rest": {"hosts": max(len(by_sockets) - report_top, 0), "states": rest_states,
                     "total": sum(s["total"] for s in by_sockets[report_top:])},
        },
    }


def _finding_keys(summary):
    """{(rule id, subject): finding} of a host; several findings with one key (a rule that matched two
    processes of the same name) keep the biggest."""
    out = {}
    for finding in summary.get("findings") or []:
        key = (finding.get("id"), finding.get("subject") or "")
        if key not in out or (finding.get("magnitude") or 0) > (out[key].get("magnitude") or 0):
            out[key] = finding
    return out


def _previous_hosts(previous):
    """Host name -> summary-like {findings: [...]} of a previous report, schema 2 or 1."""
    schema = previous.get("schema")
    if schema == SCHEMA:
        return {s["host"]: s for s in previous.get("hosts") or []}
    if schema == OLD_SCHEMA:
        fleet = previous.get("fleet") or {}
        out = {row["host"]: {"host": row["host"], "findings": []} for row in fleet.get("per_host") or []}
        for severity in SEVERITIES:
            for finding in (fleet.get("findings_by_severity") or {}).get(severity) or []:
                entry = out.setdefault(finding.get("host"), {"host": finding.get("host"), "findings": []})
                entry["findings"].append(dict(finding, subject=finding_subject(finding.get("item")),
                                              magnitude=finding_magnitude(finding.get("item"))))
        return out
    raise RuleError("not a linuxnet.tcp.audit report (schema %r, expected %s or %s)" % (schema, SCHEMA, OLD_SCHEMA))


def _change(host, finding, **extra):
    return dict({"host": host, "id": finding.get("id"), "severity": finding.get("severity"),
                 "title": finding.get("title") or finding.get("id"), "subject": finding.get("subject") or "",
                 "magnitude": finding.get("magnitude"), "message": finding.get("message") or ""}, **extra)


def compare(summaries, previous, growth=0.2, source=None):
    """New, resolved and grown findings per host and per rule against a previous report document.

    Only hosts present in both reports are compared; hosts that appear or disappear are listed as such (their
    findings are neither new nor resolved). A finding is the same one when its rule and subject match; it has
    grown when its magnitude rose by at least ``growth`` (0.2: by 20 %).
    """
    before = _previous_hosts(previous)
    now = {s["host"]: s for s in summaries}
    new, resolved, grown = [], [], []
    for summary in summaries:
        host = summary["host"]
        if host not in before:
            continue
        old, cur = _finding_keys(before[host]), _finding_keys(summary)
        for key, finding in cur.items():
            if key not in old:
                new.append(_change(host, finding))
                continue
            was, is_ = _number(old[key].get("magnitude")), _number(finding.get("magnitude"))
            if was is not None and is_ is not None and is_ > was and is_ >= was * (1 + growth):
                grown.append(_change(host, finding, before=was))
        for key, finding in old.items():
            if key not in cur:
                resolved.append(_change(host, finding))
    by_rule, by_host = {}, {}
    for kind, rows in (("new", new), ("resolved", resolved), ("grown", grown)):
        for row in rows:
            by_rule.setdefault(row["id"], {"new": 0, "resolved": 0, "grown": 0})[kind] += 1
            by_host.setdefault(row["host"], {"new": 0, "resolved": 0, "grown": 0})[kind] += 1
    order = {s["host"]: index for index, s in enumerate(summaries)}
    for rows in (new, resolved, grown):
        rows.sort(key=lambda r: (SEVERITY_RANK.get(r["severity"], len(SEVERITIES)), order[r["host"]], r["id"], r["subject"]))
    return {
        "available": True,
        "previous": {"generated": previous.get("generated"), "hosts": len(before), "source": source},
        "growth": growth,
        "hosts_added": sorted((h for h in now if h not in before), key=natural_key),
        "hosts_removed": sorted((h for h in before if h not in now), key=natural_key),
        "counts": {"new": len(new), "resolved": len(resolved), "grown": len(grown)},
        "new": new, "resolved": resolved, "grown": grown,
        "by_rule": by_rule,
        "by_host": by_host,
    }


def read_report(path, what):
    """A report document from a JSON file; RuleError naming ``what`` (the option) when it is not one."""
    try:
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
    except OSError as exc:
        raise RuleError("%s: cannot read %s: %s" % (what, path, exc.strerror)) from None
    except ValueError as exc:
        raise RuleError("%s: %s is not JSON: %s" % (what, path, exc)) from None
    if not isinstance(doc, dict) or doc.get("schema") not in (SCHEMA, OLD_SCHEMA):
        schema = doc.get("schema") if isinstance(doc, dict) else None
        raise RuleError("%s: %s is not a linuxnet.tcp.audit report (schema %r)" % (what, path, schema))
    return doc


def _comparison(summaries, compare_with, growth):
    if compare_with is None or compare_with == "":
        return None
    if isinstance(compare_with, dict):
        try:
            return compare(summaries, plain(compare_with), growth)
        except RuleError as exc:
            raise RuleError("compare_with: %s" % exc) from None
    path = os.path.expanduser(str(compare_with))
    if not os.path.exists(path):
        return {"available": False, "note": "no previous report at %s" % path}
    return compare(summaries, read_report(path, "compare_with"), growth, source=path)


def _check_options(top, report_top, growth):
    for name, value, least in (("top", top, 0), ("report_top", report_top, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise RuleError("%s must be an integer of at least %d, got %r" % (name, least, value))
    if isinstance(growth, bool) or not isinstance(growth, (int, float)) or growth < 0:
        raise RuleError("growth must be a number of at least 0 (0.2 means 20 %%), got %r" % (growth,))


def build_report(summaries, missing, top=10, report_top=20, compare_with=None, growth=0.2, rules=None, details=None,
                 merged_from=None, settings=None):
    """The report document (without the run's timestamp): ranked host summaries, the fleet view, the comparison."""
    _check_options(top, report_top, growth)
    summaries = sorted(summaries, key=rank_key)
    have = {s["host"] for s in summaries}
    missing = [host for host in dict.fromkeys(missing) if host not in have]
    rule_order = [rule.get("id") for rule in rules or [] if isinstance(rule, dict)]
    doc = {
        "schema": SCHEMA,
        "options": {"top": top, "report_top": report_top, "growth": growth},
        "hosts": summaries,
        "fleet": fleet_view(summaries, missing, top, report_top, rule_order),
        "comparison": _comparison(summaries, compare_with, growth),
    }
    if rules is not None:
        doc["rules"] = rules
    if details is not None:
        doc["details"] = {host: details[host] for host in sorted(details, key=natural_key)}
    if merged_from is not None:
        doc["merged_from"] = merged_from
    if settings is not None:
        doc["settings"] = settings
    return doc


def _diagnosis(spec):
    """Check the ``diagnose`` option: {rules, overrides, overrides_var}."""
    if not isinstance(spec, dict) or not isinstance(spec.get("rules"), list):
        raise RuleError("diagnose must be a mapping with rules (a list), and optionally overrides and overrides_var")
    unknown = sorted(set(spec) - {"rules", "overrides", "overrides_var"})
    if unknown:
        raise RuleError("diagnose: unknown keys %s" % ", ".join(unknown))
    return spec["rules"], spec.get("overrides") or {}, spec.get("overrides_var")


def _setting_value(found, default):
    """A host's value of a setting, of the type of its default: ``-e name=true`` and an INI inventory give the
    string "true" where the role reads ``name | bool``, and a number where a string is expected."""
    found = plain(found)
    if isinstance(default, bool) and (found is None or isinstance(found, (str, int, float))):
        return boolean(found, strict=False)
    if isinstance(default, str) and isinstance(found, (int, float)) and not isinstance(found, bool):
        return str(found)
    return found


def _settings(value, settings, out, host):
    """Add ``host`` under the value it has for each variable of ``settings`` ({name: default}), converted to the
    type of the default."""
    for name, default in settings.items():
        found = _setting_value(value.get(name), default) if hasattr(value, "get") and name in value else plain(default)
        out.setdefault(name, {}).setdefault(json.dumps(found, sort_keys=True), []).append(host)


def summarise_hosts(hosts_data, hosts=None, details=False, diagnosis=None, settings=None):
    """(summaries, hosts without facts, details) of a mapping host -> hostvars entry or plain document. With
    ``diagnosis`` ({rules, overrides, overrides_var}) each host's findings are evaluated here from its facts, with
    the overrides in its own ``overrides_var`` variable when it has one, instead of read from its data."""
    if not hasattr(hosts_data, "keys"):
        raise RuleError("the input must be a mapping of host name to its facts, or a list of reports, got %s"
                        % type(hosts_data).__name__)
    rules, overrides, overrides_var = _diagnosis(diagnosis) if diagnosis is not None else (None, None, None)
    if settings is not None and not isinstance(settings, dict):
        raise RuleError("settings must be a mapping of variable name to its default, got %s" % type(settings).__name__)
    compiled, by_value = {}, {}
    names = list(hosts) if hosts is not None else sorted(hosts_data.keys(), key=natural_key)
    summaries, missing, detail = [], [], {}
    for host in names:
        try:
            value = hosts_data[host]
        except KeyError:
            missing.append(host)
            continue
        if settings:
            _settings(value, settings, by_value, host)
        tcp, sysctl, found, groups = _host_view(value, rules is None)
        if rules is not None and tcp.get("states"):
            own = value.get(overrides_var) if overrides_var and hasattr(value, "get") and overrides_var in value else None
            try:
                found = diagnose({"tcp": tcp, "sysctl": sysctl}, rules, plain(own) if own is not None else overrides,
                                 compiled)
            except RuleError as exc:
                raise RuleError("%s: %s" % (host, exc)) from None
        summary = host_summary(host, tcp, sysctl, found, groups)
        if summary is None:
            missing.append(host)
            continue
        summaries.append(summary)
        if details:
            detail[host] = {"tcp": tcp, "sysctl": sysctl}
    if settings is not None:
        # Values as JSON text keys (true, "", "never"), each with its hosts; every named variable is present.
        by_value = {name: by_value.get(name, {}) for name in settings}
    return summaries, missing, (detail if details else None), (by_value if settings is not None else None)


def _expand(reports):
    """Report documents and paths, glob patterns replaced by the files they match (sorted)."""
    out = []
    for entry in reports:
        if isinstance(entry, str) and glob.has_magic(entry):
            found = sorted(glob.glob(os.path.expanduser(entry)))
            if not found:
                raise RuleError("the pattern %s matches no file" % entry)
            out.extend(found)
        else:
            out.append(entry)
    return out


def merge_reports(reports):
    """The parts of several report documents (or report.json paths) a merged report is built from: ``hosts``
    (summaries), ``missing``, ``details``, and ``rules``, ``options``, ``fail_on`` of the first report, and
    ``sources`` (each report's path, timestamp and host count).

    A host in more than one report is taken from the report generated last. Hosts without facts in one report
    but with facts in another are not missing.
    """
    docs = []
    for index, entry in enumerate(_expand(reports)):
        if isinstance(entry, str):
            doc = read_report(os.path.expanduser(entry), "reports[%d]" % index)
            source = entry
        elif isinstance(entry, dict):
            doc, source = plain(entry), None
        else:
            raise RuleError("reports[%d] must be a report document or the path of a report.json, got %s"
                            % (index, type(entry).__name__))
        if doc.get("schema") != SCHEMA:
            raise RuleError("reports[%d]%s is a %r report; only %s reports carry every host's summary and can be "
                            "merged" % (index, " (%s)" % source if source else "", doc.get("schema"), SCHEMA))
        docs.append((str(doc.get("generated") or ""), index, doc, source))
    if not docs:
        raise RuleError("no report to merge: give report documents or report.json paths")
    chosen, details, missing = {}, {}, []
    for _generated, _index, doc, _source in sorted(docs, key=lambda entry: entry[:2]):
        for summary in doc.get("hosts") or []:
            chosen[summary["host"]] = summary
        details.update(doc.get("details") or {})
        missing.extend((doc.get("fleet") or {}).get("hosts_without_facts") or [])
    first = docs[0][2]
    return {
        "hosts": list(chosen.values()),
        "missing": missing,
        "details": details if any("details" in doc for _g, _i, doc, _s in docs) else None,
        "rules": first.get("rules"),
        "options": first.get("options") or {},
        "fail_on": first.get("fail_on"),
        "sources": [{"source": source, "generated": doc.get("generated"), "hosts": len(doc.get("hosts") or [])}
                    for _generated, _index, doc, source in docs],
    }
