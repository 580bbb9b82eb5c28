"""The test environment is the locked one: what `make test` runs on is what requirements.lock says.

A venv that differs from the lock (a package pip picked newer on this machine, one installed by hand, one the lock
dropped) passes here only by luck and fails on the next clean machine, so the suite refuses to run green on it.
"""
import os
import re
import subprocess
import sys

import pytest

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


@pytest.mark.parametrize("requirements", ["requirements.txt", "requirements-docs.txt", "requirements-test.txt"])
def test_the_lock_satisfies_the_ranges(requirements):
    """A range edited without `make lock` is caught here, before pip on the next machine meets the conflict."""
    from packaging.requirements import Requirement  # pylint: disable=import-outside-toplevel

    pins = {}
    for line in read_lock().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    with open(os.path.join(ROOT, requirements), encoding="utf-8") as handle:
        lines = [line.split("#", 1)[0].strip() for line in handle]
    checked = 0
    for line in lines:
        if not line or line.startswith("-r"):
            continue
        requirement = Requirement(line)
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        assert name in pins, "%s: %s is not in requirements.lock (run `make lock`)" % (requirements, line)
        assert requirement.specifier.contains(pins[name], prereleases=True), \
            "%s: %s, but requirements.lock pins %s==%s (run `make lock`)" % (requirements, line, name, pins[name])
        checked += 1
    assert checked, requirements
