"""`make demo`, as the README's Quick start has a new user type it: it prints the play and nothing else.

The steps before the play (the venv at the lock's versions, the tarball, its install) are silent unless they fail,
and the locked environment prints no Python warning (requirements-test.txt says why cryptography stays below 51).
"""
import os
import re
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_make_demo_prints_the_play_and_nothing_else():
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MAKE", "MFLAGS"))}
    done = subprocess.run(["make", "--no-print-directory", "demo"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert done.stderr == "", done.stderr
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert lines[0] == "PLAY [Audit TCP state and sysctl settings] " + "*" * (80 - len("PLAY [Audit TCP state and sysctl settings] ")), lines[:3]
    assert lines[-2].startswith("PLAY RECAP "), lines[-3:]
    assert re.match(r"localhost +: ok=\d+ +changed=\d+ +unreachable=0 +failed=0 ", lines[-1]), lines[-1]
    assert not [line for line in lines if re.search(r"\w+Warning: |\[WARNING\]|\[DEPRECATION WARNING\]", line)], done.stdout
