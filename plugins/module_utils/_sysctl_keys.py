# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tcp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Sysctl key names and values: the one place for the sysctl.d(5) naming rules.

A key is a path below ``/proc/sys``. sysctl.d(5) accepts two spellings: when the first separator is
``/``, components are split at ``/`` and dots are literal (``net/ipv4/conf/eth0.100/rp_filter``); when it
is ``.``, components are split at ``.`` and a ``/`` stands for a literal dot
(``net.ipv4.conf.eth0/100.rp_filter``). systemd-sysctl implements this in sysctl_normalize()
(src/basic/sysctl-util.c): it swaps dots and slashes when the first separator is a dot, then drops empty
and ``.`` components (path_simplify()).

Every result of the collection names a key the way ``sysctl(8)`` prints it: dotted, with a dot inside a
component written ``/``. Both spellings are accepted on input and in patterns, and a key is compared by
its components, never by its text.
"""

import fnmatch
import re

from ansible_collections.linuxnet.tcp.plugins.module_utils import _catalog as catalog

GLOB_CHARS = "*?["  # string_is_glob() in systemd's src/basic/glob-util.h
# Characters accepted in keys given as options. Interface names may carry dots, dashes, '@', ':', '+'.
_KEY_RE = re.compile(r"^[A-Za-z0-9_.:@+/-]+$")
_PATTERN_RE = re.compile(r"^[A-Za-z0-9_.:@+/*?\[\]!^{},-]+$")
# systemd's WHITESPACE (src/basic/string-util.h): what strstrip() removes around keys and values.
WHITESPACE = " \t\n\r"
# A value containing these would inject lines or comments into a sysctl.d file ('=' separates key
# and value; '#' and ';' start comments) or cannot be written to /proc/sys at all.
_FORBIDDEN_VALUE_CHARS = {"\n": "a newline", "\r": "a carriage return", "\x00": "a NUL byte", "=": "'='", "#": "'#'", ";": "';'"}
_OCTAL_RE = re.compile(r"^[+-]?0[0-9]+$")
_PORT_LIST_RE = re.compile(r"^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$")


class SysctlError(Exception):
    """Bad input or an unsupported key under ``unsupported=fail``; raised before anything changes."""


# ---------------------------------------------------------------------------------------------
# Names.

def split_key(text):
    """Components of a key in either sysctl.d(5) spelling, as systemd-sysctl reads it.

    Empty and ``.`` components are dropped (systemd's path_simplify()); ``..`` is kept, so callers can
    refuse it (systemd-sysctl never writes such a key: sysctl_write() rejects a path that is not normalised).
    """
    seps = [i for i in (text.find("."), text.find("/")) if i >= 0]
    if seps and text[min(seps)] == ".":
        text = text.translate(str.maketrans("./", "/."))
    return [part for part in text.split("/") if part not in ("", ".")]


def name(parts):
    """The collection's spelling of a key: dotted, a dot inside a component written '/' (as sysctl(8) prints)."""
    return ".".join(part.replace(".", "/") for part in parts)


def parts_of(key):
    """Components of a key in the collection's spelling (or in the slashed one)."""
    return split_key(key)


def is_glob(key):
    return any(c in key for c in GLOB_CHARS)


def canonical_key(key, allow_glob=False):
    """Validate a key given as an option and return it in the collection's spelling.

    ``net/ipv4/conf/eth0.100/rp_filter`` and ``net.ipv4.conf.eth0/100.rp_filter`` both give
    ``net.ipv4.conf.eth0/100.rp_filter``. With ``allow_glob``, glob characters (``* ? [ ]`` and braces) are
    accepted in components.
    """
    if isinstance(key, bool) or not isinstance(key, str):
        raise SysctlError("key %r must be a string" % (key,))
    text = key.strip()
    if not text:
        raise SysctlError("key %r is empty" % (key,))
    if not allow_glob and (is_glob(text) or "]" in text):
        raise SysctlError("key %r: glob patterns are not accepted here, name each key" % (key,))
    if not (_PATTERN_RE if allow_glob else _KEY_RE).match(text):
        raise SysctlError("key %r contains characters outside letters, digits and _ . / - : @ + (sysctl.d key rules)" % (key,))
    if text.startswith(("/", "-")):
        raise SysctlError("key %r must be relative to /proc/sys and must not start with '/' or '-'" % (key,))
    seps = [i for i in (text.find("."), text.find("/")) if i >= 0]
    swapped = text.translate(str.maketrans("./", "/.")) if seps and text[min(seps)] == "." else text
    raw_parts = swapped.split("/")
    if any(p in ("", ".", "..") for p in raw_parts):
        raise SysctlError("key %r has an empty, '.' or '..' component" % (key,))
    return name(raw_parts)


def interface_hint(key):
    """For a dotted interface key whose name was split at its dot, the spelling that names the interface.

    ``net.ipv4.conf.eth0.100.rp_filter`` is the path net/ipv4/conf/eth0/100/rp_filter under sysctl.d(5) rules;
    the interface eth0.100 is written ``net.ipv4.conf.eth0/100.rp_filter``. Returns None when not applicable.
    """
    parts = parts_of(key)
    if len(parts) > 5 and parts[0] == "net" and parts[1] in ("ipv4", "ipv6") and parts[2] in ("conf", "neigh"):
        return name(parts[:3] + [".".join(parts[3:-1])] + parts[-1:])
    return None


# ---------------------------------------------------------------------------------------------
# Patterns: glob(3) per component, as systemd-sysctl expands them over /proc/sys.

def _brace_expand(text):
    """Expand ``{a,b}`` alternatives (glob(3) GLOB_BRACE, which systemd-sysctl's glob_extend() sets)."""
    depth, start = 0, None
    for i, char in enumerate(text):
        if char == "{":
            if depth == 0:
                start = i
            depth += 1
        elif char == "}" and depth:
            depth -= 1
            if depth == 0:
                inner, alternatives, level, last = text[start + 1:i], [], 0, 0
                for j, c in enumerate(inner):
                    if c == "{":
                        level += 1
                    elif c == "}":
                        level -= 1
                    elif c == "," and level == 0:
                        alternatives.append(inner[last:j])
                        last = j + 1
                alternatives.append(inner[last:])
                if len(alternatives) == 1:
                    continue  # "{x}" without a comma is literal in glibc
                out = []
                for alt in alternatives:
                    out.extend(_brace_expand(text[:start] + alt + text[i + 1:]))
                return out
    return [text]


def _component_regex(part):
    # glibc reads "[^...]" as a negated set like "[!...]"; Python's fnmatch would read '^' literally.
    return re.compile(fnmatch.translate(part.replace("[^", "[!")))


class Pattern(object):
    """A key or glob pattern in either spelling, matched component by component."""

    def __init__(self, text):
        self.text = text
        self.alternatives = []
        for variant in _brace_expand(text) if is_glob(text) else [text]:
            parts = split_key(variant)
            self.alternatives.append([(_component_regex(p) if is_glob(p) else p) for p in parts])
        self.glob = is_glob(text)

    def matches(self, parts):
        for alt in self.alternatives:
            if len(alt) == len(parts) and all(p == c if isinstance(p, str) else p.match(c) for p, c in zip(alt, parts)):
                return True
        return False

    def prefixes(self):
        """Component lists of each alternative, for walking /proc/sys."""
        return self.alternatives


# ---------------------------------------------------------------------------------------------
# Values.

def _normalise_tokens(text, strict=False):
    tokens = []
    for tok in text.split():
        if strict and _OCTAL_RE.match(tok):
            # The kernel parses integers with base 0, so "010" would be octal 8: refuse to guess.
            raise ValueError("'%s' has a leading zero, which the kernel reads as octal; write it in decimal" % tok)
        ints = catalog.as_ints(tok)
        tokens.append(str(ints[0]) if ints else tok)
    return " ".join(tokens)


def normalise_read(text):
    """A value read from /proc/sys or a file: single spaces, integers in decimal."""
    return _normalise_tokens(text)


def normalise_value(value, key="value"):
    """Return the canonical string of a setting value: single spaces, integers in decimal.

    Refuses booleans, floats and containers (YAML ``yes`` would silently become 1) and characters
    that would inject lines into a sysctl.d file.
    """
    if isinstance(value, bool):
        raise SysctlError("%s: boolean %s is not a sysctl value; write 1 or 0 (quote it if you mean the text)" % (key, value))
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, str):
        raise SysctlError("%s: value must be a string or an integer, got %s" % (key, type(value).__name__))
    for char, label in _FORBIDDEN_VALUE_CHARS.items():
        if char in value:
            raise SysctlError("%s: value must not contain %s (it would inject lines into the sysctl.d file)" % (key, label))
    try:
        return _normalise_tokens(value, strict=True)
    except ValueError as exc:
        raise SysctlError("%s: %s" % (key, exc))


def values_equal(left, right):
    """Compare two values as the kernel would: whitespace-insensitive, integers numerically, port lists as sets."""
    if left is None or right is None:
        return left is right
    a, b = catalog.as_ints(left), catalog.as_ints(right)
    if a is not None and b is not None:
        return a == b
    if " ".join(left.split()) == " ".join(right.split()):
        return True
    dense_left, dense_right = "".join(left.split()), "".join(right.split())
    if _PORT_LIST_RE.match(dense_left) and _PORT_LIST_RE.match(dense_right):
        return catalog.port_set(dense_left) == catalog.port_set(dense_right)
    return False


def parse_setting(key, raw):
    """Split a requested value into (operator, normalised value); operator is '=', '>=' or '<='."""
    op = "="
    if isinstance(raw, str):
        stripped = raw.strip()
        if stripped.startswith((">=", "<=")):
            op, raw = stripped[:2], stripped[2:]
    value = normalise_value(raw, key)
    port_list = (catalog.info(key) or {}).get("kind") == catalog.PORT_LIST
    if op != "=" and not port_list:
        ints = catalog.as_ints(value)
        if not ints:
            raise SysctlError("%s: '%s N' needs integer(s) after the operator" % (key, op))
    elif value == "" and not port_list:
        raise SysctlError("%s: empty value" % key)
    msg = catalog.validate_value(key, value)
    if msg:
        raise SysctlError(msg)
    if port_list:
        # The kernel prints the list ascending with runs folded; write it that way so it reads back equal.
        value = catalog.fold_ports(catalog.port_set(value))
    return op, value
