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


def test_quick_start_shell_uses_the_installed_collection(tmp_path):
    """The Quick start's second line: a new shell that sources .venv/collection.env (written by make demo, which
    the test above ran) runs the collection installed in .venv/collections from any directory, not the checkout."""
    if not os.path.exists(os.path.join(ROOT, ".venv", "collection.env")):  # this test alone
        test_make_demo_prints_the_play_and_nothing_else()
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("MAKE", "MFLAGS", "ANSIBLE_", "VIRTUAL_ENV"))}
    env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    script = ("source %s && command -v ansible && ansible-galaxy collection list linuxnet.tcp && "
              "ansible localhost -c local -e ansible_python_interpreter=%s -m linuxnet.tcp.tcp_facts -a 'states=[] processes=false'"
              % (os.path.join(ROOT, ".venv", "collection.env"), "/usr/bin/python3" if os.path.exists("/usr/bin/python3")
                 else os.path.join(ROOT, ".venv", "bin", "python")))
    done = subprocess.run(["bash", "-c", script], cwd=str(tmp_path), env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0] == os.path.join(ROOT, ".venv", "bin", "ansible"), lines[0]
    assert "# %s" % os.path.join(ROOT, ".venv", "collections", "ansible_collections") in lines, done.stdout
    assert "localhost | SUCCESS => {" in lines, done.stdout
