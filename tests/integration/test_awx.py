"""AWX / automation controller: the execution environment, the job templates and surveys, and a job run the way
AWX runs it.

- ``ansible-builder create`` on execution-environment.yml with a tarball built from this checkout; the context
  is then checked by doing offline what its galaxy and builder stages do (install the requirements, introspect the
  Python requirements).
- awx/job_templates/*.yml are awx.awx.job_template parameters; every survey question, pinned extra variable and
  inventory variable is an option of the role's argument spec (type, choices, default, required), and together
  they cover the options exactly once.
- ``ansible-runner run`` with a private data dir laid out as AWX lays it out (project/, inventory/, env/extravars,
  env/envvars, env/settings), the collection installed from the tarball, the survey answers as extra variables,
  against real test containers: artifacts (status, rc, job events) are checked.
- The sliced audit workflow as AWX runs it, on simulated hosts (recorded facts in the fact cache): the sliced job
  template as N ansible-runner jobs, each limited to every N-th host as AWX slices an inventory, their set_stats
  artifacts combined as AWX hands them to the next workflow node, then the merge job template; the merged report
  must equal the report of one unsliced run over the same facts, apart from timestamps.
"""
from __future__ import annotations

import glob
import json
import os
import re
import shutil

import pytest
import yaml

from ansible_collections.linuxnet.tcp.tests.fleet import simulated
from fleet_fixtures import (BIN, ROOT, fleet, fleet_inventory, run, tool, tool_env)  # noqa: F401 pylint: disable=unused-import

pytestmark = pytest.mark.containers

AWX = os.path.join(ROOT, "awx")
TEMPLATES = sorted(os.path.basename(p)[:-4] for p in glob.glob(os.path.join(AWX, "job_templates", "*.yml")))
WORKFLOWS = sorted(os.path.basename(p)[:-4] for p in glob.glob(os.path.join(AWX, "workflow_templates", "*.yml")))
# AWX survey question types and the argument spec types they carry faithfully.
SURVEY_TYPES = {"text": "str", "textarea": "str", "password": "str", "integer": "int", "float": "float",
                "multiplechoice": "str", "multiselect": "list"}
# Tasks files the restore path runs (tcp_tuning_state: absent): its template covers what they read.
RESTORE_TASKS = ("main.yml", "absent.yml")


def galaxy_version():
    with open(os.path.join(ROOT, "galaxy.yml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)["version"]


def load_yaml(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def load_template(name):
    definition = load_yaml(os.path.join(AWX, "job_templates", name + ".yml"))
    with open(os.path.join(AWX, definition["job_template"]["survey_spec"]), encoding="utf-8") as handle:
        survey = json.load(handle)
    return definition, survey


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    dist = tmp_path_factory.mktemp("dist")
    done = run([tool("ansible-galaxy"), "collection", "build", "--output-path", dist, ROOT])
    assert done.returncode == 0, done.stdout + done.stderr
    path = dist / ("linuxnet-tcp-%s.tar.gz" % galaxy_version())
    assert path.is_file(), done.stdout
    return path


def test_ansible_builder_create(tarball, tmp_path):
    """The EE file next to a .build/dist/ holding the tarball, as after `ansible-galaxy collection build`."""
    shutil.copy(os.path.join(ROOT, "execution-environment.yml"), tmp_path)
    (tmp_path / ".build" / "dist").mkdir(parents=True)
    shutil.copy(tarball, tmp_path / ".build" / "dist")
    done = run([tool("ansible-builder"), "create", "-f", "execution-environment.yml", "-c", "context", "-v", "3"],
               cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No matches" not in done.stdout + done.stderr, done.stdout + done.stderr
    context = tmp_path / "context"
    containerfile = (context / "Containerfile").read_text()
    assert "FROM $EE_BASE_IMAGE AS base" in containerfile
    assert 'ansible-galaxy collection install $ANSIBLE_GALAXY_CLI_COLLECTION_OPTS -r requirements.yml' in containerfile
    assert re.search(r'ARG ANSIBLE_INSTALL_REFS="ansible-core[^"]* ansible-runner', containerfile), containerfile
    # The final image filters the one import-time warning of a newer cryptography (docs/fleet.md), and that
    # filter, parsed by Python itself, silences exactly that warning from exactly ansible's ssh-agent module.
    env = re.search(r'^ENV PYTHONWARNINGS="([^"]+)"$', containerfile.split("FROM $EE_BASE_IMAGE AS final")[-1], re.M)
    assert env, containerfile
    code = ("import warnings\n"
            "class CryptographyDeprecationWarning(UserWarning): pass\n"
            "for module in ('ansible._internal._ssh._ssh_agent', 'ansible_collections.linuxnet.tcp.plugins.x'):\n"
            "    warnings.warn_explicit('DSA is deprecated and support will be removed', CryptographyDeprecationWarning,"
            " 'f.py', 18, module=module)\n"
            "warnings.warn_explicit('Another deprecation', CryptographyDeprecationWarning, 'f.py', 19,"
            " module='ansible._internal._ssh._ssh_agent')\n")
    done = run([tool("python"), "-c", code], env=tool_env(PYTHONWARNINGS=env.group(1)))
    printed = PYTHON_WARNING.findall(done.stderr)
    assert [line for line in done.stderr.splitlines() if "Warning: " in line] == [
        "f.py:18: CryptographyDeprecationWarning: DSA is deprecated and support will be removed",
        "f.py:19: CryptographyDeprecationWarning: Another deprecation"], (printed, done.stderr)
    # The galaxy stage, offline: from /build (= context/_build), the requirements install the shipped tarball.
    build = context / "_build"
    requirements = load_yaml(build / "requirements.yml")
    assert requirements["collections"] == [{"name": "collections/linuxnet-tcp-%s.tar.gz" % galaxy_version(),
                                            "type": "file"}], "execution-environment.yml and galaxy.yml disagree"
    shipped = build / requirements["collections"][0]["name"]
    assert shipped.read_bytes() == tarball.read_bytes()
    collections = tmp_path / "usr-share-ansible" / "collections"
    done = run([tool("ansible-galaxy"), "collection", "install", "-r", "requirements.yml", "-p", collections], cwd=build,
               env=tool_env(ANSIBLE_GALAXY_DISABLE_GPG_VERIFY="1", ANSIBLE_COLLECTIONS_PATH=collections))
    assert done.returncode == 0, done.stdout + done.stderr
    manifest = json.loads((collections / "ansible_collections" / "linuxnet" / "tcp" / "MANIFEST.json").read_text())
    assert manifest["collection_info"]["version"] == galaxy_version()
    # The builder stage, offline: introspection of the user and collection requirements yields jmespath.
    out = tmp_path / "pip.txt"
    done = run([tool("python"), build / "scripts" / "introspect.py", "introspect", "--user-pip", build / "requirements.txt",
                "--write-pip", out, collections])
    assert done.returncode == 0, done.stdout + done.stderr
    pip = out.read_text()
    assert re.search(r"^jmespath>=1\.0\s+# from collection user$", pip, re.M), pip
    assert re.search(r"^jmespath>=1\.0\s+# from collection linuxnet\.tcp$", pip, re.M), pip


def module_options(module="awx.awx.job_template"):
    """Options of an awx.awx module, from the installed collection's documentation."""
    done = run([tool("ansible-doc"), "--json", module])
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)[module]["doc"]["options"]


def configure_text():
    with open(os.path.join(AWX, "configure.yml"), encoding="utf-8") as handle:
        return handle.read()


def test_job_templates_load_into_awx(tmp_path):
    options = set(module_options())
    configure = configure_text()
    assert TEMPLATES == ["audit", "audit_sliced", "merge_reports", "restore", "tune"]
    for name in TEMPLATES:
        definition, survey = load_template(name)
        assert set(definition) <= {"job_template", "inventory_variables"}, name
        template = definition["job_template"]
        assert set(template) <= options, "%s: not awx.awx.job_template options: %s" % (name, set(template) - options)
        assert os.path.isfile(os.path.join(ROOT, template["playbook"])), template["playbook"]
        # awx/configure.yml passes every parameter the definition sets (nothing is silently dropped).
        for key in template:
            assert re.search(r"^\s+%s: .*__jt\.%s\b" % (key, key), configure, re.M), "configure.yml drops %s.%s" % (name, key)
        assert survey["name"] and survey["description"] and survey["spec"], name
        for question in survey["spec"]:
            assert question["type"] in SURVEY_TYPES, question
            assert question["question_name"] and question["question_description"], question
            if question["type"] in ("multiplechoice", "multiselect"):
                defaults = question["default"].split("\n") if question["type"] == "multiselect" else [question["default"]]
                assert set(defaults) <= set(question["choices"]), question
    # configure.yml parses and its loop names every template.
    done = run([tool("ansible-playbook"), "--syntax-check", os.path.join(AWX, "configure.yml")])
    assert done.returncode == 0, done.stdout + done.stderr
    names = ["audit", "audit_sliced", "merge_reports", "tune", "restore"]
    assert re.search(r"linuxnet_tcp_awx_templates: \[%s\]" % ", ".join(names), configure)


def test_workflow_templates_load_into_awx():
    """Each workflow: awx.awx.workflow_job_template parameters, every one passed by configure.yml, whose nodes run
    job templates defined here, after those are created."""
    options = module_options("awx.awx.workflow_job_template")
    node_options = options["workflow_nodes"]["suboptions"]
    configure = configure_text()
    names = {load_template(name)[0]["job_template"]["name"] for name in TEMPLATES}
    assert WORKFLOWS == ["audit_sliced"]
    for name in WORKFLOWS:
        workflow = load_yaml(os.path.join(AWX, "workflow_templates", name + ".yml"))["workflow_job_template"]
        assert set(workflow) <= set(options), set(workflow) - set(options)
        for key in workflow:
            assert re.search(r"^\s+%s: .*__wf\.%s\b" % (key, key), configure, re.M), "configure.yml drops %s.%s" % (name, key)
        identifiers = {node["identifier"] for node in workflow["workflow_nodes"]}
        for node in workflow["workflow_nodes"]:
            assert set(node) <= set(node_options), set(node) - set(node_options)
            assert node["unified_job_template"]["type"] == "job_template" and node["unified_job_template"]["name"] in names
            for links in node.get("related", {}).values():
                assert {link["identifier"] for link in links} <= identifiers
    assert configure.index("awx.awx.job_template:") < configure.index("awx.awx.workflow_job_template:")
    assert re.search(r"linuxnet_tcp_awx_workflows: \[audit_sliced\]", configure)
    # The sliced template is the one the workflow starts with, and it publishes what the merge template reads.
    sliced = load_template("audit_sliced")[0]["job_template"]
    assert sliced["job_slice_count"] > 1 and sliced["extra_vars"]["tcp_audit_report_artifact"] is True


def role_of_playbook(playbook):
    """(role, entry point) of the linuxnet.tcp role a playbook runs (roles: or import_role/include_role)."""
    found = set()

    def walk(tasks):
        for task in tasks:
            for action in ("ansible.builtin.import_role", "ansible.builtin.include_role"):
                if action in task:
                    found.add((task[action]["name"], task[action].get("tasks_from", "main")))
            for section in ("block", "rescue", "always"):
                walk(task.get(section, []))

    for play in load_yaml(os.path.join(ROOT, playbook)):
        for role in play.get("roles", []):
            found.add((role if isinstance(role, str) else role.get("role", role.get("name")), "main"))
        for section in ("pre_tasks", "tasks", "post_tasks"):
            walk(play.get(section, []))
    found = {(name, entry) for name, entry in found if name and name.startswith("linuxnet.tcp.")}
    assert len({name for name, _entry in found}) == 1, "%s runs %s, expected one linuxnet.tcp role" % (playbook, found)
    # A playbook may also run another entry point of the role (tune.yml: revert, for a rollback); its survey maps
    # onto the main one when the playbook runs it.
    entries = {entry for _name, entry in found}
    entry = "main" if "main" in entries else entries.pop()
    return found.pop()[0].split(".")[-1], entry


def argument_spec(role, entry="main"):
    return load_yaml(os.path.join(ROOT, "roles", role, "meta", "argument_specs.yml"))["argument_specs"][entry]["options"]


def playbook_argument_spec(playbook):
    """The playbook's own variables, as its first play checks them (tune.yml: the play variable __tcp_tune_spec, which
    linuxnet.tcp.tcp_check_vars reads), or {} if it has none."""
    for play in load_yaml(os.path.join(ROOT, playbook)):
        for name, value in (play.get("vars") or {}).items():
            if name.startswith("__") and name.endswith("_spec"):
                return value
    return {}


def options_read(role, tasks_files, options):
    text = ""
    for name in tasks_files:
        with open(os.path.join(ROOT, "roles", role, "tasks", name), encoding="utf-8") as handle:
            text += handle.read()
    return {option for option in options if re.search(r"\b%s\b" % option, text)}


@pytest.mark.parametrize("name", TEMPLATES)
def test_survey_maps_onto_argument_spec(name):
    definition, survey = load_template(name)
    template = definition["job_template"]
    role, entry = role_of_playbook(template["playbook"])
    spec = argument_spec(role, entry)
    # The playbook's own variables (tune.yml: tcp_tune_*) are asked on top of the role's options.
    own = playbook_argument_spec(template["playbook"])
    assert not set(own) & set(spec), "playbook and role options share names: %s" % (set(own) & set(spec))
    asked = [q["variable"] for q in survey["spec"]]
    pinned = list(template.get("extra_vars", {}))
    left = list(definition.get("inventory_variables", []))
    everything = asked + pinned + left
    assert len(everything) == len(set(everything)), "a variable is in more than one place: %s" % everything
    assert set(everything) <= set(spec) | set(own), "not options of roles/%s or %s: %s" % (
        role, template["playbook"], set(everything) - set(spec) - set(own))
    assert set(own) & set(everything) <= set(asked), "playbook variables are asked or set at launch, never pinned"
    wanted = set(spec) if name != "restore" else options_read(role, RESTORE_TASKS, spec)
    assert set(everything) - set(own) == wanted, "options missing from the template: %s" % (wanted - set(everything))
    if name == "tune":
        assert "tcp_tune_rollback" in asked, "the tune survey asks whether a worse host is rolled back"
    for question in survey["spec"]:
        option = spec.get(question["variable"]) or own[question["variable"]]
        kind = option.get("type", "str")
        if kind == "bool":
            # A survey carries no boolean: a choice of "true" and "false", which the playbook reads with | bool.
            assert question["type"] == "multiplechoice" and sorted(question["choices"]) == ["false", "true"], question
            assert question["default"] == str(option.get("default")).lower(), (question, option.get("default"))
            assert question["required"], question
            continue
        assert SURVEY_TYPES[question["type"]] == kind, (question["variable"], question["type"], kind)
        if kind == "list":
            assert option.get("elements") == "str", question["variable"]
        if "choices" in option:
            assert sorted(question["choices"]) == sorted(option["choices"]), question["variable"]
        default = question.get("default")
        if question["type"] == "multiselect":
            default = default.split("\n") if default else []
        if question["type"] in ("integer", "float") and default in ("", None):
            default = None
        assert default == option.get("default"), (question["variable"], default, option.get("default"))
        assert question["required"] == (option.get("required", False) or option.get("default") is not None), question
        if question["type"] == "text" and "min" in question:
            assert question["min"] >= 1 and len(str(default)) >= question["min"], question
    for key, value in template.get("extra_vars", {}).items():
        option = spec[key]
        if "choices" in option:
            assert value in option["choices"], (key, value)
    # Survey choices for a list without argument-spec choices (tuning profiles) must exist in the role.
    if role == "tuning":
        builtin = set(load_yaml(os.path.join(ROOT, "roles", "tuning", "vars", "main.yml"))["__tcp_tuning_builtin_profiles"])
        for question in survey["spec"]:
            if question["variable"] == "tcp_tuning_profiles":
                assert set(question["choices"]) == builtin


def survey_answers(name, **answers):
    """Extra variables AWX sends for a launch: the template's extra_vars, then the survey answers (defaults unless
    given), typed as AWX types them (multiselect: a list of strings, integer: an int)."""
    definition, survey = load_template(name)
    values = dict(definition["job_template"].get("extra_vars", {}))
    for question in survey["spec"]:
        value = answers.pop(question["variable"], question.get("default"))
        if question["type"] == "multiselect" and isinstance(value, str):
            value = value.split("\n")
        values[question["variable"]] = value
    assert not answers, "not survey variables: %s" % answers
    return values


def install_collection(pdd, tarball):
    """The tarball installed the way AWX installs a project's collections/requirements.yml."""
    collections = pdd / "requirements_collections"
    done = run([tool("ansible-galaxy"), "collection", "install", "-p", collections, tarball],
               env=tool_env(ANSIBLE_COLLECTIONS_PATH=collections))
    assert done.returncode == 0, done.stdout + done.stderr
    return collections


@pytest.fixture(scope="module")
def private_data_dir(fleet, tarball, tmp_path_factory):
    """A private data dir as AWX writes it for a job: project/ (the project checkout: playbooks), inventory/hosts,
    env/{envvars,settings}, and the collection installed from the tarball the way AWX installs a project's
    collections/requirements.yml (into a directory put on ANSIBLE_COLLECTIONS_PATH)."""
    pdd = tmp_path_factory.mktemp("awx-job")
    shutil.copytree(os.path.join(ROOT, "playbooks"), pdd / "project" / "playbooks")
    (pdd / "inventory").mkdir()
    # The audit template leaves tcp_audit_report_dir to the inventory (awx/job_templates/audit.yml).
    hosts = fleet.inventory()
    hosts["all"]["children"]["fleet"]["vars"]["tcp_audit_report_dir"] = str(pdd / "report")
    (pdd / "inventory" / "hosts.yml").write_text(yaml.safe_dump(hosts))
    collections = install_collection(pdd, tarball)
    (pdd / "env").mkdir()
    envvars = {"ANSIBLE_COLLECTIONS_PATH": str(collections), "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0",
               "ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_RETRY_FILES_ENABLED": "False", "ANSIBLE_FORKS": "25"}
    (pdd / "env" / "envvars").write_text(yaml.safe_dump(envvars))
    settings = {"job_timeout": 900, "idle_timeout": 600, "suppress_ansible_output": True}
    (pdd / "env" / "settings").write_text(yaml.safe_dump(settings))
    return pdd


def runner(pdd, ident, playbook, extravars, limit=None, facts=None):
    """`ansible-runner run` as AWX's job does it; return the artifacts directory. With ``facts`` (a jsonfile fact
    cache directory), the job starts with those facts, as AWX writes a template's cached facts into the job's
    artifacts/IDENT/fact_cache (where ansible-runner points the jsonfile cache plugin) before it starts."""
    (pdd / "env" / "extravars").write_text(yaml.safe_dump(extravars))
    if facts:
        shutil.copytree(facts, pdd / "artifacts" / ident / "fact_cache")
    env = tool_env()
    env.pop("ANSIBLE_COLLECTIONS_PATH")  # the job's env/envvars decides, as in AWX
    done = run([tool("ansible-runner"), "run", pdd, "--ident", ident, "-p", playbook] + (["--limit", limit] if limit else []),
               env=env, timeout=900)
    artifacts = pdd / "artifacts" / ident
    assert artifacts.is_dir(), done.stdout + done.stderr
    return artifacts, done


def job_events(artifacts):
    events = []
    for path in glob.glob(str(artifacts / "job_events" / "*.json")):
        with open(path, encoding="utf-8") as handle:
            events.append(json.load(handle))
    return sorted(events, key=lambda e: e["counter"])


def task_results(events, task):
    return {e["event_data"]["host"]: e["event_data"]["res"] for e in events
            if e["event"] == "runner_on_ok" and e["event_data"].get("task") in (task, "%s : %s" % (e["event_data"].get("role"), task))}


def artifact_text(artifacts, name):
    return (artifacts / name).read_text().strip()


# A Python warning as the interpreter prints it: "path.py:LINE: CategoryWarning: message".
PYTHON_WARNING = re.compile(r"^(?P<path>\S+\.py):\d+: (?P<category>\w*Warning): ", re.M)
COLLECTION_PATH = "ansible_collections/linuxnet/tcp/"


def check_job_output(events):
    """The job's output carries no warning of this collection's own making.

    Before the play starts, a job may show ``verbose`` events that the controller's Python printed while ansible
    imported its libraries (a library's deprecation warning, docs/fleet.md): harmless, so they do not fail the job's
    checks; one whose source is this collection does. After the start, no event may carry a Python warning from the
    collection's files, and no task may return an Ansible ``[WARNING]`` or deprecation: the collection's plugins report
    what a user must know in their results, not as warnings the job log buries."""
    start = next((i for i, e in enumerate(events) if e["event"] == "playbook_on_start"), None)
    assert start is not None, [e["event"] for e in events[:5]]
    for event in events[:start]:
        assert event["event"] == "verbose", ("only verbose output may precede the play", event)
        for match in PYTHON_WARNING.finditer(event.get("stdout", "")):
            assert COLLECTION_PATH not in match.group("path"), ("a warning from the collection", event["stdout"])
    for event in events[start:]:
        text = event.get("stdout", "")
        for match in PYTHON_WARNING.finditer(text):
            assert COLLECTION_PATH not in match.group("path"), ("a warning from the collection", text)
        result = event.get("event_data", {}).get("res") or {}
        if isinstance(result, dict):
            assert not result.get("warnings") and not result.get("deprecations"), (event["event_data"].get("task"), result)
    return events[start:]


def test_check_job_output_fails_on_the_collections_own_warnings():
    """The filter above lets a library's import-time warning through and catches the collection's own."""
    library = "/usr/lib/python3.11/site-packages/ansible/_internal/_ssh/_ssh_agent.py:18: CryptographyDeprecationWarning: x"
    ours = "/tmp/c/ansible_collections/linuxnet/tcp/plugins/filter/tcp_diagnose.py:9: DeprecationWarning: y"
    start = {"event": "playbook_on_start", "stdout": ""}
    assert check_job_output([{"event": "verbose", "stdout": library}, start]) == [start]
    for events in ([{"event": "verbose", "stdout": ours}, start], [start, {"event": "verbose", "stdout": ours}],
                   [start, {"event": "runner_on_ok", "event_data": {"res": {"warnings": ["w"]}}}],
                   [{"event": "runner_on_ok"}, start]):
        with pytest.raises(AssertionError):
            check_job_output(events)


def check_job(artifacts, done, names, once=False):
    """The job succeeded; ``names`` are the hosts with a task result, or with ``once`` the hosts of which exactly one
    has results (on cached facts the audit runs each task once, on the first host of the job)."""
    stdout = artifact_text(artifacts, "stdout")
    assert artifact_text(artifacts, "status") == "successful", stdout[-6000:] + done.stderr[-3000:]
    # The project's own environment (requirements.lock) prints no Python warning at all.
    assert not PYTHON_WARNING.search(stdout), PYTHON_WARNING.search(stdout).group(0)
    assert artifact_text(artifacts, "rc") == "0"
    events = job_events(artifacts)
    check_job_output(events)
    assert events[-1]["event"] == "playbook_on_stats", events[-1]
    stats = events[-1]["event_data"]
    ran = sorted(stats["ok"])
    assert (len(ran) == 1 and ran[0] in names) if once else ran == sorted(names), stats
    assert not stats["failures"] and not stats["dark"], stats
    return events


def test_ansible_runner_tune_and_audit(fleet, private_data_dir):
    names = [m.name for m in fleet.members]
    # tune: the web profile, AWX launch with the survey answered.
    artifacts, done = runner(private_data_dir, "tune", "playbooks/tune.yml",
                             survey_answers("tune", tcp_tuning_profiles=["web"], tcp_tuning_name="awx"))
    events = check_job(artifacts, done, names)
    summaries = task_results(events, "Show the summary")
    assert sorted(summaries) == sorted(names), artifact_text(artifacts, "stdout")[-6000:]
    for host, res in summaries.items():
        lines = res["tcp_tuning_summary"]
        assert lines[0].startswith("linuxnet.tcp.tuning: profiles baseline, web -> /etc/sysctl.d/90-linuxnet-awx.conf"), (host, lines)
        assert any(line.startswith("changed: net.") for line in lines), (host, lines)
    # The values hold in each container (read with podman, not through Ansible).
    for member in fleet.members:
        drop_in = fleet.exec(member, "cat", "/etc/sysctl.d/90-linuxnet-awx.conf")
        for key, value in re.findall(r"^(net\.[\w.]+) = (.+)$", drop_in, re.M):
            live = fleet.exec(member, "cat", "/proc/sys/" + key.replace(".", "/")).split()
            assert live == value.split(), (member.name, key, live, value)
    # audit: survey answered with the JSON report only; a CLOSE_WAIT leak on one member to find.
    fleet.storm(fleet.members[0], close_wait=12, hold=300)
    artifacts, done = runner(private_data_dir, "audit", "playbooks/audit.yml",
                             survey_answers("audit", tcp_audit_report_formats=["json"]))
    events = check_job(artifacts, done, names)
    # One summary for the job (AWX shows it once), naming every host; the leaking member with its finding.
    (fleet_view,) = task_results(events, "Show the fleet summary and where the report is").values()
    lines = fleet_view["msg"]
    assert lines[0].startswith("Fleet: 3 host(s)"), lines
    text = "\n".join(lines)
    assert all(name in text for name in names), text
    (leak_line,) = [line for line in lines if line.startswith("  %s" % names[0])]
    assert "CLOSE_WAIT 12" in leak_line, leak_line
    assert "[WARNING] CLOSE_WAIT leak:" in text
    assert os.listdir(private_data_dir / "report") == ["report.json"]
    with open(private_data_dir / "report" / "report.json", encoding="utf-8") as handle:
        report = json.load(handle)
    assert sorted(h["host"] for h in report["hosts"]) == sorted(names) and "details" not in report


SIMULATED_HOSTS = 200
SLICES = load_template("audit_sliced")[0]["job_template"]["job_slice_count"]


@pytest.fixture(scope="module")
def simulated_data_dir(tarball, tmp_path_factory):
    """A private data dir for jobs over simulated hosts: recorded facts in a jsonfile fact cache (what AWX's
    use_fact_cache hands a job), local connection, tcp_audit_gather false (inventory/hosts), so that every job sees
    the same facts."""
    pdd = tmp_path_factory.mktemp("awx-sliced")
    shutil.copytree(os.path.join(ROOT, "playbooks"), pdd / "project" / "playbooks")
    documents = simulated.load_documents(os.path.join(ROOT, "tests", "unit", "fixtures", "audit"),
                                         ["storm", "legacy", "syncookies", "clean"])
    hosts = simulated.plan(SIMULATED_HOSTS, [("storm", 10), ("legacy", 25), ("syncookies", 13), ("clean", 1)])
    inventory, _config, cache = simulated.write(str(pdd / "simulated"), hosts, documents)
    (pdd / "inventory").mkdir()
    shutil.copy(inventory, pdd / "inventory" / "hosts")
    collections = install_collection(pdd, tarball)
    (pdd / "env").mkdir()
    envvars = {"ANSIBLE_COLLECTIONS_PATH": str(collections), "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0",
               "ANSIBLE_FORKS": "20", "ANSIBLE_CACHE_PLUGIN_TIMEOUT": "0", "ANSIBLE_GATHERING": "explicit"}
    (pdd / "env" / "envvars").write_text(yaml.safe_dump(envvars))
    (pdd / "env" / "settings").write_text(yaml.safe_dump({"job_timeout": 900, "idle_timeout": 600,
                                                          "suppress_ansible_output": True}))
    return pdd, [host for host, _group, _kind in hosts], cache


def without_timestamps(doc):
    doc = dict(doc)
    doc.pop("generated")
    doc.pop("merged_from", None)
    return doc


def test_sliced_audit_workflow_merges_to_the_unsliced_report(simulated_data_dir):
    pdd, names, facts = simulated_data_dir
    # One unsliced run of the audit template: the reference.
    artifacts, done = runner(pdd, "whole", "playbooks/audit.yml", dict(
        survey_answers("audit"), tcp_audit_report_dir=str(pdd / "whole"), tcp_audit_compare_with=""), facts=facts)
    check_job(artifacts, done, names, once=True)
    # The sliced template as AWX runs it: slice k of n gets every n-th host, each job its own awx_job_id.
    published = {}
    for k in range(1, SLICES + 1):
        part = names[k - 1::SLICES]
        artifacts, done = runner(pdd, "slice%d" % k, "playbooks/audit.yml",
                                 dict(survey_answers("audit_sliced"), awx_job_id=1000 + k), limit=",".join(part),
                                 facts=facts)
        events = check_job(artifacts, done, part, once=True)
        data = events[-1]["event_data"]["artifact_data"]
        assert list(data) == ["tcp_audit_slice_%d" % (1000 + k)], list(data)
        assert sorted(h["host"] for h in data["tcp_audit_slice_%d" % (1000 + k)]["hosts"]) == sorted(part)
        published.update(data)  # AWX: the next workflow node's extra vars are its parents' combined artifacts
    written = {path for path in glob.glob(str(pdd / "**" / "report.*"), recursive=True) if "requirements_collections" not in path}
    assert written == set(glob.glob(str(pdd / "whole" / "report.*"))), "the slices wrote no report file"
    # The merge template, with the slices' artifacts as its extra variables.
    artifacts, done = runner(pdd, "merge", "playbooks/merge_reports.yml", dict(
        survey_answers("merge_reports"), tcp_audit_report_dir=str(pdd / "merged"), tcp_audit_compare_with="",
        **published))
    events = check_job(artifacts, done, ["localhost"])
    (shown,) = task_results(events, "Show the fleet summary and where the report is").values()
    assert shown["msg"][0].startswith("Fleet: %d host(s), merged from %d reports" % (SIMULATED_HOSTS, SLICES)), shown["msg"][0]
    whole = json.loads((pdd / "whole" / "report.json").read_text())
    merged = json.loads((pdd / "merged" / "report.json").read_text())
    stamps = [published["tcp_audit_slice_%d" % (1000 + k)]["generated"] for k in range(1, SLICES + 1)]
    assert [m["generated"] for m in merged["merged_from"]] == stamps
    assert len(merged["hosts"]) == SIMULATED_HOSTS and merged["fleet"]["by_rule"]
    assert without_timestamps(merged) == without_timestamps(whole)
    # The Markdown and HTML reports too, below their headers (which say when, and that the report is merged).
    for name, start in (("report.md", "\n## "), ("report.html", '<div class="cards">')):
        whole_text, merged_text = ((pdd / d / name).read_text() for d in ("whole", "merged"))
        assert merged_text[merged_text.index(start):] == whole_text[whole_text.index(start):], name
