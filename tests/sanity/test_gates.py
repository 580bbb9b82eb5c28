"""Quality gates run by ``make test``: ansible-test sanity, ansible-lint, changelog lint, build.

Each gate runs the real tool on the real tree; a finding fails the test and its output is shown.
"""
from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, ".build")
BIN = os.path.dirname(sys.executable)


def run(argv, cwd=ROOT, env=None, timeout=1800):
    """Run a tool, return CompletedProcess with merged output (never a shell string)."""
    full_env = dict(os.environ, LC_ALL="C.UTF-8", ANSIBLE_NOCOLOR="1", PATH=BIN + os.pathsep + os.environ.get("PATH", ""))
    full_env.update(env or {})
    return subprocess.run(argv, cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout, check=False)


def tracked_files():
    """Files git would submit: tracked plus untracked-but-not-ignored (so local work is checked too)."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                         stdout=subprocess.PIPE).stdout.decode()
    return sorted(p for p in out.split("\0") if p and os.path.isfile(os.path.join(ROOT, p)))


def module_names():
    return sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, "plugins", "modules", "*.py"))
                  if not os.path.basename(p).startswith("_"))


@pytest.fixture(scope="module")
def collection_copy():
    """A copy (not a symlink: ansible-test refuses those) at .../ansible_collections/linuxnet/tcp."""
    dest = os.path.join(BUILD, "sanity", "ansible_collections", "linuxnet", "tcp")
    shutil.rmtree(dest, ignore_errors=True)
    for rel in tracked_files():
        target = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, rel), target)
    # ansible-test lists a collection's files through git when it is a repository.
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run(["git", "add", "-A"], cwd=dest, check=True)
    return dest


@pytest.fixture(scope="module")
def offline_pip_bootstrap():
    """Seed ansible-test's pip bootstrap cache, since its download host is unreachable here."""
    import ansible_test._internal.python_requirements as requirements  # pylint: disable=import-outside-toplevel

    with open(requirements.__file__, encoding="utf-8") as handle:
        version = re.search(r"pip='([0-9.]+)'", handle.read()).group(1)
    cache = os.path.expanduser("~/.ansible/test/cache/get_pip_%s.py" % version.replace(".", "_"))
    if not os.path.exists(cache):
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        shutil.copy(os.path.join(ROOT, "tests", "sanity", "offline_get_pip.py"), cache)
    return cache


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


def test_build_install_and_ansible_doc(tmp_path):
    with open(os.path.join(ROOT, "galaxy.yml"), encoding="utf-8") as handle:
        version = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("version:"))
    dist = tmp_path / "dist"
    result = run(["ansible-galaxy", "collection", "build", "--output-path", str(dist), ROOT])
    assert result.returncode == 0, result.stdout
    tarball = dist / f"linuxnet-tcp-{version}.tar.gz"
    assert tarball.is_file(), result.stdout
    installed = tmp_path / "collections"
    result = run(["ansible-galaxy", "collection", "install", "-p", str(installed), str(tarball)],
                 env={"ANSIBLE_COLLECTIONS_PATH": str(installed)})
    assert result.returncode == 0, result.stdout
    listing = run(["tar", "-tzf", str(tarball)]).stdout
    for unwanted in (".venv/", ".build/", ".git/", "__pycache__"):
        assert unwanted not in listing, f"{unwanted} leaked into the collection tarball"
    modules = module_names()
    assert modules, "the collection ships no module"
    for name in modules:
        doc = run(["ansible-doc", "-t", "module", f"linuxnet.tcp.{name}"],
                  env={"ANSIBLE_COLLECTIONS_PATH": str(installed)})
        assert doc.returncode == 0 and f"linuxnet.tcp.{name}" in doc.stdout, doc.stdout
        assert "[WARNING]" not in doc.stdout, doc.stdout
