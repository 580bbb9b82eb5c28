# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Diagnosis rules over one host's TCP document (controller side); the fleet report is in _fleet.py.

Note that this plugin util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins!

A rule is data::

    id: close_wait_leak            # [a-z0-9_]+, unique
    severity: warning              # info | warning | critical
    params: {min_count: 10}        # optional; $min_count in the query becomes the JSON of the value
    query: "tcp.close_wait.by_process[?count >= `$min_count`]"
    message: "{item.name} (pid {item.pid}) holds {item.count} sockets in CLOSE_WAIT"
    remedy: "Fix the code path that never calls close()"
    enabled: true                  # optional

The query runs over ``{tcp: ..., sysctl: ...}``. A false, null or empty result means "no finding"; a list
gives one finding per element, anything else gives one finding. ``{expr}`` placeholders in ``message`` and
``remedy`` are JMESPath expressions over ``{tcp, sysctl, params, item}`` (``item`` is the element that
matched); ``{expr:spec}`` applies a Python format spec such as ``.0%``.
"""
from __future__ import annotations

import json
import math
import re
import string

try:
    import jmespath
    from jmespath import exceptions as jmespath_exceptions
    from jmespath import functions as jmespath_functions
except ImportError:  # reported at use time, so that importing the plugin never fails
    jmespath = None
    jmespath_exceptions = None
    jmespath_functions = None

from ansible_collections.linuxnet.tcp.plugins.plugin_utils._inputs import plain

SEVERITIES = ("critical", "warning", "info")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
RULE_KEYS = frozenset(("id", "severity", "query", "message", "remedy", "params", "enabled", "title"))
OVERRIDE_KEYS = RULE_KEYS - {"id"}
_ID = re.compile(r"^[a-z0-9][a-z0-9_]*$")
# A trailing ":spec" is a format spec only when it looks like one, so JMESPath slices ([0:2]) stay intact.
_SPEC = re.compile(r"^(.*):([<>=^+\- #0,._]*[0-9]*(?:\.[0-9]+)?[bcdeEfFgGnosxX%]?)$", re.S)
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
STATE_NAMES = ("ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE",
               "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING")


class RuleError(Exception):
    """A rule (or an override) is malformed, or its query does not compile or fails."""


def _require_jmespath():
    if jmespath is None:
        raise RuleError("the linuxnet.tcp diagnosis filters need the Python 'jmespath' package on the controller "
                        "(pip install jmespath)")


def _functions():
    """Small helpers JMESPath lacks: ratios and differences, iterating over dicts keyed by sysctl name, and joining two such
    dicts on their keys (JMESPath 1.x has no variables, so a filter cannot look one object up by another's key).
    """

    class Functions(jmespath_functions.Functions):
        @jmespath_functions.signature({"types": ["number", "null"]}, {"types": ["number", "null"]})
        def _func_divide(self, num, den):
            if num is None or den is None or den == 0:
                return None
            return num / den

        @jmespath_functions.signature({"types": ["number", "null"]}, {"types": ["number", "null"]})
        def _func_subtract(self, left, right):
            if left is None or right is None:
                return None
            return left - right

        @jmespath_functions.signature({"types": ["object", "null"]})
        def _func_to_entries(self, obj):
            return [{"key": key, "value": obj[key]} for key in sorted(obj or {})]

        @jmespath_functions.signature({"types": ["object", "null"]}, {"types": ["object", "null"]})
        def _func_join_entries(self, left, right):
            left, right = left or {}, right or {}
            return [{"key": key, "left": left[key], "right": right[key]} for key in sorted(left) if key in right]

        @jmespath_functions.signature({"types": ["object", "null"]}, {"types": ["object", "null"]})
        def _func_entries_without(self, left, right):
            left, right = left or {}, right or {}
            return [{"key": key, "value": left[key]} for key in sorted(left) if key not in right]

    return Functions()


_OPTIONS = None


def _options():
    global _OPTIONS  # pylint: disable=global-statement
    if _OPTIONS is None:
        _OPTIONS = jmespath.Options(custom_functions=_functions())
    return _OPTIONS


class CompiledRule:
    """One validated rule: compiled query and compiled message/remedy placeholders."""

    def __init__(self, rule):
        self.rule = rule
        self.id = rule["id"]
        self.severity = rule["severity"]
        self.params = dict(rule.get("params") or {})
        try:
            text = string.Template(rule["query"]).substitute({k: json.dumps(v) for k, v in self.params.items()})
        except KeyError as exc:
            raise RuleError(f"rule {self.id}: the query uses ${exc.args[0]}, which is not in its params") from None
        except ValueError as exc:
            raise RuleError(f"rule {self.id}: bad $ placeholder in the query ({exc}); write $$ for a literal $") from None
        self.query_text = text
        self.query = _compile(self.id, "query", text)
        # A rule about the socket table (one that reads the document's tcp field) also runs on each container's
        # network namespace (tcp_facts namespaces=all); one about sysctl alone does not. Decided on the parsed
        # query, so that "tcp." in a string literal or sysctl.ipvs.tcp does not count.
        self.per_namespace = reads_root_field(self.query.parsed, "tcp")
        self.message = _compile_template(self.id, "message", rule["message"])
        self.remedy = _compile_template(self.id, "remedy", rule.get("remedy") or "")

    def evaluate(self, doc):
        try:
            result = self.query.search(doc, options=_options())
        except jmespath_exceptions.JMESPathError as exc:
            raise RuleError(f"rule {self.id}: query failed on this host: {exc}") from None
        if not _truthy(result):
            return []
        items = result if isinstance(result, list) else [result]
        findings = []
        for item in items:
            if not _truthy(item):
                continue
            context = dict(doc, params=self.params, item=item if isinstance(item, (dict, list)) else {"value": item})
            findings.append({
                "id": self.id,
                "severity": self.severity,
                "title": self.rule.get("title") or self.id.replace("_", " "),
                "message": _render(self.id, self.message, context),
                "remedy": _render(self.id, self.remedy, context),
                "item": item,
            })
        return findings


def _truthy(value):
    """JMESPath truthiness: false, null, and empty strings, lists and objects are false; numbers are true."""
    return not (value is None or value is False or (isinstance(value, (str, list, dict)) and not value))


def reads_root_field(node, name, at_root=True):
    """Whether the JMESPath AST ``node`` (``jmespath.compile(text).parsed``) reads the field ``name`` of the
    document it is evaluated on: ``tcp.x`` and ``a || tcp`` do, ``sysctl.ipvs.tcp``, ``'tcp.x'``, ``x[?tcp]`` and
    ``sort_by(x, &tcp)`` do not (there ``tcp`` is a field of something else, or text). JMESPath has no way back
    to the root from inside a sub-expression or projection, so only the nodes evaluated on the document count."""
    if not at_root or not isinstance(node, dict):
        return False
    kind = node.get("type")
    children = [child for child in node.get("children") or [] if isinstance(child, dict)]
    if kind == "field":
        return node.get("value") == name
    if kind in ("literal", "expref"):
        return False
    if kind in ("subexpression", "pipe"):
        # Each part is evaluated on the result of the previous one; @ (current) keeps the document.
        for child in children:
            if reads_root_field(child, name):
                return True
            if child.get("type") not in ("current", "identity"):
                return False
        return False
    if kind in ("projection", "value_projection", "filter_projection", "index_expression", "flatten"):
        # The first child is evaluated on the document, the others on its elements.
        return bool(children) and reads_root_field(children[0], name)
    # Functions, comparisons, and/or/not, multi-selects and their key/value pairs: on the same document.
    return any(reads_root_field(child, name) for child in children)


# The runtime values' key before 0.1.0: a rule written for it would silently read nothing.
_RENAMED_VALUES = re.compile(r"\bsysctl\s*\.\s*values\b")


def _compile(rule_id, field, text):
    try:
        return jmespath.compile(text)
    except jmespath_exceptions.JMESPathError as exc:
        detail = " ".join(str(exc).split())
        raise RuleError(f"rule {rule_id}: {field} does not compile: {detail} (expression: {text})") from None


def _compile_template(rule_id, field, text):
    """Split a message template into literal text and compiled (expression, spec) placeholders."""
    if not isinstance(text, str):
        raise RuleError(f"rule {rule_id}: {field} must be a string")
    parts, pos = [], 0
    for match in _PLACEHOLDER.finditer(text):
        parts.append(text[pos:match.start()])
        expr, spec = match.group(1).strip(), ""
        found = _SPEC.match(expr)
        if found and found.group(2):
            expr, spec = found.group(1).strip(), found.group(2)
        parts.append((_compile(rule_id, f"{field} placeholder {{{match.group(1)}}}", expr), spec))
        pos = match.end()
    parts.append(text[pos:])
    return parts


def _render(rule_id, parts, context):
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        expr, spec = part
        try:
            value = expr.search(context, options=_options())
        except jmespath_exceptions.JMESPathError as exc:
            raise RuleError(f"rule {rule_id}: placeholder {expr.expression} failed: {exc}") from None
        out.append(_format(value, spec))
    return "".join(out)


def _format(value, spec):
    if value is None:
        return "-"
    if spec:
        try:
            return format(value, spec)
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, float):
        return f"{value:.4g}" if not math.isnan(value) else "-"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _check_rule(rule, where, label=None):
    """Raise RuleError unless ``rule`` is well formed; messages start with ``label`` (default "rule ID")."""
    if not isinstance(rule, dict):
        raise RuleError(f"{where}: a rule must be a mapping, got {type(rule).__name__}")
    rule_id = rule.get("id")
    if not isinstance(rule_id, str) or not _ID.match(rule_id):
        raise RuleError(f"{where}: rule id {rule_id!r} must match [a-z0-9][a-z0-9_]*")
    label = label or f"rule {rule_id}"
    unknown = sorted(set(rule) - RULE_KEYS)
    if unknown:
        raise RuleError(f"{label}: unknown keys {', '.join(unknown)} (allowed: {', '.join(sorted(RULE_KEYS))})")
    for key in ("query", "message"):
        if not isinstance(rule.get(key), str) or not rule[key].strip():
            raise RuleError(f"{label}: {key} is required and must be a non-empty string")
    for key in ("query", "message"):
        if _RENAMED_VALUES.search(rule[key]):
            raise RuleError(f"{label}: {key} reads sysctl.values, which is now sysctl.runtime (renamed because "
                            "'values' is a dictionary method in Jinja)")
    if rule.get("severity") not in SEVERITIES:
        raise RuleError(f"{label}: severity {rule.get('severity')!r} must be one of {', '.join(SEVERITIES)}")
    if not isinstance(rule.get("params") or {}, dict):
        raise RuleError(f"{label}: params must be a mapping")
    if not isinstance(rule.get("enabled", True), bool):
        raise RuleError(f"{label}: enabled must be true or false")


def effective_rules(rules, overrides=None):
    """Validate ``rules``, apply ``overrides`` ({id: {severity, params, enabled, ...}}), return plain dicts.

    ``params`` of an override are merged into the rule's params; other keys replace. An override for an
    unknown rule id is an error, so that a typo does not silently leave a threshold unchanged.
    """
    if not isinstance(rules, list):
        raise RuleError(f"rules must be a list, got {type(rules).__name__}")
    rules, overrides = plain(rules), plain(overrides)
    out, seen = [], {}
    for index, rule in enumerate(rules):
        _check_rule(rule, f"rules[{index}]")
        if rule["id"] in seen:
            raise RuleError(f"rule {rule['id']}: defined twice (rules[{seen[rule['id']]}] and rules[{index}])")
        seen[rule["id"]] = index
        out.append(dict(rule))
    overrides = overrides or {}
    if not isinstance(overrides, dict):
        raise RuleError(f"overrides must be a mapping of rule id to changes, got {type(overrides).__name__}")
    for rule_id, change in overrides.items():
        if rule_id not in seen:
            raise RuleError(f"override for unknown rule {rule_id} (known: {', '.join(sorted(seen))})")
        if not isinstance(change, dict):
            raise RuleError(f"override for rule {rule_id} must be a mapping")
        unknown = sorted(set(change) - OVERRIDE_KEYS)
        if unknown:
            raise RuleError(f"override for rule {rule_id}: unknown keys {', '.join(unknown)}")
        rule = out[seen[rule_id]]
        for key, value in change.items():
            if key == "params" and isinstance(value, dict):
                rule["params"] = dict(rule.get("params") or {}, **value)
            else:
                rule[key] = value
        _check_rule(rule, f"override for rule {rule_id}", f"override for rule {rule_id}")
    return out


def compile_rules(rules, overrides=None):
    """Effective rules, each compiled; raises RuleError naming the first bad rule."""
    _require_jmespath()
    return [CompiledRule(rule) for rule in effective_rules(rules, overrides) if rule.get("enabled", True)]


def diagnose(doc, rules, overrides=None, compiled=None):
    """Findings for one host document ``{tcp, sysctl}``: critical first, then warning, then info. ``compiled``, when
    given, is a dict that keeps the compiled rules per overrides between calls (hosts that share overrides compile
    the rules once)."""
    if not isinstance(doc, dict):
        raise RuleError(f"the input must be a host document {{tcp: ..., sysctl: ...}}, got {type(doc).__name__}")
    context = {"tcp": plain(doc.get("tcp") or {}), "sysctl": plain(doc.get("sysctl") or {})}
    if compiled is None:
        rule_set = compile_rules(rules, overrides)
    else:
        key = json.dumps(plain(overrides) or {}, sort_keys=True, default=str)
        if key not in compiled:
            compiled[key] = compile_rules(rules, overrides)
        rule_set = compiled[key]
    findings = []
    for order, rule in enumerate(rule_set):
        for finding in rule.evaluate(context):
            findings.append((SEVERITY_RANK[finding["severity"]], order, finding))
    for ns_doc in context["tcp"].get("namespaces") or []:
        ns_context = namespace_context(ns_doc)
        where = namespace_of(ns_doc)
        for order, rule in enumerate(rule_set):
            if not rule.per_namespace:
                continue
            for finding in rule.evaluate(ns_context):
                finding["message"] = "In %s: %s" % (where["label"], finding["message"])
                finding["namespace"] = where
                findings.append((SEVERITY_RANK[finding["severity"]], order, finding))
    return [finding for _rank, _order, finding in sorted(findings, key=lambda row: row[:2])]


# What a rule may read of a namespace document that tcp_facts gives in compact form (namespaces=all).
_NAMESPACE_DEFAULTS = {"peers": [], "local_ports": [], "listeners": [], "counters": {}, "conntrack": {}}


def namespace_context(ns_doc):
    """``{tcp, sysctl}`` of one container's network namespace, shaped like a host's for the rules."""
    tcp = dict(_NAMESPACE_DEFAULTS, **{k: v for k, v in ns_doc.items() if k not in ("owner", "sysctl")})
    sysctl = {"runtime": (ns_doc.get("sysctl") or {}).get("runtime") or {}, "drift": {}, "persisted": {}, "missing": {},
              "overrides": {}, "writers": {}, "boot": {}}
    return {"tcp": tcp, "sysctl": sysctl}


def namespace_of(ns_doc):
    """Who a namespace finding is about: the owner's identity, without the processes list."""
    owner = ns_doc.get("owner") or {}
    first = (owner.get("processes") or [{}])[0]
    return {
        "label": ns_doc.get("label") or "network namespace %s" % ns_doc.get("inode"),
        "inode": ns_doc.get("inode"), "netns_name": ns_doc.get("netns_name"), "runtime": owner.get("runtime"),
        "container_id": owner.get("container_id"), "container_name": owner.get("container_name"),
        "pod_uid": owner.get("pod_uid"), "pod_name": owner.get("pod_name"), "pod_namespace": owner.get("pod_namespace"),
        "process": {"pid": first.get("pid"), "comm": first.get("comm"), "user": first.get("user")} if first else None,
    }
