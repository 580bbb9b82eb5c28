"""The test environment is the locked one: what `make test` runs on is what requirements.lock says.

A venv that differs from the lock (a package pip picked newer on this machine, one installed by hand, one the lock
dropped) passes here only by luck and fails on the next clean machine, so the suite refuses to run green on it.
"""
import os
import re
import subprocess
import sys

import pytest

from ansible_collections.linuxnet.tcp.tests.matrix import matrix

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

LOCK = os.path.join(ROOT, "requirements.lock")
PYLOCK = os.path.join(ROOT, "tests", "lock", "pylock.py")


def read_lock():
    with open(LOCK, encoding="utf-8") as handle:
        return handle.read()


def test_venv_equals_the_lock_and_pip_check_is_clean():
    done = subprocess.run([sys.executable, PYLOCK, "check", "--lock", LOCK], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    assert done.returncode == 0, "the venv of this run (%s) is not the locked one:\n%s\nRun `make test-deps` " \
        "(or `make lock` after changing a requirements file)." % (sys.prefix, done.stdout)


def test_the_lock_was_resolved_for_this_interpreter():
    match = re.search(r"^# Resolved on (\S+) (\d+\.\d+) ", read_lock(), re.M)
    assert match, "requirements.lock has no '# Resolved on' header: regenerate it with `make lock`"
    assert (match.group(1), match.group(2)) == ("CPython", "%d.%d" % sys.version_info[:2]), match.group(0)


def range_problems(lock_text, requirements):
    """How the pins of a lock fail the ranges of a requirements file (``-r`` lines aside), and how many it checked."""
    from packaging.requirements import Requirement  # pylint: disable=import-outside-toplevel

    pins = {}
    for line in lock_text.splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    with open(requirements, encoding="utf-8") as handle:
        lines = [line.split("#", 1)[0].strip() for line in handle]
    problems, checked = [], 0
    for line in lines:
        if not line or line.startswith("-r"):
            continue
        requirement = Requirement(line)
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        if name not in pins:
            problems.append("%s is not in the lock" % line)
        elif not requirement.specifier.contains(pins[name], prereleases=True):
            problems.append("%s, but the lock pins %s==%s" % (line, name, pins[name]))
        checked += 1
    return problems, checked


@pytest.mark.parametrize("requirements", ["requirements.txt", "requirements-docs.txt", "requirements-test.txt"])
def test_the_lock_satisfies_the_ranges(requirements):
    """A range edited without `make lock` is caught here, before pip on the next machine meets the conflict."""
    problems, checked = range_problems(read_lock(), os.path.join(ROOT, requirements))
    assert not problems, "%s against requirements.lock (run `make lock`): %s" % (requirements, "; ".join(problems))
    assert checked, requirements


@pytest.mark.parametrize("name,version", matrix.environments())
def test_each_matrix_venv_has_a_lock_for_its_interpreter(name, version):
    """The compatibility matrix's venvs are locked too: one lock per venv, resolved on the Python that venv uses,
    pinning what its requirements file asks for (tests/matrix/test_matrix.py installs them through pylock.py)."""
    with open(matrix.lock(name), encoding="utf-8") as handle:
        text = handle.read()
    assert re.search(r"^# Resolved on CPython %s " % re.escape(version), text, re.M), "%s: run `make lock`" % name
    problems, checked = range_problems(text, matrix.requirements(name))
    assert not problems and checked, "%s (run `make lock`): %s" % (name, "; ".join(problems))
