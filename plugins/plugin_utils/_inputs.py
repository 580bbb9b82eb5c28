# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Role and playbook variables checked and converted on the controller, with messages that name the variable.

Note that this plugin util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins!

Ansible checks a role's variables against ``meta/argument_specs.yml`` but hands the role the values as they were
given: ``-e tcp_tuning_profiles=web`` passes the check as a list and reaches the tasks as the string ``web``. This
module converts them the way the check does (``check_type_*`` of ansible-core, so "web,proxy" is a list of two
and "yes" a boolean), and also reads the flow-style YAML a user types on a command line (``[web, proxy]``,
``{"net.core.somaxconn": 8192}``), which ``-e key=value`` passes as text. What cannot be converted gives one
message per variable: its name, what it must be and the value it has.
"""
from __future__ import annotations

import difflib
import json

import yaml
from ansible.module_utils.common import validation

_CONVERT = {
    "str": validation.check_type_str,
    "list": validation.check_type_list,
    "dict": validation.check_type_dict,
    "bool": validation.check_type_bool,
    "int": validation.check_type_int,
    "float": validation.check_type_float,
    "path": validation.check_type_path,
    "raw": validation.check_type_raw,
}
_WORDS = {
    "str": "a string", "list": "a list", "dict": "a mapping", "bool": "a boolean (true or false)", "int": "an integer",
    "float": "a number", "path": "a path", "raw": "a value",
}


def plain(value):
    """JSON-like copy with plain Python types: dict (str keys), list, str, int, float, bool and None.

    Templating engines hand over their own subclasses (ansible-core 2.19's tagged str, dict and list; JMESPath's type
    functions look at the exact class and call those "unknown"). Any other type (a date from YAML, a set) becomes
    its text, as JSON would need it: the callers json.dumps what they get (rule parameters, settings' values)."""
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


def shown(value, limit=120):
    """A value as the user wrote it (JSON), cut to ``limit`` characters."""
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def kind(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    for types, word in ((int, "an integer"), (float, "a number"), (str, "a string"), (dict, "a mapping"),
                        ((list, tuple), "a list")):
        if isinstance(value, types):
            return word
    return type(value).__name__


def expected(option):
    """What an option must be, in words: "a list of strings", "one of present, absent", ..."""
    words = _WORDS.get(option.get("type", "str"), option.get("type"))
    if option.get("type") == "list" and option.get("elements") not in (None, "raw"):
        words += " of " + _WORDS[option["elements"]].split(" ", 1)[1] + "s"
    if option.get("choices"):
        words = "one of " + ", ".join(str(choice) for choice in option["choices"]) + (
            " (or a list of them)" if option.get("type") == "list" else "")
    return words


def closest(word, candidates, cutoff=0.6):
    """The candidate most like ``word`` (difflib's ratio at least ``cutoff``), or None."""
    found = difflib.get_close_matches(str(word), [str(c) for c in candidates], n=1, cutoff=cutoff)
    return found[0] if found else None


def did_you_mean(word, candidates, cutoff=0.6):
    match = closest(word, candidates, cutoff)
    return " (did you mean %s?)" % match if match else ""


def _from_text(value, option):
    """A list or mapping typed as text on a command line (``[a, b]``, ``{"k": 1}``) as the list or mapping."""
    if option.get("type") in ("list", "dict") and isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        if isinstance(parsed, (list, dict)):
            return plain(parsed)
    return value


def _hint(name, option, value):
    if option.get("type") == "dict" and isinstance(value, str):
        return ("; give a mapping as YAML or JSON, for example -e '{\"%s\": {\"net.core.somaxconn\": 8192}}', "
                "or key=value pairs without spaces in the values" % name)
    return ""


def check_value(name, option, value):
    """(converted value, [messages]) of one variable against its option spec."""
    value = _from_text(value, option)
    kind_name = option.get("type", "str")
    try:
        converted = _CONVERT[kind_name](value)
    except (TypeError, ValueError):
        return value, ["%s must be %s, got %s (%s)%s" % (name, expected(option), shown(value), kind(value),
                                                         _hint(name, option, value))]
    errors = []
    if kind_name == "list":
        elements = option.get("elements")
        items = []
        for index, item in enumerate(converted):
            if elements and elements != "raw":
                try:
                    item = _CONVERT[elements](item)
                except (TypeError, ValueError):
                    errors.append("%s[%d] must be %s, got %s (%s)" % (name, index, _WORDS[elements], shown(item), kind(item)))
            items.append(item)
        converted = items
    if option.get("choices"):
        bad = [item for item in (converted if kind_name == "list" else [converted]) if item not in option["choices"]]
        if bad:
            errors.append("%s must be %s, got %s%s" % (name, expected(option), shown(value),
                                                       did_you_mean(bad[0], option["choices"])))
    if kind_name == "dict" and option.get("options") and isinstance(converted, dict):
        converted, sub_errors = check_variables(option["options"], converted, prefix=name + ".", defaults=False, noun="key")
        errors += sub_errors
    return converted, errors


def check_variables(spec, given, prefix="", defaults=True, noun="variable"):
    """(values, messages): every variable of ``spec`` converted, defaults for those not given or null.

    ``given`` maps names to values as the host sees them. Names in ``given`` that are not in ``spec`` are errors
    with the closest known name (a misspelt variable is silently ignored by Ansible).
    """
    given = plain(given)
    values, errors = {}, []
    for name in sorted(set(given) - set(spec)):
        errors.append("%s%s is not a known %s%s; known: %s" % (prefix, name, noun, did_you_mean(name, spec), ", ".join(sorted(spec))))
    for name, option in spec.items():
        value = given.get(name)
        if value is None:
            if option.get("required"):
                errors.append("%s%s is required (%s)" % (prefix, name, expected(option)))
            if defaults or name in given:
                values[name] = plain(option.get("default"))
            continue
        values[name], messages = check_value(prefix + name, option, value)
        errors += messages
    return values, errors
