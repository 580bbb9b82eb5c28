"""A fleet of podman containers from the linuxnet.tcp test images, with an Ansible inventory for it.

Used from the command line, by the fleet tests (tests/integration/fleet_fixtures.py) and by the fleet
benchmark (benchmarks/fleet/run.py)::

    python tests/fleet/fleet.py up --name lntcp-fleet-cli --count 10 --inventory /tmp/fleet.yml
    ansible-playbook -i /tmp/fleet.yml linuxnet.tcp.audit
    python tests/fleet/fleet.py storm --name lntcp-fleet-cli --time-wait 3000 lntcp-fleet-cli-01
    python tests/fleet/fleet.py down --name lntcp-fleet-cli

Members are ``NAME-01`` ... ``NAME-NN`` and cycle through the Debian 11, 12 and 13 images, so a fleet always
mixes releases. They run privileged with ``/bin/sleep infinity`` (each has its own network namespace, so the
namespaced ``net.*`` keys the roles write stay inside it) and carry the label ``linuxnet.tcp.fleet=NAME``, which
is what ``down`` removes: a crashed run is cleaned up by running ``down`` with the same name.

The inventory uses the ``containers.podman.podman`` connection: no SSH, no agent, one ``podman exec`` per task.
Run ``source tests/podman/env.sh`` first on hosts that need the lowered ulimits (see that file).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

LABEL = "linuxnet.tcp.fleet"
DEFAULT_COUNT = 10
MAX_COUNT = 30
RELEASES = ("debian11", "debian12", "debian13")
CONNECTION = "containers.podman.podman"
PYTHON = "/usr/bin/python3"
# Variables of the `fleet` group. With more than one module in `facts_modules`, gather_facts runs them as async
# jobs by default, and ansible-core 2.19 kills `setup` after an implicit 5 s when no gather_timeout applies to it
# (https://github.com/ansible/ansible/pull/87223). Serial gathering is also cheaper for quick modules like
# tcp_facts, and it is what docs/fleet.md recommends.
FLEET_VARS = {"ansible_facts_parallel": False}


class FleetError(RuntimeError):
    """A podman command failed; the message carries the command and podman's own error."""


def image_for(release: str) -> str:
    """Test image of a release; LINUXNET_TCP_IMAGE_DEBIAN12=... overrides it, as in molecule/*/molecule.yml."""
    return os.environ.get("LINUXNET_TCP_IMAGE_" + release.upper(), "localhost/linuxnet-tcp-test:" + release)


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    """Run podman with an argument list; raise FleetError with its stderr when it fails and check is set."""
    exe = shutil.which("podman")
    if exe is None:
        raise FleetError("podman is not installed (apt-get install podman runc)")
    argv = [exe] + list(args)
    try:
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout,
                              check=False, env=dict(os.environ, LC_ALL="C"))
    except subprocess.TimeoutExpired as exc:
        raise FleetError("timed out after %ss: %s" % (timeout, " ".join(argv))) from exc
    if check and done.returncode != 0:
        raise FleetError("%s failed (rc=%d): %s" % (" ".join(argv), done.returncode, done.stderr.strip()))
    return done


@dataclass
class Member:
    """One container of the fleet."""

    name: str
    release: str
    privileged: bool = True
    extra_vars: dict = field(default_factory=dict)

    @property
    def image(self) -> str:
        return image_for(self.release)


# Runs inside a member with its python3: builds TIME_WAIT and CLOSE_WAIT sockets on loopback, then holds the
# CLOSE_WAIT ones for `hold` seconds in a detached child. The parent returns as soon as the table is built, so
# `podman exec` returns too. TIME_WAIT sockets belong to the kernel and last 60 s whatever the process does.
# It sets the member's own net.ipv4.tcp_tw_reuse to 0 when /proc/sys is writable.
STORM_SCRIPT = r"""
import json, os, socket, sys, time
time_wait, close_wait, hold = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
read_end, write_end = os.pipe()
if os.fork():
    os.close(write_end)
    report = os.read(read_end, 4096)
    sys.stdout.write(report.decode())
    sys.exit(0 if report else 1)
os.close(read_end)
os.setsid()
if len(sys.argv) > 4:  # the process name ps and /proc/PID/comm show (prctl PR_SET_NAME), as a real service has
    import ctypes
    ctypes.CDLL(None).prctl(15, sys.argv[4].encode()[:15], 0, 0, 0)
try:  # no TIME_WAIT reuse (default 2: loopback), or a long storm recycles its own ports and leaves fewer sockets
    with open("/proc/sys/net/ipv4/tcp_tw_reuse", "w") as knob:
        knob.write("0")
except OSError:
    pass
null = os.open(os.devnull, os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 0))
server.listen(4096)
port = server.getsockname()[1]
for _ in range(time_wait):
    cli = socket.create_connection(("127.0.0.1", port))
    srv = server.accept()[0]
    cli.close()  # the active closer keeps TIME_WAIT
    srv.close()
leaked = []
for _ in range(close_wait):
    cli = socket.create_connection(("127.0.0.1", port))
    server.accept()[0].close()  # the peer closes, this process never does: CLOSE_WAIT
    leaked.append(cli)
time.sleep(0.2)
os.write(write_end, json.dumps({"pid": os.getpid(), "port": port}).encode())
os.close(write_end)
time.sleep(hold)
"""

# Runs inside a member with its python3: an accept-queue load that follows net.core.somaxconn, for a tuning change
# that makes a host worse on purpose. A listener on 127.0.0.1:port asks for listen(backlog) again every `tick`
# seconds, as a server does when it reloads, so the kernel caps the queue at the somaxconn of that moment
# (__sys_listen_socket); it accepts and closes whatever is queued once per tick. A client opens `burst`
# non-blocking connections per tick and closes them after the tick. While min(backlog, somaxconn) + 1 >= burst
# nothing overflows; below that, about burst - somaxconn - 1 connections per tick are dropped and the kernel counts
# them in ListenOverflows and ListenDrops. It stops by itself after `seconds` (started with podman exec --detach).
ACCEPT_LOAD_SCRIPT = r"""
import socket, sys, time
seconds, port, backlog, burst, tick = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", port))
server.listen(backlog)
server.setblocking(False)
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    server.listen(backlog)
    clients = []
    for _ in range(burst):
        cli = socket.socket()
        cli.setblocking(False)
        cli.connect_ex(("127.0.0.1", port))
        clients.append(cli)
    time.sleep(tick)
    while True:
        try:
            server.accept()[0].close()
        except OSError:
            break
    for cli in clients:
        cli.close()
"""


class Fleet:
    """N containers named NAME-01..NAME-NN; a context manager that always tears them down."""

    def __init__(self, name: str, count: int = DEFAULT_COUNT, releases: tuple = RELEASES, workers: int = 4):
        if not name.startswith("lntcp-"):
            raise FleetError("fleet name %r must start with 'lntcp-' so that it never matches other containers" % name)
        if not 1 <= count <= MAX_COUNT:
            raise FleetError("count must be between 1 and %d, not %d" % (MAX_COUNT, count))
        self.name = name
        self.workers = workers
        self.members = [Member("%s-%02d" % (name, i + 1), releases[i % len(releases)]) for i in range(count)]

    # -- lifecycle -------------------------------------------------------------------------------------------
    def add(self, suffix: str, release: str = "debian12", privileged: bool = True) -> Member:
        """Declare one more member (before up()); privileged=False gives it a read-only /proc/sys."""
        member = Member("%s-%s" % (self.name, suffix), release, privileged)
        self.members.append(member)
        return member

    def _start(self, member: Member) -> None:
        args = ["run", "-d", "--name", member.name, "--hostname", member.name, "--label", "%s=%s" % (LABEL, self.name)]
        if member.privileged:
            args.append("--privileged")
        podman(*(args + [member.image, "/bin/sleep", "infinity"]))

    def up(self) -> "Fleet":
        """Start every member (a few at a time); on any failure remove what started and raise."""
        missing = sorted({m.image for m in self.members if podman("image", "exists", m.image, check=False).returncode})
        if missing:
            raise FleetError("missing test images %s: build them with `make images` (tests/images/build.sh)"
                             % ", ".join(missing))
        self.down()  # leftovers of a crashed run with the same name
        try:
            with ThreadPoolExecutor(max_workers=self.workers) as pool:
                list(pool.map(self._start, self.members))
        except BaseException:
            self.down()
            raise
        return self

    def down(self) -> list:
        """Remove every container labelled with this fleet's name, running or not; return their names."""
        names = self.running(all_states=True)
        if names:
            podman("rm", "-f", "-t", "0", *names, timeout=300)
        return names

    def running(self, all_states: bool = False) -> list:
        args = ["ps", "--filter", "label=%s=%s" % (LABEL, self.name), "--format", "{{.Names}}"]
        if all_states:
            args.insert(1, "-a")
        return sorted(line for line in podman(*args).stdout.split() if line)

    def stop(self, member: Member) -> None:
        """Stop a member but keep it in the inventory: Ansible then finds it unreachable."""
        podman("stop", "-t", "0", member.name)

    def __enter__(self) -> "Fleet":
        return self.up()

    def __exit__(self, *exc) -> None:
        self.down()

    # -- use -------------------------------------------------------------------------------------------------
    def member(self, name: str) -> Member:
        for member in self.members:
            if member.name == name:
                return member
        raise FleetError("no member %r in fleet %s" % (name, self.name))

    def exec(self, member: Member, *argv: str, timeout: float = 120) -> str:
        """Run a command in a member; return its stdout."""
        return podman("exec", member.name, *argv, timeout=timeout).stdout

    def storm(self, member: Member, time_wait: int = 0, close_wait: int = 0, hold: float = 600, name: str = None) -> dict:
        """Leave `time_wait` TIME_WAIT sockets (for 60 s) and `close_wait` leaked CLOSE_WAIT sockets (for `hold` s)
        in a member's own network namespace, held by a process called `name` if given; return {"pid": ..., "port": ...}
        of the process holding them."""
        if not 0 <= time_wait <= 20000 or not 0 <= close_wait <= 1000:
            raise FleetError("storm is bounded to 20000 TIME_WAIT and 1000 CLOSE_WAIT sockets")
        out = self.exec(member, PYTHON, "-c", STORM_SCRIPT, str(time_wait), str(close_wait), str(hold), *([name] if name else []))
        return json.loads(out)

    def accept_load(self, member: Member, seconds: float, port: int = 20080, backlog: int = 64, burst: int = 24,
                    tick: float = 0.2) -> int:
        """Start the accept-queue load of ACCEPT_LOAD_SCRIPT in a member for `seconds` and return once it listens on
        `port` (returned). With the defaults nothing overflows at somaxconn >= 64, and about 75 connections/s
        overflow at somaxconn 8."""
        if not 0 < seconds <= 900 or not 1 <= burst <= 256 or not 0.05 <= tick <= 5:
            raise FleetError("accept load is bounded to 900 s, bursts of 256 connections and ticks of 0.05 to 5 s")
        podman("exec", "--detach", member.name, PYTHON, "-c", ACCEPT_LOAD_SCRIPT, str(seconds), str(port), str(backlog),
               str(burst), str(tick))
        listening = ":%04X 00000000:0000 0A " % port  # local 127.0.0.1:port, state 0A (LISTEN) in /proc/net/tcp
        deadline = time.monotonic() + 10
        while listening not in self.exec(member, "cat", "/proc/net/tcp"):
            if time.monotonic() > deadline:
                raise FleetError("the accept load in %s does not listen on port %d after 10 s" % (member.name, port))
            time.sleep(0.2)
        return port

    def inventory(self) -> dict:
        """The inventory as a dict: group `fleet` with every member, and one group per release."""
        hosts, groups = {}, {}
        for member in self.members:
            hosts[member.name] = dict({"ansible_connection": CONNECTION, "ansible_host": member.name,
                                       "ansible_python_interpreter": PYTHON}, **member.extra_vars)
            groups.setdefault(member.release, {"hosts": {}})["hosts"][member.name] = None
        return {"all": {"children": {"fleet": {"hosts": hosts, "children": groups, "vars": dict(FLEET_VARS)}}}}

    def write_inventory(self, path: str) -> str:
        """Write the inventory (YAML; JSON is YAML, and Ansible's yaml plugin reads .yml, .yaml and .json)."""
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("# Written by tests/fleet/fleet.py for fleet %s; removed with `fleet.py down --name %s`.\n"
                         % (self.name, self.name))
            json.dump(self.inventory(), handle, indent=2, sort_keys=True)
            handle.write("\n")
        return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the fleet and write its inventory")
    up.add_argument("--count", "-n", type=int, default=DEFAULT_COUNT, help="members, 1..%d (default %d)"
                    % (MAX_COUNT, DEFAULT_COUNT))
    up.add_argument("--inventory", "-i", default=None, help="inventory path (default ./NAME.yml)")
    down = sub.add_parser("down", help="remove every container of the fleet")
    storm = sub.add_parser("storm", help="build TIME_WAIT / CLOSE_WAIT sockets in members")
    storm.add_argument("--time-wait", type=int, default=0)
    storm.add_argument("--close-wait", type=int, default=0)
    storm.add_argument("--hold", type=float, default=600)
    storm.add_argument("members", nargs="+")
    for each in (up, down, storm):
        each.add_argument("--name", default="lntcp-fleet-cli", help="fleet name, starts with lntcp- (default %(default)s)")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            fleet = Fleet(args.name, args.count)
            started = time.monotonic()
            fleet.up()
            path = fleet.write_inventory(args.inventory or "%s.yml" % args.name)
            print("started %d containers in %.1fs; inventory: %s" % (len(fleet.members), time.monotonic() - started, path))
        elif args.command == "down":
            removed = Fleet(args.name, 1).down()
            print("removed %d containers" % len(removed))
        else:
            fleet = Fleet(args.name, 1)
            running = fleet.running()
            for name in args.members:
                if name not in running:
                    raise FleetError("%s is not a running member of fleet %s" % (name, args.name))
                member = Member(name, "")
                print(name, json.dumps(fleet.storm(member, args.time_wait, args.close_wait, args.hold)))
    except FleetError as exc:
        print("fleet.py: %s" % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
