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

import re

from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import catalog
from ansible_collections.linuxnet.tcp.plugins.module_utils._common import LinuxnetError

GLOB_CHARS = "*?["  # string_is_glob() in systemd's src/basic/glob-util.h
# Characters accepted in keys given as options (full match: '$' would also match before a trailing newline).
# Interface names may carry dots, dashes, '@', ':', '+'.
_KEY_RE = re.compile(r"[A-Za-z0-9_.:@+/-]+")
_PATTERN_RE = re.compile(r"[A-Za-z0-9_.:@+/*?\[\]!^{},-]+")
# Bounds on what a pattern may cost, whoever wrote it (an option, or any line of any sysctl.d file a package drops).
# The longest /proc/sys path is far below 256 characters; a glob line expanding to more alternatives than this
# is not configuration but a denial of service, and is refused (an option) or skipped with a warning (a file line).
MAX_KEY_LENGTH = 1024
MAX_ALTERNATIVES = 1024
# systemd's WHITESPACE (src/basic/string-util.h): what strstrip() removes around keys and values.
WHITESPACE = " \t\n\r"
# A value containing these would inject lines or comments into a sysctl.d file ('=' separates key
# and value; '#' and ';' start comments) or cannot be written to /proc/sys at all.
_FORBIDDEN_VALUE_CHARS = {"\n": "a newline", "\r": "a carriage return", "\x00": "a NUL byte", "=": "'='", "#": "'#'", ";": "';'"}
_OCTAL_RE = re.compile(r"[+-]?0[0-9]+")
_PORT_LIST_RE = re.compile(r"[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*")


class SysctlError(LinuxnetError):
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
    if len(text) > MAX_KEY_LENGTH:
        raise SysctlError("key %r... is longer than %d characters" % (text[:40], MAX_KEY_LENGTH))
    if not (_PATTERN_RE if allow_glob else _KEY_RE).fullmatch(text):
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

def _first_group(text):
    """``(start, end, alternatives)`` of the first top-level ``{...}`` holding a top-level comma, or None.

    A group without a comma (``{x}``) and an unmatched ``{`` are literal, as in glibc.
    """
    depth, start, commas = 0, None, []
    for i, char in enumerate(text):
        if char == "{":
            if depth == 0:
                start, commas = i, []
            depth += 1
        elif char == "}" and depth:
            depth -= 1
            if depth == 0 and commas:
                cuts = [start] + commas + [i]
                return start, i, [text[a + 1:b] for a, b in zip(cuts, cuts[1:])]
        elif char == "," and depth == 1:
            commas.append(i)
    return None


def brace_expand(text, limit=MAX_ALTERNATIVES):
    """Expand ``{a,b}`` alternatives (glob(3) GLOB_BRACE, which systemd-sysctl's glob_extend() sets), nested too.

    Iterative and bounded: one hostile line of ~1,100 groups would otherwise recurse past Python's stack and expand
    to 2**1100 patterns. Every pending item yields at least one result, so the expansion stops as soon as the items
    in hand exceed ``limit`` (a SysctlError), after at most about ``limit`` steps of one scan each.
    """
    if len(text) > MAX_KEY_LENGTH:
        raise SysctlError("pattern %r... is longer than %d characters" % (text[:40], MAX_KEY_LENGTH))
    done, todo = [], [text]
    while todo:
        item = todo.pop()
        group = _first_group(item)
        if group is None:
            done.append(item)
            continue
        start, end, alternatives = group
        if len(done) + len(todo) + len(alternatives) > limit:
            raise SysctlError("pattern %r... expands to more than %d alternatives" % (text[:40], limit))
        todo.extend(item[:start] + alt + item[end + 1:] for alt in reversed(alternatives))
    return done


class _Glob(object):
    """One path component of a glob(3) pattern: ``*``, ``?``, ``[...]`` sets (``[!...]`` and ``[^...]`` negate, as in
    glibc), ``\\x`` a literal x.

    Matched with the linear two-pointer algorithm (back up only to the last ``*``): a regular expression from
    fnmatch.translate() backtracks exponentially on ``*a*a*a...b`` before Python 3.9, which a sysctl.d line can hold.
    """

    STAR = object()

    def __init__(self, text):
        self.tokens = []
        i, n = 0, len(text)
        while i < n:
            char = text[i]
            if char == "*":
                if not self.tokens or self.tokens[-1] is not self.STAR:
                    self.tokens.append(self.STAR)
            elif char == "?":
                self.tokens.append(("any",))
            elif char == "\\" and i + 1 < n:
                i += 1
                self.tokens.append(("char", text[i]))
            elif char == "[":
                parsed = self._set(text, i)
                if parsed is None:
                    self.tokens.append(("char", "["))
                else:
                    token, i = parsed
                    self.tokens.append(token)
            else:
                self.tokens.append(("char", char))
            i += 1

    @staticmethod
    def _set(text, i):
        """``(("set", negate, ranges), index of its ']')`` for the set opening at ``i``, or None when it never closes."""
        j, n = i + 1, len(text)
        negate = j < n and text[j] in "!^"
        if negate:
            j += 1
        first = j
        while j < n and (text[j] != "]" or j == first):
            j += 1
        if j >= n:
            return None
        body, ranges, k = text[first:j], [], 0
        while k < len(body):
            if k + 2 < len(body) and body[k + 1] == "-":
                ranges.append((body[k], body[k + 2]))
                k += 3
            else:
                ranges.append((body[k], body[k]))
                k += 1
        return ("set", negate, tuple(ranges)), j

    @staticmethod
    def _one(token, char):
        if token[0] == "any":
            return True
        if token[0] == "char":
            return char == token[1]
        return any(low <= char <= high for low, high in token[2]) != token[1]

    def match(self, name):
        tokens, star, mark, p, s = self.tokens, -1, 0, 0, 0
        while s < len(name):
            if p < len(tokens) and tokens[p] is self.STAR:
                star, mark, p = p, s, p + 1
            elif p < len(tokens) and self._one(tokens[p], name[s]):
                p, s = p + 1, s + 1
            elif star >= 0:
                mark += 1
                p, s = star + 1, mark
            else:
                return False
        while p < len(tokens) and tokens[p] is self.STAR:
            p += 1
        return p == len(tokens)


class Pattern(object):
    """A key or glob pattern in either spelling, matched component by component.

    Raises SysctlError for a pattern beyond the bounds (see :func:`brace_expand`).
    """

    def __init__(self, text):
        self.text = text
        self.alternatives = []
        for variant in brace_expand(text) if is_glob(text) else [text]:
            parts = split_key(variant)
            self.alternatives.append([(_Glob(p) if is_glob(p) else p) for p in parts])
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
        if strict and _OCTAL_RE.fullmatch(tok):
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
    if _PORT_LIST_RE.fullmatch(dense_left) and _PORT_LIST_RE.fullmatch(dense_right):
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
