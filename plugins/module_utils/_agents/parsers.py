# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The text formats other agents are configured in, read with the standard library (PRIVATE to the collection).

Target code runs on the managed host with the standard library only (Python 3.6 to 3.13): there is no PyYAML, no
TOML reader before 3.11, no Go flag package. Each reader here covers the subset the agents' real files use, says
what it leaves out, and fails in a way the detector can report (None, {} or ValueError, as each documents), so
a file it does not understand makes a key's value unknown instead of a wrong guess or a traceback.

- parse_flags: Go pflag command lines (kube-proxy, dockerd, containerd).
- parse_bool, parse_int: the boolean and integer spellings of Go, systemd, GLib keyfiles and TuneD.
- go_duration: Go's time.ParseDuration (kube-proxy timeouts).
- ini: systemd units and .network files, NetworkManager keyfiles, TuneD profiles.
- parse_yaml, dig: the YAML of component configuration files (kube-proxy's KubeProxyConfiguration).
JSON (daemon.json, CNI configurations) goes through the json module.
"""

import configparser
import json
import re

# ---------------------------------------------------------------------------------------------
# Command lines.


def parse_flags(argv, bool_flags=()):
    """Long options of a Go (pflag) command line: ``--name=value``, ``--name value``, bare booleans.

    The last occurrence wins, as in pflag. A flag not known to be boolean takes the next argument as its
    value unless that argument is itself an option. Single-dash options are read the same way. Reading stops
    at ``--``; positional arguments are skipped.
    """
    out = {}
    index = 1
    while index < len(argv):
        arg = argv[index]
        index += 1
        if arg == "--":
            break
        if not arg.startswith("-") or arg == "-":
            continue
        name, sep, value = arg.lstrip("-").partition("=")
        if not sep:
            if name in bool_flags or index >= len(argv) or argv[index].startswith("-"):
                value = "true"
            else:
                value = argv[index]
                index += 1
        out[name] = value
    return out


# ---------------------------------------------------------------------------------------------
# Scalars.

# The union of Go's strconv.ParseBool (1/t/true, case-insensitive here), systemd's parse_boolean (yes/y/on/true/1)
# and GLib's keyfile booleans: every agent here accepts a subset, and a spelling it rejects never reaches us
# from a running agent.
_TRUE = ("1", "true", "yes", "on", "y", "t")
_FALSE = ("0", "false", "no", "off", "n", "f")


def parse_bool(value):
    """True or False for a boolean spelling (a YAML/JSON bool as it is), None for anything else (unset included)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if value is not None else ""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def parse_int(value):
    """The integer ``value`` spells (surrounding blanks allowed), None when it is not one decimal integer."""
    try:
        return int(str(value).strip())
    except ValueError:
        return None


_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|\u00b5s|ms|s|m|h)")


def go_duration(value):
    """Seconds in a Go duration ("24h0m0s", "1h", "350s", "1.5h", "-5s", "0"), or None when it is not one.

    Go's time.ParseDuration grammar: a sign, then number+unit parts (ns, us, µs, ms, s, m, h); a bare "0" is the
    only number without a unit. A YAML/JSON number is nanoseconds, as Go's decoder reads an integer into a
    time.Duration.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value) / 1e9
    if not isinstance(value, str):
        return None
    text = value.strip()
    sign = -1.0 if text.startswith("-") else 1.0
    text = text.lstrip("+-")
    if text == "0":
        return 0.0
    total, pos = 0.0, 0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    return sign * total if pos == len(text) and pos else None


# ---------------------------------------------------------------------------------------------
# INI.

_PREAMBLE = "linuxnet-tcp-preamble"


def ini(text, inline_comments=False, strip_lines=False):
    """An INI document (systemd units, TuneD profiles, NetworkManager keyfiles) as {section: {key: value}}.

    Repeated sections and keys are merged, later wins (systemd and TuneD semantics); lines before the first
    section land in "". Keys keep their case; a key without "=" has the value "". Comments start a line with #
    or ;, and with ``inline_comments`` (TuneD's loader) also follow a value after #. With ``strip_lines`` every
    line is stripped first, as systemd's config parser (strstrip() of each line) and GLib's GKeyFile
    (NetworkManager keyfiles) do, so an indented line is a key of its own rather than configparser's
    continuation of the previous value. Not supported: systemd's backslash line continuations and specifiers
    (%i...), GKeyFile's locale keys (key[de]) beyond keeping them as keys.
    Returns {} for None and for a file configparser cannot read (an empty key, a key without "=" continued on
    an indented line): the detector then reports nothing from it instead of failing.
    """
    if strip_lines and text:
        text = "\n".join(line.strip() for line in text.splitlines())
    parser = configparser.ConfigParser(delimiters=("=",), comment_prefixes=("#", ";"),
                                       inline_comment_prefixes=("#",) if inline_comments else None, strict=False,
                                       interpolation=None, empty_lines_in_values=False, allow_no_value=True,
                                       default_section="linuxnet-tcp-no-defaults")
    parser.optionxform = str
    try:
        parser.read_string("[%s]\n%s" % (_PREAMBLE, text or ""))
    except (configparser.Error, AttributeError):
        # AttributeError: before Python 3.13, configparser fails so on a key without "=" followed by an indented
        # line (3.13 raises MultilineContinuationError, a configparser.Error); a malformed file, like any other.
        return {}
    out = {}
    for section in parser.sections():
        items = {key: (value if value is not None else "") for key, value in parser.items(section, raw=True)}
        if section != _PREAMBLE:
            out[section] = items
        elif items:
            out[""] = items
    return out


# ---------------------------------------------------------------------------------------------
# YAML: the subset of component configuration files.

def parse_yaml(text):
    """The YAML that component configuration files use (kube-proxy's KubeProxyConfiguration as kubeadm, kops and
    the distributions write it); the first document only. JSON documents go through json.

    Supported: block mappings nested by indentation (tabs count as two spaces), "- scalar" lists (also at the
    key's own indentation), plain scalars (null/~, true/false in any case, integers, floats, other text), "double"
    (JSON escapes) and 'single' ('' for a quote) quoted strings, {} and flow lists of scalars ([a, b]), "#"
    comments after a blank, "---" and "..." document markers. Not supported, and a ValueError says where: lists of
    mappings, flow mappings other than {}, block scalars (| and >), anchors, aliases and tags. YAML 1.1 booleans
    (yes/no/on/off) stay text here; parse_bool reads them where a field is a boolean.
    """
    stripped = (text or "").lstrip()
    if stripped.startswith("{"):
        return json.loads(stripped)
    lines = []
    for raw in (text or "").splitlines():
        line = _strip_comment(raw.replace("\t", "  "))
        content = line.strip()
        if content in ("---", "..."):
            if lines:
                break
            continue
        if content:
            lines.append((len(line) - len(line.lstrip(" ")), content))
    if not lines:
        return {}
    value, end = _yaml_block(lines, 0, lines[0][0])
    if end != len(lines):
        raise ValueError("unexpected indentation at %r" % lines[end][1])
    return value


def _strip_comment(line):
    """``line`` without a "#" comment: one at the start or after a blank, outside quotes."""
    quote = None
    for pos, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "#" and (pos == 0 or line[pos - 1] in " \t"):
            return line[:pos].rstrip()
    return line.rstrip()


def _is_item(content):
    return content == "-" or content.startswith("- ")


def _yaml_block(lines, index, indent):
    """The list or mapping whose lines start at ``lines[index]`` with ``indent`` spaces; (value, next index)."""
    if _is_item(lines[index][1]):
        out = []
        while index < len(lines) and lines[index][0] == indent and _is_item(lines[index][1]):
            out.append(_yaml_scalar(lines[index][1][1:]))
            index += 1
        return out, index
    out = {}
    while index < len(lines) and lines[index][0] == indent and not lines[index][1].startswith("- "):
        content = lines[index][1]
        key, sep, rest = content.partition(": ") if ": " in content else content.partition(":")
        if not sep:
            raise ValueError("expected 'key: value' at %r" % content)
        key = _yaml_scalar(key)
        index += 1
        if rest.strip():
            out[key] = _yaml_scalar(rest)
        elif index < len(lines) and (lines[index][0] > indent or (lines[index][0] == indent and lines[index][1].startswith("- "))):
            out[key], index = _yaml_block(lines, index, lines[index][0])
        else:
            out[key] = None
    return out, index


def _yaml_scalar(text):
    text = text.strip()
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text[0] == '"':
        try:
            return json.loads(text)
        except ValueError:  # not a JSON string (an escape JSON lacks, or an unclosed quote): its text, unquoted
            return text.strip('"')
    if text[0] == "'":
        return text[1:-1].replace("''", "'")
    if text == "{}":
        return {}
    if text.startswith("[") and text.endswith("]"):
        inner = text[1:-1].strip()
        return [_yaml_scalar(part) for part in inner.split(",")] if inner else []
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(text)
    except ValueError:
        pass  # not an integer: maybe a float
    try:
        return float(text)
    except ValueError:
        return text  # plain text


def dig(data, *path):
    """``data[path[0]][path[1]]...`` of parse_yaml()'s result; None where a step is missing or not a mapping."""
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data
