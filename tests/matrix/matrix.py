"""The compatibility matrix: which ansible-core runs on which controller Python against which target Pythons.

Each cell is one ansible-core minor in its own venv (``.build/matrix/<minor>``, made by tests/lock/pylock.py from
``ansible-core-<minor>.lock`` and rebuilt when the lock's hash changes), on one of the controller Pythons that minor
supports, driving modules on the target Pythons listed for it. tests/matrix/test_matrix.py runs, per cell, that
version's ``ansible-test sanity``, the unit tests and a live smoke run; the target-side unit tests also run on the
oldest target Python (``TARGET_UNITS``).

    matrix.py lock      resolve every lock of the matrix (``make lock`` runs it)
    matrix.py install   make or refresh every venv of the matrix (``make matrix-deps``)
    matrix.py table     print the compatibility table from the last run's results.json, for README.md's
                        Compatibility section and docs/compatibility.md (tests/sanity/test_docs_options.py
                        checks that the two copies are equal)

The interpreters come from pyenv (``$PYENV_ROOT/versions/X.Y.Z``) or ``pythonX.Y`` on PATH; a missing one is an
error that names it, never a skipped cell. Standard library only, like pylock.py.
"""
import argparse
import collections
import concurrent.futures
import glob
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PYLOCK = os.path.join(ROOT, "tests", "lock", "pylock.py")
VENVS = os.path.join(ROOT, ".build", "matrix")

Cell = collections.namedtuple("Cell", "core controller targets")

# Controller Pythons spread over what each minor supports (2.16/2.17: 3.10-3.12, 2.18/2.19: 3.11-3.13,
# 2.20/2.21: 3.12-3.14; 3.14 is not on the build machines), so every controller Python from 3.10 to 3.13 runs
# at least one cell. Targets: each cell's oldest and newest supported target; 2.16 also Python 2.7, which the
# modules must refuse with a clear message, 3.6 (RHEL 8's platform-python, dropped by 2.17) and 3.8;
# 2.21, the newest, every target from 3.9 on.
CELLS = (
    Cell("2.16", "3.10", ("2.7", "3.6", "3.8", "3.12")),
    Cell("2.17", "3.12", ("3.7", "3.12")),
    Cell("2.18", "3.11", ("3.8", "3.13")),
    Cell("2.19", "3.13", ("3.8", "3.13")),
    Cell("2.20", "3.12", ("3.9", "3.13")),
    Cell("2.21", "3.13", ("3.9", "3.10", "3.11", "3.12", "3.13")),
)
# What each cell's ansible-test sanity checks: what the collection ships and the unit tests each cell runs. The
# repository's own tooling (benchmarks, Molecule and integration tests, this matrix, docs/sphinx) runs only in the
# project's venv and is checked there, by the whole-tree sanity run of tests/sanity/test_gates.py.
SANITY_TARGETS = ("plugins/", "roles/", "playbooks/", "meta/", "changelogs/", "tests/unit/", "tests/config.yml")
# Findings of a cell's sanity run that the matrix tolerates, each with its reason; the matrix writes them into the
# ignore file of its own copy of the collection only. The collection ships no ignore file: Automation Hub's
# certification and ansible-lint's production profile refuse one with these entries. ansible-test fails an entry
# that no longer matches anything, so a fixed finding must be removed from here.
KNOWN_SANITY_FINDINGS = {}
# Target Pythons that also run the target-side unit tests (module_utils, modules), with the oldest cell's
# ansible-core module_utils, in a venv of their own (``target-python-X.Y.lock``).
TARGET_UNITS = (("3.6", "2.16"),)
# The Python 2 target is expected to fail, with the collection's own message.
UNSUPPORTED_TARGETS = ("2.7",)


def cell(core):
    return next(c for c in CELLS if c.core == core)


class MissingPython(Exception):
    """An interpreter of the matrix is not on this machine."""


def find_python(version):
    """Path of a CPython X.Y: a pyenv build first, then pythonX.Y on PATH (pyenv's shims excluded: they refuse
    versions that are not selected). Raises MissingPython naming the version and where it looked."""
    pyenv = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    builds = sorted(glob.glob(os.path.join(pyenv, "versions", version + ".*", "bin", "python" + version)),
                    key=lambda p: [int(x) for x in p.split(os.sep)[-3].split(".") if x.isdigit()])
    if builds:
        return builds[-1]
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if "shims" not in p.split(os.sep))
    found = shutil.which("python" + version, path=path)
    if found:
        return found
    raise MissingPython("Python %s is needed by the compatibility matrix and is not on this machine: looked for "
                        "%s/versions/%s.*/bin/python%s and python%s on PATH. Install it (pyenv install %s) or "
                        "see tests/matrix/matrix.py." % (version, pyenv, version, version, version, version))


def requirements(name):
    return os.path.join(HERE, name + ".txt")


def lock(name):
    return os.path.join(HERE, name + ".lock")


def environments():
    """(name, Python version) of every venv of the matrix: one per cell, one per target-side unit run."""
    return [("ansible-core-" + c.core, c.controller) for c in CELLS] + \
        [("target-python-" + version, version) for version, _core in TARGET_UNITS]


def venv_dir(name):
    """``.build/matrix/<name>``: pylock.py recreates it when the lock's hash or the interpreter changes."""
    return os.path.join(VENVS, name)


def install(name, version):
    """Make or refresh one venv at its lock; returns (name, problems or None)."""
    done = subprocess.run([sys.executable, PYLOCK, "install", "--python", find_python(version), "--venv",
                           venv_dir(name), "--lock", lock(name), "-r", requirements(name)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    return name, (done.stdout.strip() or "exit status %d" % done.returncode) if done.returncode else None


def resolve(name, version):
    done = subprocess.run([sys.executable, PYLOCK, "resolve", "--python", find_python(version), "--out", lock(name),
                           "-r", requirements(name)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, check=False)
    return name, (done.stdout.strip() or "exit status %d" % done.returncode) if done.returncode else None


def for_each_environment(action):
    """Run ``action(name, version)`` for every venv, two at a time (the build machines have 2 cores, and the
    work is mostly waiting on the package index); every interpreter is looked up first, so a missing one
    stops the run before anything is built."""
    pairs = environments()
    for _name, version in pairs:
        find_python(version)
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        failures = [(name, problem) for name, problem in pool.map(lambda pair: action(*pair), pairs) if problem]
    for name, problem in failures:
        print("%s: %s" % (name, problem), file=sys.stderr)
    return 1 if failures else 0


def table(results):
    """The compatibility table (Markdown) of README.md and docs/compatibility.md from the results.json of a matrix run."""
    jobs = results["jobs"]

    def cell_text(kind, key):
        job = jobs.get("%s %s" % (kind, key))
        if job is None:
            return "not run"
        known = " (%d tolerated finding(s): %s)" % (len(job["known"]), ", ".join(job["known"])) if job.get("known") else ""
        return "%s%s, %d s" % ("pass" if job["ok"] else "**FAIL**", known, round(job["seconds"]))

    lines = ["| ansible-core | controller Python | target Pythons, live | `ansible-test sanity` | unit tests | live smoke run |",
             "| --- | --- | --- | --- | --- | --- |"]
    for cell in CELLS:
        targets = ", ".join(version + (" (refused with the collection's message)" if version in UNSUPPORTED_TARGETS else "")
                            for version in cell.targets)
        lines.append("| %s | %s | %s | %s | %s | %s |" % (cell.core, cell.controller, targets, cell_text("sanity", cell.core),
                                                          cell_text("units", cell.core), cell_text("smoke", cell.core)))
    for version, core in TARGET_UNITS:
        lines.append("")
        lines.append("Target-side unit tests on Python %s (ansible-core %s module_utils): %s." % (
            version, core, cell_text("target-units", version)))
    lines.append("")
    lines.append("Matrix wall time %.1f min, CPU time %.1f min, load average at the end %s." % (
        results["wall_seconds"] / 60, results.get("cpu_seconds", 0) / 60, " ".join("%.1f" % x for x in results["load"])))
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("command", choices=("lock", "install", "table"))
    parser.add_argument("--results", default=os.path.join(VENVS, "results.json"),
                        help="results.json of a matrix run (table)")
    args = parser.parse_args()
    if args.command == "table":
        with open(args.results, encoding="utf-8") as handle:
            print(table(json.load(handle)))
        return 0
    try:
        return for_each_environment(resolve if args.command == "lock" else install)
    except MissingPython as error:
        print("matrix.py: %s" % error, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
