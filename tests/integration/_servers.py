# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Real servers from Debian, started by the tests in network namespaces they made, with their own configuration and
data directory under a temporary directory (never the host's default instances), and a lab of two namespaces joined
by a veth pair (test helper).

Every process started here is stopped by the context manager that started it, also when the test fails.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import uuid

from _procs import sh, stop

NGINX_CONF = """\
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_timeout {keepalive};
    keepalive_requests 1000000;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen {address}:{port} backlog={backlog};
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""


@contextlib.contextmanager
def lab(prefix="lntcp-i21"):
    """Two namespaces, ``web`` (10.21.0.1) and ``peer`` (10.21.0.2), joined by a veth pair; loopback up in both.
    Yields ``{"web": name, "peer": name, "web_ip", "peer_ip"}``; both are deleted on exit (which removes the pair)."""
    tag = uuid.uuid4().hex[:6]
    names = {"web": "%s-web-%s" % (prefix, tag), "peer": "%s-peer-%s" % (prefix, tag)}
    veth = ("v21w%s" % tag, "v21p%s" % tag)
    created = []
    try:
        for name in names.values():
            sh("ip", "netns", "add", name)
            created.append(name)
            sh("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
        sh("ip", "link", "add", veth[0], "netns", names["web"], "type", "veth", "peer", "name", veth[1], "netns",
           names["peer"])
        for (side, dev), ip in zip(zip(("web", "peer"), veth), ("10.21.0.1/24", "10.21.0.2/24")):
            sh("ip", "netns", "exec", names[side], "ip", "addr", "add", ip, "dev", dev)
            sh("ip", "netns", "exec", names[side], "ip", "link", "set", dev, "up")
        yield dict(names, web_ip="10.21.0.1", peer_ip="10.21.0.2")
    finally:
        for name in created:
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


def netns_sysctl(name, *settings):
    """Write namespaced keys ("key=value") inside namespace ``name`` only."""
    for setting in settings:
        sh("ip", "netns", "exec", name, "sysctl", "-q", "-w", setting)


def wait_port(netns, address, port, timeout=20.0):
    """Wait until something listens on address:port inside ``netns`` (ss, no connection made)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = sh("ip", "netns", "exec", netns, "ss", "-ltnH", "sport", "= :%d" % port).stdout
        if any(line.split()[3] in ("%s:%d" % (address, port), "*:%d" % port, "0.0.0.0:%d" % port)
               for line in out.splitlines() if line.strip()):
            return
        time.sleep(0.1)
    raise AssertionError("nothing listens on %s:%d in %s after %.0f s" % (address, port, netns, timeout))


@contextlib.contextmanager
def nginx(netns, workdir, address, port=80, backlog=511, workers=1, keepalive=65):
    """Debian's nginx in ``netns`` with a configuration of its own (master and ``workers`` workers, in the
    foreground). Yields ``{"master": pid, "workers": [pid, ...]}``."""
    prefix = os.path.join(workdir, "nginx-%d" % port)
    os.makedirs(prefix, exist_ok=True)
    conf = os.path.join(prefix, "nginx.conf")
    with open(conf, "w") as handle:
        handle.write(NGINX_CONF.format(prefix=prefix, address=address, port=port, backlog=backlog, workers=workers,
                                       keepalive=keepalive))
    proc = subprocess.Popen(["ip", "netns", "exec", netns, "/usr/sbin/nginx", "-c", conf, "-p", prefix,
                             "-g", "daemon off;"], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_port(netns, address, port)
        master = int(open(os.path.join(prefix, "nginx.pid")).read())
        deadline = time.monotonic() + 10
        workers_found = []
        while time.monotonic() < deadline and len(workers_found) < workers:
            workers_found = children(master)
            time.sleep(0.05)
        yield {"master": master, "workers": workers_found}
    finally:
        for pid in children(proc.pid if proc.poll() is None else -1) + [proc.pid]:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGCONT)  # a stopped worker cannot exit
        stop(proc, close_stdin=False)


def children(pid):
    """Pids whose parent is ``pid`` (from /proc/*/stat)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as handle:
                text = handle.read()
        except (FileNotFoundError, ProcessLookupError):
            continue  # that process exited between listdir and open: not a child any more
        if int(text[text.rindex(")") + 2:].split()[1]) == pid:
            out.append(int(name))
    return sorted(out)


@contextlib.contextmanager
def mariadb(netns, workdir, address, port=3306):
    """Debian's MariaDB server in ``netns``, with a data directory of its own made by mariadb-install-db and no
    grant tables (any user connects). Yields the server's pid."""
    datadir = os.path.join(workdir, "mariadb")
    os.makedirs(datadir, exist_ok=True)
    sh("/usr/bin/mariadb-install-db", "--no-defaults", "--datadir=" + datadir, "--user=root",
       "--auth-root-authentication-method=normal", "--skip-test-db", timeout=180)
    argv = ["ip", "netns", "exec", netns, "/usr/sbin/mariadbd", "--no-defaults", "--datadir=" + datadir,
            "--user=root", "--bind-address=" + address, "--port=%d" % port, "--socket=" + os.path.join(workdir, "my.sock"),
            "--pid-file=" + os.path.join(workdir, "mariadb.pid"), "--skip-grant-tables", "--skip-name-resolve",
            "--max-connections=2000", "--back-log=4096", "--innodb-buffer-pool-size=16M", "--skip-log-bin",
            "--log-error=" + os.path.join(workdir, "mariadb.err")]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(netns, address, port, timeout=60)
        yield proc.pid
    finally:
        stop(proc, close_stdin=False, timeout=30)


def free_port_count(netns):
    """How many local ports the namespace's ip_local_port_range holds."""
    low, high = sh("ip", "netns", "exec", netns, "cat", "/proc/sys/net/ipv4/ip_local_port_range").stdout.split()
    return int(high) - int(low) + 1


def resolve(host):
    return socket.gethostbyname(host)
