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
"""
from __future__ import annotations

import glob
import json
import os
import re
import shutil

import pytest
import yaml

from fleet_fixtures import (BIN, ROOT, fleet, fleet_inventory, run, tool, tool_env)  # noqa: F401 pylint: disable=unused-import

pytestmark = pytest.mark.containers

AWX = os.path.join(ROOT, "awx")
TEMPLATES = sorted(os.path.basename(p)[:-4] for p in glob.glob(os.path.join(AWX, "job_templates", "*.yml")))
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


def job_template_options():
    """Option names of awx.awx.job_template, from the installed collection's documentation."""
    done = run([tool("ansible-doc"), "--json", "awx.awx.job_template"])
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout)["awx.awx.job_template"]["doc"]["options"])


def test_job_templates_load_into_awx(tmp_path):
    options = job_template_options()
    with open(os.path.join(AWX, "configure.yml"), encoding="utf-8") as handle:
        configure = handle.read()
    assert TEMPLATES == ["audit", "restore", "tune"]
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
    assert re.search(r"linuxnet_tcp_awx_templates: \[%s\]" % ", ".join(["audit", "tune", "restore"]), configure)


def role_of_playbook(playbook):
    """Name of the linuxnet.tcp role a playbook runs (roles: or import_role/include_role)."""
    found = set()

    def walk(tasks):
        for task in tasks:
            for action in ("ansible.builtin.import_role", "ansible.builtin.include_role"):
                if action in task:
                    found.add(task[action]["name"])
            for section in ("block", "rescue", "always"):
                walk(task.get(section, []))

    for play in load_yaml(os.path.join(ROOT, playbook)):
        for role in play.get("roles", []):
            found.add(role if isinstance(role, str) else role.get("role", role.get("name")))
        for section in ("pre_tasks", "tasks", "post_tasks"):
            walk(play.get(section, []))
    found = {name for name in found if name and name.startswith("linuxnet.tcp.")}
    assert len(found) == 1, "%s runs %s, expected one linuxnet.tcp role" % (playbook, found)
    return found.pop().split(".")[-1]


def argument_spec(role):
    return load_yaml(os.path.join(ROOT, "roles", role, "meta", "argument_specs.yml"))["argument_specs"]["main"]["options"]


def playbook_argument_spec(playbook):
    """The playbook's own variables, as its ansible.builtin.validate_argument_spec task checks them ({} if none)."""
    for play in load_yaml(os.path.join(ROOT, playbook)):
        for task in play.get("tasks", []):
            if "ansible.builtin.validate_argument_spec" in task:
                return task["ansible.builtin.validate_argument_spec"]["argument_spec"]
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
    role = role_of_playbook(template["playbook"])
    spec = argument_spec(role)
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
    collections = pdd / "requirements_collections"
    done = run([tool("ansible-galaxy"), "collection", "install", "-p", collections, tarball],
               env=tool_env(ANSIBLE_COLLECTIONS_PATH=collections))
    assert done.returncode == 0, done.stdout + done.stderr
    (pdd / "env").mkdir()
    envvars = {"ANSIBLE_COLLECTIONS_PATH": str(collections), "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0",
               "ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_RETRY_FILES_ENABLED": "False", "ANSIBLE_FORKS": "25"}
    (pdd / "env" / "envvars").write_text(yaml.safe_dump(envvars))
    settings = {"job_timeout": 900, "idle_timeout": 600, "suppress_ansible_output": True}
    (pdd / "env" / "settings").write_text(yaml.safe_dump(settings))
    return pdd


def runner(pdd, ident, playbook, extravars):
    """`ansible-runner run` as AWX's job does it; return the artifacts directory."""
    (pdd / "env" / "extravars").write_text(yaml.safe_dump(extravars))
    env = tool_env()
    env.pop("ANSIBLE_COLLECTIONS_PATH")  # the job's env/envvars decides, as in AWX
    done = run([tool("ansible-runner"), "run", pdd, "--ident", ident, "-p", playbook], env=env, timeout=900)
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


def check_job(artifacts, done, names):
    stdout = artifact_text(artifacts, "stdout")
    assert artifact_text(artifacts, "status") == "successful", stdout[-6000:] + done.stderr[-3000:]
    assert artifact_text(artifacts, "rc") == "0"
    events = job_events(artifacts)
    assert events[0]["event"] == "playbook_on_start" and events[-1]["event"] == "playbook_on_stats"
    stats = events[-1]["event_data"]
    assert sorted(stats["ok"]) == sorted(names) and not stats["failures"] and not stats["dark"], stats
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
    per_host = task_results(events, "Show the findings of each host")
    assert sorted(per_host) == sorted(names)
    for host, res in per_host.items():
        assert res["msg"][0].startswith("%s: " % host) and " TCP sockets (" in res["msg"][0], res["msg"]
    assert "CLOSE_WAIT 12" in per_host[names[0]]["msg"][0], per_host[names[0]]["msg"]
    (fleet_view,) = task_results(events, "Show the fleet summary and where the report is").values()
    assert fleet_view["msg"][0].startswith("Fleet: 3 host(s)"), fleet_view["msg"]
    assert os.listdir(private_data_dir / "report") == ["report.json"]
