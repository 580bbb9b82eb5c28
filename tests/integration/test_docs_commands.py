"""Every command in the README and the docs runs as written.

Commands are the lines of the fenced ``sh``, ``shell``, ``bash`` and ``console`` blocks of README.md, docs/*.md and
the roles' READMEs (in a console block with ``$`` prompts only the prompted lines, the rest being the output they
print; a line that ends in a backslash or leaves a quote open goes on on the next). Each command is either in
COMMANDS, which says where it runs, or in EXCLUDED with the reason it cannot run here; a command in neither fails
``test_every_command_has_a_decision``, so a command added to the docs gets one. A fenced block with a title
(```` ```yaml title="rules.yml" ````) is a file that the commands after it read: it is written into their directory.

Each block runs as one bash session (a ``source`` or ``export`` holds for the lines after it), command by command,
and every command must exit 0. The output a console block shows must appear in what the command printed, line by
line, unless the block cuts it short with ``...`` (an excerpt, often of another host's state). The same command in two places runs once.

Where they run:

- ``hosts``: a scratch directory with the inventories the docs name (``inventory``, ``inventory.ini``, ``hosts.yml``)
  over two privileged podman containers from the test images (tests/fleet/fleet.py): ``web01`` in group ``web``, and
  ``lb01``, which has an ``ip netns`` namespace ``blue``. The inventory is also the default one
  (ANSIBLE_INVENTORY, for ``ansible all ...``), the directory is HOME, and a health window of 1 s keeps the rolling
  tune short;
- ``fleet``: the same hosts in a directory with docs/fleet.md's setup: ``ansible.cfg`` (inventory/ansible.cfg.example,
  so the fact cache lives under this HOME), ``inventory/constructed.yml`` and ``any-play.yml`` (a play that gathers);
- ``srv``: a private mount namespace with a tmpfs on /srv that holds two report.json files (built by
  linuxnet.tcp.tcp_fleet_summary from recorded facts) at /srv/audit/site-a and site-b;
- ``checkout``: the repository root (its own commands: the venv, the tarball, the test fleet, pytest). ``collect``
  runs a pytest command with ``--collect-only -q`` appended: the paths and markers are checked, the tests themselves
  run elsewhere in ``make test``.

On the 2-core build machine, shared with other test suites (load average 8 to 11), it took 4 min 45 s, of which 80 s
of CPU time (user and system, the ansible processes included): most of it waits for podman and Ansible's per-task cost.
"""
from __future__ import annotations

import glob
import json
import os
import re
import shlex
import shutil
import subprocess

import pytest
import yaml

from ansible_collections.linuxnet.tcp.plugins.filter import tcp_fleet_summary as plugin
from ansible_collections.linuxnet.tcp.plugins.plugin_utils import _rules

from fleet_fixtures import COLLECTIONS, ROOT, Fleet, fleet_name, tool_env

pytestmark = pytest.mark.containers

DOCS = ["README.md"] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md"))) + sorted(
    glob.glob(os.path.join(ROOT, "roles", "*", "README.md")))
SHELLS = ("sh", "shell", "bash", "console")
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.M | re.S)

# Where each command runs: (context, mode). Keys are the commands as shlex reads them (comments dropped).
COMMANDS = {
    "ansible web -m linuxnet.tcp.tcp_facts -a top=3": ("hosts", "run"),
    "ansible lb01 -m linuxnet.tcp.tcp_facts -a 'netns=/run/netns/blue states=[TIME_WAIT]'": ("hosts", "run"),
    "ansible-playbook linuxnet.tcp.tune -i inventory -e tcp_tune_hosts=web -e tcp_tune_serial=10%": ("hosts", "run"),
    "ansible-playbook linuxnet.tcp.restore -i inventory --limit web01": ("hosts", "run"),
    "ansible all -m linuxnet.tcp.tcp_facts -a '{\"top\": 3}'": ("hosts", "run"),
    "ansible all -m linuxnet.tcp.tcp_facts -a '{\"states\": [], \"processes\": false}'": ("hosts", "run"),
    "ansible all -m linuxnet.tcp.tcp_facts -a 'states=[] processes=false'": ("hosts", "run"),
    "ansible all -m linuxnet.tcp.tcp_facts -a 'states=TIME_WAIT,CLOSE_WAIT top=3'": ("hosts", "run"),
    "ansible-playbook linuxnet.tcp.audit -i inventory.ini": ("hosts", "run"),
    "ansible-playbook linuxnet.tcp.audit -i inventory.ini -e tcp_audit_hosts=web -e tcp_audit_fail_on=critical": ("hosts", "run"),
    "ansible web01 -m ansible.builtin.setup -a filter=ansible_local": ("hosts", "run"),
    "ansible localhost -m ansible.builtin.debug -a 'msg={{ lookup(\"file\", \"host-doc.json\") | from_json\n"
    "    | linuxnet.tcp.tcp_diagnose(lookup(\"file\", \"rules.yml\") | from_yaml) | map(attribute=\"message\") }}'": ("hosts", "run"),
    "ansible-playbook -i hosts.yml linuxnet.tcp.audit -e tcp_audit_local_facts=true": ("fleet", "run"),
    "ansible -i hosts.yml all -m ansible.builtin.setup -a filter=ansible_local": ("fleet", "run"),
    "ansible-playbook -i hosts.yml any-play.yml": ("fleet", "run"),
    "ansible-inventory -i hosts.yml -i inventory/constructed.yml --graph": ("fleet", "run"),
    "ansible-galaxy collection build --force --output-path .build/dist .": ("checkout", "run"),
    "ansible-playbook linuxnet.tcp.merge_reports -e '{\"tcp_audit_merge_reports\": [\"/srv/audit/site-*/report.json\"]}' "
    "-e tcp_audit_report_dir=/srv/audit/fleet": ("srv", "run"),
    "source tests/podman/env.sh": ("checkout", "run"),
    ".venv/bin/python tests/fleet/fleet.py up --name lntcp-fleet-demo --count 10 --inventory /tmp/fleet.yml": ("checkout", "run"),
    ".venv/bin/python tests/fleet/fleet.py storm --name lntcp-fleet-demo --time-wait 12000 lntcp-fleet-demo-01": ("checkout", "run"),
    ".venv/bin/ansible-inventory -i /tmp/fleet.yml --graph": ("checkout", "run"),
    ".venv/bin/python tests/fleet/fleet.py down --name lntcp-fleet-demo": ("checkout", "run"),
    ".venv/bin/python -m pytest tests/unit/plugins/module_utils/_sysctl/ "
    "tests/unit/plugins/modules/test_sysctl_facts.py tests/unit/plugins/modules/test_sysctl_profile.py": ("checkout", "run"),
    ".venv/bin/python -m pytest -m live tests/integration/test_sysctl_live.py tests/integration/test_sysctl_boot.py "
    "tests/integration/test_sysctl_posix_side_by_side.py": ("checkout", "collect"),
    ".venv/bin/python -m pytest -q tests/unit/plugins/module_utils/_tcp/test_sockets.py tests/unit/plugins/module_utils/_tcp/test_counters.py "
    "tests/unit/plugins/module_utils/_host/test_processes.py tests/unit/plugins/module_utils/_host/test_netns.py "
    "tests/unit/plugins/module_utils/_tcp/test_report.py tests/unit/plugins/modules/test_tcp_facts.py": ("checkout", "run"),
    ".venv/bin/python -m pytest -q -m live tests/integration/test_tcp_facts_live.py": ("checkout", "collect"),
    ".venv/bin/python -m pytest -s -m live tests/integration/test_sysctl_crash.py": ("checkout", "collect"),
}
EXCLUDED = {
    "make demo": "tests/integration/test_demo.py runs it and checks that it prints the play and nothing else",
    "make test": "it is the suite this test is part of",
    "source .venv/collection.env": "make demo writes it: tests/integration/test_demo.py sources it in a new shell and "
                                   "runs the installed collection from another directory",
    "ansible-builder build -f execution-environment.yml -t registry.example.com/linuxnet-tcp-ee:0.1.0":
        "pulls its base image from a registry; tests/integration/test_awx.py runs ansible-builder create on the same file",
    "export CONTROLLER_HOST=https://awx.example.com CONTROLLER_OAUTH_TOKEN=...":
        "configures an AWX server; tests/integration/test_awx.py runs the templates through ansible-runner instead",
    "ansible-playbook awx/configure.yml -e linuxnet_tcp_awx_ee_image=registry.example.com/linuxnet-tcp-ee:0.1.0":
        "needs an AWX server; tests/integration/test_awx.py checks the templates and surveys it creates",
}
# tests/fleet/fleet.py's fleet in docs/fleet.md: removed whatever happens, since its name is the one the docs use.
DOC_FLEET = "lntcp-fleet-demo"


def _complete(text):
    if text.rstrip().endswith("\\"):
        return False
    try:
        shlex.split(text, comments=True)
    except ValueError:  # an open quote: the command goes on on the next line
        return False
    return True


def commands_of(body, console):
    """(command, output lines) of a fenced block."""
    lines = body.splitlines()
    prompted = console and any(line.startswith("$ ") for line in lines)
    out, current = [], None
    for line in lines:
        if current is not None and not _complete(current[0]):
            current[0] += "\n" + line
            continue
        if prompted and not line.startswith("$ "):
            if current is not None:
                current[1].append(line)
            continue
        text = line[2:] if prompted else line
        if not text.strip() or text.lstrip().startswith("#"):
            current = None
            continue
        current = [text, []]
        out.append(current)
    return [(command.rstrip(), output) for command, output in out]


# An unlabelled block that starts a line like a command: it is either runnable (label it sh or console) or a
# transcript (label it text).
LOOKS_LIKE_A_COMMAND = re.compile(r"^(\$ |ansible|make |\.venv/|source |sudo |podman |ip netns )", re.M)
UNLABELLED = []


def blocks():
    """Every runnable block: (where, document, commands), and the titled files of each document."""
    found, files = [], {}
    for path in DOCS:
        with open(os.path.join(ROOT, path), encoding="utf-8") as handle:
            text = handle.read()
        rel = os.path.relpath(os.path.join(ROOT, path), ROOT)
        for match in FENCE.finditer(text):
            info = match.group(1).split()
            title = re.search(r'title="([^"]+)"', match.group(1))
            if title:
                files.setdefault(rel, {})[title.group(1)] = match.group(2)
            where = "%s:%d" % (rel, text[:match.start()].count("\n") + 1)
            if info and info[0] in SHELLS:
                found.append((where, rel, commands_of(match.group(2), info[0] == "console")))
            elif not info and LOOKS_LIKE_A_COMMAND.search(match.group(2)):
                UNLABELLED.append(where)
    return found, files


BLOCKS, FILES = blocks()


def key(command):
    """A command as shlex reads it (quoting and comments aside); one with a newline inside quotes as it is written."""
    text = command.replace("\\\n", " ")
    return text.strip() if "\n" in text else " ".join(shlex.split(text, comments=True))


KNOWN = {key(command): value for command, value in COMMANDS.items()}
KNOWN_EXCLUDED = {key(command): reason for command, reason in EXCLUDED.items()}


def test_every_command_has_a_decision():
    """Every command of the docs is run by this test or excluded with a reason, and no entry is left over."""
    assert not UNLABELLED, "fenced blocks without a language that hold commands (sh, console or text?): %s" % UNLABELLED
    seen = {key(command) for _where, _rel, commands in BLOCKS for command, _output in commands}
    undecided = sorted(seen - set(KNOWN) - set(KNOWN_EXCLUDED))
    assert not undecided, "commands in the docs that this test neither runs nor excludes: %s" % undecided
    assert not set(KNOWN) & set(KNOWN_EXCLUDED)
    stale = sorted((set(KNOWN) | set(KNOWN_EXCLUDED)) - seen)
    assert not stale, "entries for commands that are no longer in the docs: %s" % stale
    for where, _rel, commands in BLOCKS:
        contexts = {KNOWN[key(c)][0] for c, _o in commands if key(c) in KNOWN}
        assert len(contexts) <= 1, "%s mixes contexts %s" % (where, contexts)


def _inventory(fleet):
    names = {"web01": fleet.members[0].name, "lb01": fleet.members[1].name}
    common = {"ansible_connection": "containers.podman.podman", "ansible_python_interpreter": "/usr/bin/python3"}
    hosts = {alias: dict(common, ansible_host=name) for alias, name in names.items()}
    yaml_doc = {"all": {"vars": {"ansible_facts_parallel": False, "tcp_tune_health_window": 1},
                        "children": {"web": {"hosts": {"web01": hosts["web01"]}},
                                     "lb": {"hosts": {"lb01": hosts["lb01"]}}}}}
    ini = ["[web]", "web01 " + " ".join("%s=%s" % kv for kv in hosts["web01"].items())]
    ini += ["", "[lb]", "lb01 " + " ".join("%s=%s" % kv for kv in hosts["lb01"].items()), "", "[all:vars]",
            "ansible_facts_parallel=false", "tcp_tune_health_window=1", ""]
    return json.dumps(yaml_doc, indent=2), "\n".join(ini)


def _report(path, hosts):
    """A report.json of recorded hosts (tests/unit/fixtures/audit) with the role's rules, as the audit role writes it."""
    with open(os.path.join(ROOT, "roles", "audit", "vars", "main.yml"), encoding="utf-8") as handle:
        rules = yaml.safe_load(handle)["__tcp_audit_builtin_rules"]
    data = {}
    for name, kind in hosts:
        with open(os.path.join(ROOT, "tests", "unit", "fixtures", "audit", kind + ".json"), encoding="utf-8") as handle:
            data[name] = json.load(handle)
        data[name]["findings"] = _rules.diagnose(data[name], rules)
    report = plugin.tcp_fleet_summary(data)
    report.update(generated="2026-12-02T10:00:00Z", ansible_version="2.19", fail_on="never")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(report, handle)


@pytest.fixture(scope="module")
def docs_env(tmp_path_factory):
    fleet = Fleet(fleet_name("docs"), 2)
    try:
        fleet.up()
        fleet.exec(fleet.members[1], "ip", "netns", "add", "blue")
        base = tmp_path_factory.mktemp("docs")
        yaml_inventory, ini_inventory = _inventory(fleet)
        dirs = {}
        for name in ("hosts", "fleet", "srv"):
            work = base / name
            (work / "home").mkdir(parents=True)
            for file_name, text in (("inventory", ini_inventory), ("inventory.ini", ini_inventory),
                                    ("hosts.yml", yaml_inventory)):
                (work / file_name).write_text(text)
            for files in FILES.values():
                for file_name, text in files.items():
                    (work / file_name).write_text(text)
            dirs[name] = work
        shutil.copy(os.path.join(ROOT, "tests", "unit", "fixtures", "audit", "storm.json"), dirs["hosts"] / "host-doc.json")
        shutil.copy(os.path.join(ROOT, "inventory", "ansible.cfg.example"), dirs["fleet"] / "ansible.cfg")
        (dirs["fleet"] / "inventory").unlink()
        (dirs["fleet"] / "inventory").mkdir()
        shutil.copy(os.path.join(ROOT, "inventory", "constructed.yml"), dirs["fleet"] / "inventory" / "constructed.yml")
        (dirs["fleet"] / "any-play.yml").write_text("- name: Any play\n  hosts: all\n  gather_facts: true\n  tasks: []\n")
        _report(str(dirs["srv"] / "site-a" / "report.json"), [("web1", "storm"), ("web2", "clean")])
        _report(str(dirs["srv"] / "site-b" / "report.json"), [("db1", "legacy")])
        yield {"fleet": fleet, "dirs": dirs, "done": set()}
    finally:
        fleet.down()
        subprocess.run([os.path.join(ROOT, ".venv", "bin", "python"), os.path.join(ROOT, "tests", "fleet", "fleet.py"),
                        "down", "--name", DOC_FLEET], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=False)


def _script(commands, context, dirs):
    """The block as one bash script that prints a marker with each command's exit code, and stops at the first
    command that fails."""
    lines = []
    if context == "srv":
        # Only this session sees /srv: a tmpfs with the two sites' reports.
        lines += ["mount -t tmpfs lntcp-docs-srv /srv", "mkdir -p /srv/audit",
                  "cp -r %s %s /srv/audit/" % (shlex.quote(str(dirs["srv"] / "site-a")), shlex.quote(str(dirs["srv"] / "site-b")))]
    for index, (command, mode) in enumerate(commands):
        run = command if mode == "run" else " ".join(
            [shlex.quote(t) for t in shlex.split(command.replace("\\\n", " "), comments=True)] + ["--collect-only", "-q"])
        lines += ['echo "@@begin %d"' % index, run, 'rc=$?; echo "@@end %d $rc"; [ $rc -eq 0 ] || exit 100' % index]
    if context == "srv":
        lines += ['test -s /srv/audit/fleet/report.json || { echo "@@end merged 1"; exit 100; }',
                  'python3 -c "import json,sys; d=json.load(open(\'/srv/audit/fleet/report.json\')); '
                  'print(\'@@merged\', sorted(h[\'host\'] for h in d[\'hosts\']))"']
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("where", [where for where, _rel, _c in BLOCKS])
def test_docs_command_runs_as_written(docs_env, where):
    (rel, commands), = [(rel, c) for w, rel, c in BLOCKS if w == where]
    todo = []
    for command, output in commands:
        k = key(command)
        if k in KNOWN_EXCLUDED:
            continue
        context, mode = KNOWN[k]
        if (context, k) in docs_env["done"]:
            continue  # the same command earlier in the docs ran already
        docs_env["done"].add((context, k))
        todo.append((command, mode, output, context))
    if not todo:
        pytest.skip("every command of this block is excluded or ran already")
    context = todo[0][3]
    cwd = ROOT if context == "checkout" else str(docs_env["dirs"][context])
    # As after the Quick start's `source .venv/collection.env`: the venv's tools first on PATH.
    env = tool_env(HOME=str(docs_env["dirs"]["hosts"] / "home") if context == "checkout" else os.path.join(cwd, "home"),
                   ANSIBLE_INVENTORY=str(docs_env["dirs"]["hosts"] / "inventory"), ANSIBLE_COLLECTIONS_PATH=COLLECTIONS)
    argv = ["bash", "-c", _script([(c, m) for c, m, _o, _x in todo], context, docs_env["dirs"])]
    if context == "srv":
        argv = ["unshare", "--mount", "--propagation", "private"] + argv
    done = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=900, check=False)
    text = done.stdout
    for index, (command, mode, output, _context) in enumerate(todo):
        start, end = text.find("@@begin %d\n" % index), re.search(r"^@@end %d (\d+)$" % index, text, re.M)
        assert start >= 0 and end, "%s: `%s` did not run:\n%s" % (where, command, text[-3000:])
        printed = text[start:end.start()]
        assert end.group(1) == "0", "%s: `%s` exited %s:\n%s" % (where, command, end.group(1), printed[-4000:])
        assert "Traceback" not in printed, printed[-4000:]
        lines = {line.strip() for line in printed.splitlines()}
        # A transcript cut short with "..." is an excerpt of another host's state; a whole one must match.
        for expected in output if not any("..." in line for line in output) else []:
            if expected.strip():
                assert expected.strip() in lines, "%s: `%s` did not print %r:\n%s" % (where, command, expected, printed[-3000:])
    assert done.returncode == 0, text[-3000:]
    if context == "srv":
        assert "@@merged ['db1', 'web1', 'web2']" in text, text[-2000:]
