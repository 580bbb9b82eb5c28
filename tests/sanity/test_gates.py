"""Quality gates run by ``make test``: ansible-test sanity, ansible-lint, changelog lint, build, Galaxy's
importer on the built tarball, the antsibull-docs documentation lint and the HTML documentation build.

Each gate runs the real tool on the real tree; a finding fails the test and its output is shown.
"""
from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import sys
import sysconfig

import pytest
from ansible_test_env import copy_collection, seed_pip_bootstrap, tracked_files

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, ".build")
BIN = os.path.dirname(sys.executable)


def run(argv, cwd=ROOT, env=None, timeout=1800):
    """Run a tool, return CompletedProcess with merged output (never a shell string)."""
    full_env = dict(os.environ, LC_ALL="C.UTF-8", ANSIBLE_NOCOLOR="1", PATH=BIN + os.pathsep + os.environ.get("PATH", ""))
    full_env.update(env or {})
    return subprocess.run(argv, cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout, check=False)


def module_names():
    return sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, "plugins", "modules", "*.py"))
                  if not os.path.basename(p).startswith("_"))


@pytest.fixture(scope="module")
def collection_copy():
    return copy_collection(os.path.join(BUILD, "sanity"))


@pytest.fixture(scope="module")
def offline_pip_bootstrap():
    seed_pip_bootstrap(sysconfig.get_paths()["purelib"])


def test_sanity_ignore_files_are_empty():
    for path in glob.glob(os.path.join(ROOT, "tests", "sanity", "ignore-*.txt")):
        with open(path, encoding="utf-8") as handle:
            assert handle.read().strip() == "", f"{path} must stay empty: fix the finding instead"


def test_ansible_test_sanity(collection_copy, offline_pip_bootstrap):
    result = run(["ansible-test", "sanity", "--python", "3.11", "--venv", "--color", "no"], cwd=collection_copy, timeout=2400)
    # The tool's output is mostly pip installing its linters; show the findings first.
    findings = [line for line in result.stdout.splitlines() if line.startswith(("ERROR", "FATAL"))]
    assert result.returncode == 0, "\n".join(findings) + "\n\n--- full output (tail) ---\n" + result.stdout[-8000:]


def test_ansible_lint_production_profile():
    result = run(["ansible-lint", "--offline", "--nocolor"])
    assert result.returncode == 0, result.stdout[-20000:]


def test_changelog_fragments_lint():
    result = run(["antsibull-changelog", "lint"])
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout


def galaxy_version():
    with open(os.path.join(ROOT, "galaxy.yml"), encoding="utf-8") as handle:
        return next(line.split(":", 1)[1].strip() for line in handle if line.startswith("version:"))


def content_names(kind):
    """Names of the modules, filter plugins or roles in the tree (what Galaxy must list)."""
    if kind == "module":
        return module_names()
    if kind == "filter":
        # One file can hold several filters: take the names from each file's DOCUMENTATION.
        names = []
        for path in glob.glob(os.path.join(ROOT, "plugins", "filter", "*.py")):
            with open(path, encoding="utf-8") as handle:
                found = re.search(r"^name: *(\w+)", handle.read(), re.M)
            if found:
                names.append(found.group(1))
        return sorted(names)
    return sorted(os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(ROOT, "roles", "*", "tasks")))


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    """The collection tarball, built once as a user (or Galaxy's publish step) builds it."""
    dist = tmp_path_factory.mktemp("dist")
    result = run(["ansible-galaxy", "collection", "build", "--output-path", str(dist), ROOT])
    assert result.returncode == 0, result.stdout
    path = dist / f"linuxnet-tcp-{galaxy_version()}.tar.gz"
    assert path.is_file(), result.stdout
    return path


def test_build_install_and_ansible_doc(tarball, tmp_path):
    installed = tmp_path / "collections"
    result = run(["ansible-galaxy", "collection", "install", "-p", str(installed), str(tarball)],
                 env={"ANSIBLE_COLLECTIONS_PATH": str(installed)})
    assert result.returncode == 0, result.stdout
    listing = run(["tar", "-tzf", str(tarball)]).stdout
    for unwanted in (".venv/", ".build/", ".git/", "__pycache__", "awx/", "docs/sphinx/"):
        assert unwanted not in listing, f"{unwanted} leaked into the collection tarball"
    modules = module_names()
    assert modules, "the collection ships no module"
    for name in modules:
        doc = run(["ansible-doc", "-t", "module", f"linuxnet.tcp.{name}"],
                  env={"ANSIBLE_COLLECTIONS_PATH": str(installed)})
        assert doc.returncode == 0 and f"linuxnet.tcp.{name}" in doc.stdout, doc.stdout
        assert "[WARNING]" not in doc.stdout, doc.stdout


# What galaxy-importer prints on a clean import. Any other line (a WARNING from its ansible-lint run or its
# ansible-doc run, an ERROR, a traceback, a message a new importer version adds) fails the gate.
IMPORTER_PROGRESS = re.compile(
    r"^(Importing with galaxy-importer [0-9.]+|Getting doc strings via ansible-doc|Finding content inside collection"
    r"|Loading (action|filter|module|module_utils|playbook|role) \S+|Linting collection via ansible-lint [0-9.]+\.\.\."
    r"|\.\.\.ansible-lint run complete|Collection loading complete|Importer processing completed successfully)$")


def test_galaxy_importer_accepts_the_tarball(tarball, tmp_path):
    """Galaxy's own importer on the built tarball: no error and no warning.

    Configured as Galaxy runs it, except that ansible-test is off (test_ansible_test_sanity runs it) and
    everything stays offline. Galaxy's importer has ansible-core alone, no other collection: so that a
    reference to a collection the tarball does not declare shows up here too, Ansible must not find the
    collections of the `ansible` bundle installed in this venv (ANSIBLE_COLLECTIONS_SCAN_SYS_PATH).
    """
    config = tmp_path / "galaxy-importer.cfg"
    config.write_text(
        "[galaxy-importer]\n"
        "run_ansible_test = False\n"      # the sanity gate above runs ansible-test
        "ansible_test_local_image = False\n"
        "run_ansible_doc = True\n"
        "run_ansible_lint = True\n"
        "offline_ansible_lint = True\n"   # no Galaxy, no network
        "check_changelog = True\n"
        "run_flake8 = False\n"            # ansible-test sanity runs pep8 and pylint
        f"tmp_root_dir = {tmp_path}\n"
        f"ansible_local_tmp = {tmp_path / 'ansible-tmp'}\n", encoding="utf-8")
    result = run([sys.executable, "-m", "galaxy_importer.main", str(tarball)], cwd=tmp_path,
                 env={"GALAXY_IMPORTER_CONFIG": str(config), "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "False"},
                 timeout=900)
    unexpected = [line for line in result.stdout.splitlines() if not IMPORTER_PROGRESS.match(line)]
    assert result.returncode == 0 and not unexpected, "\n".join(unexpected) + "\n\n--- full output ---\n" + result.stdout
    with open(tmp_path / "importer_result.json", encoding="utf-8") as handle:
        imported = json.load(handle)
    listed = {(item["content_type"], item["name"]) for item in imported["contents"]}
    docs = {(item["content_type"], item["content_name"]): item for item in imported["docs_blob"]["contents"]}
    for kind in ("module", "filter", "role"):
        names = content_names(kind)
        assert names, f"the collection ships no {kind}"
        for name in names:
            assert (kind, name) in listed, f"Galaxy does not list {kind} {name}"
            if kind == "role":
                assert docs[(kind, name)]["readme_html"], f"role {name}: Galaxy shows no README"
            else:
                assert docs[(kind, name)]["doc_strings"]["doc"], f"{kind} {name}: Galaxy shows no documentation"
    assert imported["docs_blob"]["collection_readme"]["html"], "Galaxy shows no collection README"


# Collections that the documentation links to besides linuxnet.tcp and ansible.builtin (seealso entries);
# their docs are checked too. A reference to any other collection fails the lint: add it here if it is meant.
REFERENCED_COLLECTIONS = ("ansible.posix",)


def test_antsibull_docs_lint(collection_copy, tmp_path):
    """`antsibull-docs lint-collection-docs --plugin-docs`: plugin docs, role argument specs and every reference."""
    bundle = os.path.join(sysconfig.get_paths()["purelib"], "ansible_collections")  # the `ansible` package
    collections = tmp_path / "ansible_collections"
    for name in REFERENCED_COLLECTIONS:
        namespace, short = name.split(".")
        (collections / namespace).mkdir(parents=True, exist_ok=True)
        assert os.path.isdir(os.path.join(bundle, namespace, short)), f"{name} is not installed"
        os.symlink(os.path.join(bundle, namespace, short), collections / namespace / short)
    result = run(["antsibull-docs", "lint-collection-docs", "--plugin-docs", "--validate-collection-refs=all",
                  "--disallow-unknown-collection-refs", "--check-extra-docs-refs", collection_copy],
                 env={"ANSIBLE_COLLECTIONS_PATH": str(tmp_path), "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "False"})
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout


def test_html_docs_build(tmp_path):
    """`make docs` (antsibull-docs + Sphinx, warnings are errors) renders a page per module, filter and role."""
    result = run(["make", "--no-print-directory", "docs", f"DOCS={tmp_path}"])
    assert result.returncode == 0, result.stdout[-20000:]
    html = tmp_path / "html"
    with open(html / "index.html", encoding="utf-8") as handle:
        index = handle.read()
    for kind in ("module", "filter", "role"):
        for name in content_names(kind):
            page = f"{name}_{kind}.html"
            assert (html / page).is_file(), f"no page for {kind} {name}"
            assert f'href="{page}"' in index, f"the index does not link {page}"


# Role variable names, checked here instead of by ansible-lint's var-naming[no-role-prefix] (off in .ansible-lint,
# which says why): every variable a role defines starts with its prefix, public ones with PREFIX_, private ones
# with __PREFIX_. Outside it: Ansible's own connection variables (ansible_*) and the documented interfaces listed here.
ROLE_PREFIXES = {"audit": "tcp_audit", "tuning": "tcp_tuning"}
ROLE_INTERFACE_NAMES = {"tcp_findings"}  # the fact the audit role registers for users (docs/audit.md)


def _role_variable_names(role):
    import yaml  # pylint: disable=import-outside-toplevel
    base = os.path.join(ROOT, "roles", role)
    names = []
    for rel in ("defaults/main.yml", "vars/main.yml"):
        path = os.path.join(base, rel)
        if os.path.exists(path):
            with open(path) as handle:
                names += [(rel, name) for name in (yaml.safe_load(handle) or {})]
    with open(os.path.join(base, "meta", "argument_specs.yml")) as handle:
        for entry in yaml.safe_load(handle)["argument_specs"].values():
            names += [("meta/argument_specs.yml", name) for name in entry.get("options", {})]

    def walk(tasks, rel):
        for task in tasks or []:
            if not isinstance(task, dict):
                continue
            if task.get("register"):
                names.append((rel, task["register"]))
            for key in ("ansible.builtin.set_fact", "set_fact"):
                if isinstance(task.get(key), dict):
                    names.extend((rel, name) for name in task[key] if name != "cacheable")
            names.extend((rel, name) for name in (task.get("vars") or {}))
            for key in ("block", "rescue", "always"):
                walk(task.get(key), rel)

    for path in sorted(glob.glob(os.path.join(base, "tasks", "*.yml")) + glob.glob(os.path.join(base, "handlers", "*.yml"))):
        with open(path) as handle:
            walk(yaml.safe_load(handle), os.path.relpath(path, base))
    return names


@pytest.mark.parametrize("role", sorted(ROLE_PREFIXES))
def test_role_variables_carry_the_role_prefix(role):
    prefix = ROLE_PREFIXES[role]
    names = _role_variable_names(role)
    assert len(names) > 10  # the walk really found the role's variables
    bad = ["%s: %s" % (rel, name) for rel, name in names
           if not (name.startswith((prefix + "_", "__" + prefix + "_", "ansible_")) or name in ROLE_INTERFACE_NAMES)]
    assert not bad, "variables without the %s_ / __%s_ prefix:\n" % (prefix, prefix) + "\n".join(bad)


def test_no_lint_suppression_for_role_variable_names():
    hits = []
    for rel in tracked_files():
        if rel.startswith(("roles/", "playbooks/", "molecule/")) and rel.endswith((".yml", ".yaml")):
            with open(os.path.join(ROOT, rel)) as handle:
                hits += ["%s:%d" % (rel, n) for n, line in enumerate(handle, 1) if "no-role-prefix" in line]
    assert not hits, "naming is checked by test_role_variables_carry_the_role_prefix; drop these noqa comments: " + ", ".join(hits)
