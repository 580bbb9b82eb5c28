# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The readers of agents' configuration formats (plugins/module_utils/_agents/parsers.py), table by table."""
import pytest

from ansible_collections.linuxnet.tcp.plugins.module_utils._agents import parsers as R
from ansible_collections.linuxnet.tcp.plugins.module_utils._agents.kube_proxy import KUBE_PROXY_BOOL_FLAGS


@pytest.mark.parametrize("argv, expected", [
    (["kp", "--config=/a", "--v=2"], {"config": "/a", "v": "2"}),
    (["kp", "--config", "/a", "--ipvs-strict-arp", "--proxy-mode", "ipvs"], {"config": "/a", "ipvs-strict-arp": "true", "proxy-mode": "ipvs"}),
    (["kp", "--unknown-bool", "--x=1"], {"unknown-bool": "true", "x": "1"}),  # a non-bool flag followed by an option
    (["kp", "--a=1", "--a=2"], {"a": "2"}),                                    # the last one wins, as in pflag
    (["kp", "--", "--after=1"], {}),
    (["dockerd", "-H", "fd://", "-b", "br0"], {"H": "fd://", "b": "br0"}),
    (["kp", "positional", "--last"], {"last": "true"}),                        # positional skipped; a last flag is bare
    (["kp", "-", "--x", "-"], {"x": "true"}),                                  # "-" (stdin) is neither flag nor value
    (["kp", "--empty="], {"empty": ""}),
    (["kp"], {}),
])
def test_parse_flags(argv, expected):
    assert R.parse_flags(argv, KUBE_PROXY_BOOL_FLAGS) == expected


def test_a_known_bool_flag_never_takes_the_next_argument():
    assert R.parse_flags(["kp", "--ipvs-strict-arp", "ipvs"], KUBE_PROXY_BOOL_FLAGS) == {"ipvs-strict-arp": "true"}
    assert R.parse_flags(["kp", "--ipvs-strict-arp", "ipvs"]) == {"ipvs-strict-arp": "ipvs"}


@pytest.mark.parametrize("value, expected", [
    (True, True), (False, False), ("1", True), ("yes", True), (" On ", True), ("TRUE", True), ("t", True), ("y", True),
    ("0", False), ("no", False), ("off", False), ("False", False), ("f", False), ("n", False),
    (None, None), ("", None), ("maybe", None), ("2", None), (1, True), (0, False), ({"a": 1}, None),
])
def test_parse_bool(value, expected):
    assert R.parse_bool(value) is expected


@pytest.mark.parametrize("value, expected", [
    ("5", 5), (" 64 \n", 64), ("-1", -1), (7, 7), ("0x10", None), ("1.5", None), ("", None), ("two", None),
    ("4096 87380", None),
])
def test_parse_int(value, expected):
    assert R.parse_int(value) == expected


@pytest.mark.parametrize("text, seconds", [
    ("24h0m0s", 86400.0), ("1h", 3600.0), ("350s", 350.0), ("1.5h", 5400.0), ("1m30s", 90.0), ("250ms", 0.25),
    ("0", 0.0), ("0s", 0.0), ("-5s", -5.0), ("", None), ("5", None), ("1x", None), ("h", None), (3600000000000, 3600.0),
    (None, None), (True, None), ("+2m", 120.0), ("1h 30m", None), ("500us", 0.0005), ("500\u00b5s", 0.0005), (["1h"], None),
])
def test_go_duration(text, seconds):
    assert R.go_duration(text) == seconds


@pytest.mark.parametrize("text, kwargs, expected", [
    ("x=1\n[sysctl]\na = 1 # c\n[sysctl]\nb=2\na=3\n", {"inline_comments": True}, {"": {"x": "1"}, "sysctl": {"a": "3", "b": "2"}}),
    ("[s]\na = 1 # c\n", {}, {"s": {"a": "1 # c"}}),                       # without inline comments the # is the value's
    ("[s]\n; c\n# c\nKey=V\nbare\n", {}, {"s": {"Key": "V", "bare": ""}}),  # case kept; a key without "=" is ""
    ("[Network]\nDHCP=yes\n    IPv4Forwarding=no\n", {"strip_lines": True}, {"Network": {"DHCP": "yes", "IPv4Forwarding": "no"}}),
    ("[Network]\nDHCP=yes\n    IPv4Forwarding=no\n", {}, {"Network": {"DHCP": "yes\nIPv4Forwarding=no"}}),
    ("[s]\na=%(x)s\n", {}, {"s": {"a": "%(x)s"}}),                          # no interpolation
    ("[DEFAULT]\na=1\n[s]\nb=2\n", {}, {"DEFAULT": {"a": "1"}, "s": {"b": "2"}}),  # DEFAULT is a section like any other
    ("[unclosed\na=1\n", {}, {"": {"[unclosed": "", "a": "1"}}),                    # not a section header: a key without "="
    ("[s]\n=v\n", {}, {}),                                                  # an empty key: does not parse
    ("[s]\na\n  b\n", {}, {}),  # a key without "=" continued: configparser's AttributeError before 3.13, refused too
    ("", {}, {}), (None, {}, {}),
])
def test_ini(text, kwargs, expected):
    assert R.ini(text, **kwargs) == expected


KUBE_PROXY_CONFIG = """---
# comment
apiVersion: kubeproxy.config.k8s.io/v1alpha1
conntrack:
  maxPerCore: 65536   # trailing comment
  min: null
  tcpEstablishedTimeout: "24h0m0s"
detectLocal: {}
healthzBindAddresses:
- 0.0.0.0/0
- '::/0'
nodePortAddresses: [10.0.0.0/8, 127.0.0.0/8]
featureGates:
  A: true
quoted: "a # not a comment"
---
second: document
"""


@pytest.mark.parametrize("text, expected", [
    (KUBE_PROXY_CONFIG, {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "conntrack": {"maxPerCore": 65536, "min": None, "tcpEstablishedTimeout": "24h0m0s"},
        "detectLocal": {}, "healthzBindAddresses": ["0.0.0.0/0", "::/0"],
        "nodePortAddresses": ["10.0.0.0/8", "127.0.0.0/8"], "featureGates": {"A": True},
        "quoted": "a # not a comment",
    }),
    ('{"mode": "ipvs", "conntrack": {"maxPerCore": 0}}', {"mode": "ipvs", "conntrack": {"maxPerCore": 0}}),
    ("a:\n  - x\n  - y\nb: 1\n", {"a": ["x", "y"], "b": 1}),                     # an indented list
    ("a:\n- x\nb: ~\n", {"a": ["x"], "b": None}),                                 # a list at the key's indentation
    ("a:\nb: 2\n", {"a": None, "b": 2}),                                          # an empty value is null
    ("a:\tb\n", {"a": "b"}),                                                      # a tab after the colon
    ("- 1\n- two\n", [1, "two"]),
    ("v: 1.5\nw: FALSE\nx: 'it''s'\ny: \"\\u00e9\"\nz: yes\n", {"v": 1.5, "w": False, "x": "it's", "y": "\u00e9", "z": "yes"}),
    ("v: \"broken\\q\"\nw: []\nx: 'a#b' # c\n", {"v": "broken\\q", "w": [], "x": "a#b"}),
    ("k: a#b\n", {"k": "a#b"}),                                                   # "#" without a blank before is text
    ("# only a comment\n", {}), ("", {}), (None, {}), ("---\n...\n", {}),
])
def test_parse_yaml(text, expected):
    assert R.parse_yaml(text) == expected


@pytest.mark.parametrize("text, message", [
    ("a: 1\n   b: 2\n", "unexpected indentation at 'b: 2'"),
    ("just text\n", "expected 'key: value' at 'just text'"),
    ("a:\n  b: 1\n c: 2\n", "unexpected indentation at 'c: 2'"),
    ("- a\nb: 1\n", "unexpected indentation at 'b: 1'"),                          # a list, then a mapping
])
def test_parse_yaml_refuses_what_it_does_not_understand(text, message):
    with pytest.raises(ValueError) as info:
        R.parse_yaml(text)
    assert str(info.value) == message


def test_parse_yaml_refuses_broken_json():
    with pytest.raises(ValueError):
        R.parse_yaml('{"mode": ')


@pytest.mark.parametrize("path, expected", [
    (("linux", "conntrack", "min"), 5), (("linux", "conntrack"), {"min": 5}), (("linux", "missing", "min"), None),
    (("mode",), "ipvs"), (("mode", "deeper"), None), ((), {"linux": {"conntrack": {"min": 5}}, "mode": "ipvs"}),
])
def test_dig(path, expected):
    assert R.dig({"linux": {"conntrack": {"min": 5}}, "mode": "ipvs"}, *path) == expected
