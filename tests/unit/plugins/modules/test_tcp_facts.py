"""Whole-module tests: arguments, check mode, failures and the facts document shape, on a fake root (the recorded
socket table, fixture counters): nothing of the host running the tests is read."""
import functools
import json

import pytest
from ansible_collections.linuxnet.tcp.tests.unit.plugins.modules.module_args import (  # pylint: disable=wrong-import-order
    patch_module_args)

from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp import sockets as S
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp import collect as C
from ansible_collections.linuxnet.tcp.plugins.modules import tcp_facts

from ansible_collections.linuxnet.tcp.tests.unit.plugins.module_utils.tcp_fixtures import (  # pylint: disable=wrong-import-order
    FakeNetlink, fake_proc, ss_counts)


def run(args, capsys, check_mode=False):
    if check_mode:
        args = dict(args, _ansible_check_mode=True)
    with patch_module_args(args):
        with pytest.raises(SystemExit) as info:
            tcp_facts.main()
    out = json.loads(capsys.readouterr().out)
    return info.value.code, out


@pytest.fixture(autouse=True)
def recorded_table(monkeypatch, tmp_path):
    # The module collects under a fake root: counters, sysctls and /proc/net/tcp{,6} from the fixtures, the netlink
    # dump from the recording of the same table, and the owner scan (whose inodes exist in no tree) replaced by a
    # recorder.
    monkeypatch.setattr(tcp_facts, "gather", functools.partial(C.gather, root=fake_proc(str(tmp_path))))
    monkeypatch.setattr(S, "_open_netlink", FakeNetlink())
    asked = []

    def owners(inodes, root, netns, uids, optional, table=None):
        asked.append((sorted(inodes), sorted(optional)))
        return {}, {"processes_scanned": 0, "processes_denied": 0, "fds_read": 0, "complete": False}
    monkeypatch.setattr(C, "find_owners", owners)
    return asked


@pytest.mark.parametrize("check_mode", [False, True])
def test_facts(capsys, check_mode, recorded_table):
    code, out = run({}, capsys, check_mode)
    # Required: 2 CLOSE_WAIT sockets + the listener with a queue; optional: the two idle listeners.
    assert [(len(req), len(opt)) for req, opt in recorded_table] == [(3, 2)]
    assert code == 0 and out["changed"] is False
    tcp = out["ansible_facts"]["tcp"]
    assert {k: v for k, v in tcp["states"].items() if k in ss_counts()} == ss_counts()
    assert tcp["collection"]["backend"] == "netlink"
    assert tcp["time_wait"]["by_remote"][0] == {"address": "127.0.0.1", "port": 9090, "count": 4}
    assert tcp["counters"]["ListenOverflows"] == 5 and tcp["ephemeral_ports"]["range"] == [32768, 60999]  # the fixtures'


def test_summary_is_smaller(capsys):
    full = run({}, capsys)[1]["ansible_facts"]["tcp"]
    small = run({"summary": True}, capsys)[1]["ansible_facts"]["tcp"]
    assert set(full) == set(small)
    assert len(json.dumps(small)) < len(json.dumps(full))


@pytest.mark.parametrize("args, message", [
    ({"top": -1}, "top must be 0 or a positive integer"),
    ({"states": ["ESTABLISHED", "BOGUS"]}, "states: BOGUS is not a TCP state; states are ESTABLISHED, SYN_SENT"),
    ({"states": "[TIME_WAIT,CLOSE_WIAT]"}, "states: CLOSE_WIAT is not a TCP state"),
    ({"backend": "ss"}, "value of backend must be one of: auto, netlink, proc"),
    ({"netns": "{tmp}/hostname"}, "netns: {tmp}/hostname is not a namespace file"),
    ({"netns": "/proc/self/ns/uts"}, "netns: /proc/self/ns/uts is a namespace but not a network namespace"),
])
def test_bad_options(capsys, tmp_path, args, message):
    (tmp_path / "hostname").write_text("web1\n")
    args = {key: value.replace("{tmp}", str(tmp_path)) if isinstance(value, str) else value for key, value in args.items()}
    code, out = run(args, capsys)
    message = message.replace("{tmp}", str(tmp_path))
    assert code == 1 and out["failed"] is True and message in out["msg"]


# What users type: YAML lists, and the key=value strings of `ansible -a` (which Ansible splits at commas only).
@pytest.mark.parametrize("given, states", [
    (None, None),
    ([], []),
    (["TIME_WAIT", "CLOSE_WAIT"], ["TIME_WAIT", "CLOSE_WAIT"]),
    ("TIME_WAIT,CLOSE_WAIT", ["TIME_WAIT", "CLOSE_WAIT"]),
    ("[TIME_WAIT]", ["TIME_WAIT"]),
    ("[TIME_WAIT,CLOSE_WAIT]", ["TIME_WAIT", "CLOSE_WAIT"]),
    ("[TIME_WAIT, CLOSE_WAIT]", ["TIME_WAIT", "CLOSE_WAIT"]),
    ("['TIME_WAIT', \"LISTEN\"]", ["TIME_WAIT", "LISTEN"]),
    ("time-wait,fin-wait-2,listening", ["TIME_WAIT", "FIN_WAIT2", "LISTEN"]),
    ("[]", []),
    ("", []),
    ("none", []),
    ("None", []),
])
def test_states_as_users_write_them(capsys, given, states):
    args = {} if given is None else {"states": given}
    with patch_module_args(args):
        module = tcp_facts.AnsibleModule(argument_spec={"states": {"type": "list", "elements": "str"}})
    assert tcp_facts.parse_states(module.params["states"]) == (states, [])


def test_counts_only_in_key_value_form(capsys):
    """states=[] (as `ansible -a` passes it: the string "[]") gives the same facts as the YAML empty list."""
    listed = run({"states": [], "processes": False}, capsys)[1]["ansible_facts"]["tcp"]
    typed = run({"states": "[]", "processes": "false"}, capsys)[1]["ansible_facts"]["tcp"]
    assert listed["peers"] == typed["peers"] == [] and listed["time_wait"] == typed["time_wait"]
    assert listed["states"] == typed["states"]


def test_netlink_refused_fails_only_when_forced(capsys, monkeypatch):
    def refuse():
        raise OSError(93, "Protocol not supported")
    monkeypatch.setattr(S, "_open_netlink", refuse)
    code, out = run({"backend": "netlink"}, capsys)
    assert code == 1 and "netlink sock_diag socket refused" in out["msg"]
    code, out = run({"backend": "auto", "states": []}, capsys)
    assert code == 0 and out["ansible_facts"]["tcp"]["collection"]["backend"] == "proc"
