# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
import pytest

from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import keys
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.keys import SysctlError


@pytest.mark.parametrize("key, canonical", [
    ("net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_fin_timeout"),
    ("  net.ipv4.tcp_fin_timeout ", "net.ipv4.tcp_fin_timeout"),
    ("net/ipv4/tcp_fin_timeout", "net.ipv4.tcp_fin_timeout"),
    # One spelling for results, as sysctl(8) prints it: a dot inside a component is written '/'.
    ("net/ipv4/conf/eth0.100/forwarding", "net.ipv4.conf.eth0/100.forwarding"),
    ("net.ipv4.conf.eth0/100.forwarding", "net.ipv4.conf.eth0/100.forwarding"),
    ("net/ipv4/conf/bond0.20/rp_filter", "net.ipv4.conf.bond0/20.rp_filter"),
    ("net.ipv6.conf.eth0/100/7.accept_ra", "net.ipv6.conf.eth0/100/7.accept_ra"),
    ("net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-iptables"),
])
def test_canonical_key(key, canonical):
    assert keys.canonical_key(key) == canonical


@pytest.mark.parametrize("key, words", [
    ("", "empty"),
    ("/proc/sys/net/ipv4/tcp_fin_timeout", "must not start with '/'"),
    ("-net.ipv4.tcp_fin_timeout", "must not start"),
    ("net/ipv4/../../kernel/x", "'..'"),
    ("net..ipv4", "empty"),
    ("net.ipv4.tcp_*", "glob"),
    ("net.ipv4.tcp fin", "characters"),
    ("net.ipv4.x=1", "characters"),
    ("net.ipv4.x\nkernel.core_pattern", "characters"),
    (5, "must be a string"),
    (True, "must be a string"),
])
def test_canonical_key_rejects(key, words):
    with pytest.raises(SysctlError) as err:
        keys.canonical_key(key)
    assert words in str(err.value)


def test_canonical_key_glob_allowed_when_asked():
    assert keys.canonical_key("net.ipv4.conf.*.forwarding", allow_glob=True) == "net.ipv4.conf.*.forwarding"
    assert keys.canonical_key("net/ipv4/conf/eth0.*/forwarding", allow_glob=True) == "net.ipv4.conf.eth0/*.forwarding"


@pytest.mark.parametrize("text, parts", [
    ("net.ipv4.conf.eth0/100.rp_filter", ["net", "ipv4", "conf", "eth0.100", "rp_filter"]),
    ("net/ipv4/conf/eth0.100/rp_filter", ["net", "ipv4", "conf", "eth0.100", "rp_filter"]),
    # What sysctl_normalize() leaves: no empty or '.' components, no leading slash.
    ("net..ipv4.tcp_fin_timeout", ["net", "ipv4", "tcp_fin_timeout"]),
    ("net..ipv4//x", ["net", "ipv4..x"]),  # in dotted form '//' stands for two literal dots
    ("/net/ipv4/./tcp_fin_timeout", ["net", "ipv4", "tcp_fin_timeout"]),
    ("kernel", ["kernel"]),
])
def test_split_key(text, parts):
    assert keys.split_key(text) == parts
    assert keys.parts_of(keys.name(parts)) == parts


@pytest.mark.parametrize("pattern, key, matches", [
    ("net.ipv4.conf.*.rp_filter", "net.ipv4.conf.eth0/100.rp_filter", True),
    ("net/ipv4/conf/*/rp_filter", "net.ipv4.conf.eth0/100.rp_filter", True),
    ("net.ipv4.conf.*.rp_filter", "net.ipv4.conf.eth0.rp_filter", True),
    ("net.ipv4.*", "net.ipv4.conf.eth0.rp_filter", False),  # '*' never crosses a component
    ("net.ipv4.conf.eth0/1*.rp_filter", "net.ipv4.conf.eth0/100.rp_filter", True),
    ("net.ipv4.conf.eth0?100.rp_filter", "net.ipv4.conf.eth0/100.rp_filter", True),
    ("net.ipv4.conf.{lo,eth*}.rp_filter", "net.ipv4.conf.eth0/100.rp_filter", True),
    ("net.ipv4.conf.{lo,eth*}.rp_filter", "net.ipv4.conf.bond0.rp_filter", False),
    ("net.ipv4.conf.[!l]*.rp_filter", "net.ipv4.conf.lo.rp_filter", False),
    ("net.ipv4.conf.[^l]*.rp_filter", "net.ipv4.conf.lo.rp_filter", False),
    ("net.ipv4.conf.[^l]*.rp_filter", "net.ipv4.conf.all.rp_filter", True),
    ("net.ipv4.tcp_fin_timeout", "net/ipv4/tcp_fin_timeout", True),
])
def test_pattern(pattern, key, matches):
    assert keys.Pattern(pattern).matches(keys.parts_of(key)) is matches


def test_braces_only_expand_in_globs():
    # string_is_glob() looks for * ? [ only: a key with braces alone is a literal path.
    assert keys.Pattern("net.ipv4.{a,b}").matches(["net", "ipv4", "{a,b}"])
    assert keys.Pattern("net.ipv4.{a,b}*").matches(["net", "ipv4", "bx"])


@pytest.mark.parametrize("key, hint", [
    ("net.ipv4.conf.eth0.100.rp_filter", "net.ipv4.conf.eth0/100.rp_filter"),
    ("net.ipv6.neigh.bond0.20.retrans_time", "net.ipv6.neigh.bond0/20.retrans_time"),
    ("net.ipv4.conf.eth0.rp_filter", None),
    ("net.core.somaxconn", None),
])
def test_interface_hint(key, hint):
    assert keys.interface_hint(key) == hint


@pytest.mark.parametrize("value, normal", [
    (4096, "4096"),
    ("4096", "4096"),
    ("  32768\t60999 ", "32768 60999"),
    ("4096   131072\t 16777216", "4096 131072 16777216"),
    ("0x10", "16"),
    ("bbr", "bbr"),
    ("8080,9000-9010", "8080,9000-9010"),
])
def test_normalise_value(value, normal):
    assert keys.normalise_value(value) == normal


@pytest.mark.parametrize("value, words", [
    (True, "boolean"),
    (1.5, "float"),
    ([1, 2], "list"),
    ({"a": 1}, "dict"),
    (None, "NoneType"),
    ("1\nkernel.core_pattern = |/tmp/x", "newline"),
    ("1\rx", "carriage return"),
    ("1\x00", "NUL"),
    ("1 = 2", "'='"),
    ("1 # comment", "'#'"),
    ("1 ; comment", "';'"),
    ("010", "octal"),
])
def test_normalise_value_rejects(value, words):
    with pytest.raises(SysctlError) as err:
        keys.normalise_value(value, "net.ipv4.x")
    assert words in str(err.value) and "net.ipv4.x" in str(err.value)


@pytest.mark.parametrize("left, right, equal", [
    ("32768\t60999", "32768 60999", True),
    ("16", "0x10", True),
    ("1", "2", False),
    ("cubic", "cubic", True),
    ("reno  cubic", "reno cubic", True),
    (None, "1", False),
    ("8080,9100-9110", "9100-9110, 8080", True),
    ("8080,9100-9102", "8080,9100,9101,9102", True),
    ("8080", "8081", False),
])
def test_values_equal(left, right, equal):
    assert keys.values_equal(left, right) is equal


@pytest.mark.parametrize("key, raw, expected", [
    ("net.core.somaxconn", ">= 8192", (">=", "8192")),
    ("net.core.somaxconn", "<=1024", ("<=", "1024")),
    ("net.ipv4.tcp_rmem", ">= 4096 131072 16777216", (">=", "4096 131072 16777216")),
    ("net.ipv4.tcp_fin_timeout", 30, ("=", "30")),
    ("net.ipv4.ip_local_reserved_ports", "", ("=", "")),
    # Port lists are written in the kernel's folded, ascending format so they read back unchanged.
    ("net.ipv4.ip_local_reserved_ports", "9101-9110, 8080,9100", ("=", "8080,9100-9110")),
    ("net.ipv4.ip_local_reserved_ports", ">= 20080", (">=", "20080")),
    ("net.ipv4.ip_local_reserved_ports", ">=", (">=", "")),
])
def test_parse_setting(key, raw, expected):
    assert keys.parse_setting(key, raw) == expected


@pytest.mark.parametrize("key, raw, words", [
    ("net.core.somaxconn", ">= lots", "integer"),
    ("net.ipv4.tcp_fin_timeout", "", "empty value"),
    ("net.ipv4.tcp_tw_reuse", 7, "at most 2"),
    ("net.ipv4.ip_local_reserved_ports", ">= 9110-9100", "ascending"),
    ("net.ipv4.ip_local_reserved_ports", "70000", "0..65535"),
])
def test_parse_setting_rejects(key, raw, words):
    with pytest.raises(SysctlError) as err:
        keys.parse_setting(key, raw)
    assert words in str(err.value)


@pytest.mark.parametrize("text, expanded", [
    ("net.ipv4.conf.{lo,eth0}.rp_filter", ["net.ipv4.conf.lo.rp_filter", "net.ipv4.conf.eth0.rp_filter"]),
    ("x{a,{b,c}d}y{1,2}", ["xay1", "xay2", "xbdy1", "xbdy2", "xcdy1", "xcdy2"]),
    ("x{a}y{1,2", ["x{a}y{1,2"]),  # no comma, or never closed: literal, as in glibc
    ("{,a}b", ["b", "ab"]),
    ("a{b,c}{d}{e,f}", ["ab{d}e", "ab{d}f", "ac{d}e", "ac{d}f"]),
])
def test_brace_expand(text, expanded):
    assert keys.brace_expand(text) == expanded


@pytest.mark.parametrize("pattern, words", [
    # The line: about 1,100 groups and a '*' (its expansion would be 2**1100 patterns).
    ("net.ipv4." + "{a,b}" * 1100 + "*", "longer than 1024 characters"),
    ("net.ipv4." + "{a,b}" * 11 + "*", "more than 1024 alternatives"),
    # Growth hidden inside one alternative of one group.
    ("net.{x" + "{a,b}" * 20 + ",y}.*", "more than 1024 alternatives"),
])
def test_hostile_patterns_are_refused(pattern, words):
    with pytest.raises(SysctlError) as err:
        keys.Pattern(pattern)
    assert words in str(err.value)


def test_patterns_never_recurse_on_their_input(tmp_path):
    """Nesting and component counts come from the text: none of them may cost a Python stack frame each."""
    from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.tree import SysctlTree
    import inspect
    import sys

    nested = "net.ipv4.conf." + "{a," * 250 + "b" + "}" * 250 + "*"
    deep = "net." + ".".join(["x*"] * 300)
    limit = sys.getrecursionlimit()
    # The lowest limit the interpreter accepts here is the current depth as it counts it (Python 3.12+ counts
    # more than inspect.stack() shows); 40 frames above it is far below what one frame per brace group would need.
    floor = len(inspect.stack())
    while True:
        try:
            sys.setrecursionlimit(floor)
            break
        except RecursionError:
            floor += 1
    sys.setrecursionlimit(floor + 40)
    try:
        assert len(keys.brace_expand(nested)) == 251
        assert keys.Pattern(nested).matches(["net", "ipv4", "conf", "ab"])
        assert SysctlTree(str(tmp_path)).expand(deep) == []
    finally:
        sys.setrecursionlimit(limit)


@pytest.mark.parametrize("glob, name, matches", [
    ("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", "a" * 60, False),  # exponential for a backtracking regex
    ("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", "a" * 60 + "b", True),
    ("eth[0-9]*", "eth12", True),
    ("eth[!0-9]*", "eth12", False),
    ("[]x]y", "]y", True),
    ("[!]x]y", "zy", True),
    ("a[", "a[", True),  # a set that never closes is a literal '['
    (r"a\*", "a*", True),
    (r"a\*", "ab", False),
    ("?", "", False),
    ("**", "", True),
])
def test_glob_component(glob, name, matches):
    assert keys.Pattern("net." + glob).matches(["net", name]) is matches


@pytest.mark.parametrize("key", ["net.core.somaxconn\x00", "net.core.somaxconn\nx", "a" * 1025])
def test_canonical_key_full_match(key):
    with pytest.raises(SysctlError):
        keys.canonical_key(key)
