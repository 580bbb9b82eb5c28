"""Host data in every audit output stays data: process names chosen to break each format, held by real processes.

In a network namespace built by the test, processes rename themselves (prctl PR_SET_NAME) to names with markup,
``|``, a newline, quotes, a backslash, entities, Markdown emphasis and a Jinja expression, and hold real sockets:
CLOSE_WAIT leaks towards their own listeners (outbound), a CLOSE_WAIT leak on accepted connections (inbound) and a
full accept queue. The audit playbook then runs for real inside the namespace (local connection: the real
tcp_audit_facts action, tcp_facts and sysctl_facts modules, the real role and report templates), writing the
JSON, Markdown and HTML reports, the node_exporter textfile and the printed summary. Each output is read back with
a parser of its own format: json, Python's html.parser, markdown-it (CommonMark with tables, what a Markdown
renderer does), promtool check metrics, and the summary lines.
"""
from __future__ import annotations

import html.parser
import json
import os
import re
import subprocess
import sys
import time

import pytest
from markdown_it import MarkdownIt

from _procs import netns as netns_of, stop
from fleet_fixtures import COLLECTIONS, ROOT, host_results, json_callback_env, parse_json_stdout, tool

pytestmark = pytest.mark.live

HERE = os.path.dirname(os.path.abspath(__file__))
COUNT = 12  # above the close_wait_leak rule's default min_count (10)
# (name, mode, port). Every name is at most 15 bytes, the kernel's limit for a task name.
HOSTILE = [
    ("<b>x</b>|y", "out", 20001),
    ("a|b\nc", "out", 20002),
    ("q\"'\\z", "out", 20003),
    ("{{ 7*7 }}", "out", 20004),
    ("x\n[CRITICAL]", "out", 20005),
    ("*_$x$_*`#", "out", 20006),
    ("</td>in|side", "in", 20007),
    ("&lt;&amp;|", "queue", 20008),
]
NAMES = [name for name, _mode, _port in HOSTILE]
VOID = {"meta", "input", "br", "hr", "img"}

if os.geteuid() != 0:
    pytest.skip("live tests need root for ip netns", allow_module_level=True)


def sh(*argv):
    return subprocess.run(list(argv), check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=dict(os.environ, LC_ALL="C"), timeout=120)


def wait_for_sockets(netns, timeout=30):
    """Until ss sees every CLOSE_WAIT socket and the full accept queue (a loaded machine delivers the FINs late)."""
    leaks = COUNT * len([mode for _name, mode, _port in HOSTILE if mode in ("out", "in")])
    deadline = time.monotonic() + timeout
    while True:
        close_wait = len(sh(*netns, "ss", "-Htan", "state", "close-wait").stdout.splitlines())
        queue = sh(*netns, "ss", "-Hltn", "sport", "= :%d" % HOSTILE[-1][2]).stdout.split()
        if close_wait == leaks and len(queue) > 2 and int(queue[1]) >= int(queue[2]):
            return
        assert time.monotonic() < deadline, "%d of %d CLOSE_WAIT sockets, queue %s" % (close_wait, leaks, queue)
        time.sleep(0.2)


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    """The namespace with the hostile processes, and one audit run inside it; everything removed afterwards."""
    work = tmp_path_factory.mktemp("hostile")
    with netns_of() as name:
        proc = None
        try:
            netns = ["ip", "netns", "exec", name]
            proc = subprocess.Popen(netns + [sys.executable, os.path.join(HERE, "_hostile.py"), json.dumps(HOSTILE),
                                             "--count", str(COUNT), "--hold", "240"],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=COLLECTIONS))
            info = json.loads(proc.stdout.readline())
            assert info["ready"], info
            wait_for_sockets(netns)
            extra = {"tcp_audit_report_dir": str(work / "report"), "tcp_audit_textfile_dir": str(work / "textfile"),
                     "tcp_audit_compare_with": ""}
            done = subprocess.run(netns + [tool("ansible-playbook"), "-i", "localhost,", "-c", "local",
                                           os.path.join(ROOT, "playbooks", "audit.yml"), "-e", json.dumps(extra)],
                                  cwd=str(work), env=json_callback_env(ANSIBLE_COLLECTIONS_PATH=COLLECTIONS),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300, check=False)
            result = parse_json_stdout(done)
            assert done.returncode == 0, json.dumps(result["stats"]) + done.stdout[-4000:] + done.stderr[-3000:]
            # The real names, as the kernel holds them (comm), for the comparison below.
            comms = {n: open("/proc/%d/comm" % pid, encoding="utf-8", errors="replace").read()[:-1]
                     for n, pid in info["pids"].items()}
            yield {"work": work, "run": result, "pids": info["pids"], "comms": comms}
        finally:
            stop(proc, timeout=60)


def read(audited, name):
    return (audited["work"] / "report" / name).read_text(encoding="utf-8")


def test_the_processes_really_have_the_hostile_names(audited):
    assert sorted(audited["comms"].values()) == sorted(NAMES)


def test_json_report_carries_the_names_unchanged(audited):
    report = json.loads(read(audited, "report.json"))
    (host,) = report["hosts"]
    leaks = {f["item"]["name"]: f for f in host["findings"] if f["id"] == "close_wait_leak"}
    assert set(leaks) == set(NAMES) - {"&lt;&amp;|"}
    for name, finding in leaks.items():
        # One program per name (same interpreter and cgroup, but each process names itself differently).
        assert finding["item"]["count"] == COUNT and finding["item"]["pids"] == [audited["pids"][name]]
        assert finding["message"].startswith("%s (" % name), finding["message"]
        assert "holds %d sockets in CLOSE_WAIT over 1 process(es) (pid %d)" % (COUNT, audited["pids"][name]) in finding["message"]
    # Never templated: the name stays "{{ 7*7 }}", nowhere "49" in its place (pids may contain 49, so look there).
    assert "{{ 7*7 }}" in leaks and not any(f["message"].startswith("49 (") or "restarting 49 " in f["remedy"]
                                            for f in leaks.values())
    # Inbound CLOSE_WAIT: the peer is a client; the message says so instead of printing "127.0.0.1:-".
    inbound = leaks["</td>in|side"]
    assert inbound["item"]["remotes"][0]["port"] is None
    assert "most of them from 127.0.0.1 " in inbound["message"] and "127.0.0.1:-" not in inbound["message"]
    if "local_port" in inbound["item"]["remotes"][0]:  # tcp_facts that report the local port of inbound sockets
        assert "to local port 20007" in inbound["message"], inbound["message"]
    (queue,) = [f for f in host["findings"] if f["id"] == "accept_queue_full"]
    assert queue["item"]["name"] == "&lt;&amp;|" and queue["item"]["port"] == 20008


class Tags(html.parser.HTMLParser):
    """Start/end tags (checked for nesting, with the end tags HTML lets a table cell or row omit) and the text, with
    entities decoded."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.text, self.tags = [], [], [], set()

    def _close_implied(self, *tags):
        while self.stack and self.stack[-1] in tags:
            self.stack.pop()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        if tag in ("td", "th"):
            self._close_implied("td", "th")
        elif tag == "tr":
            self._close_implied("td", "th", "tr")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.add(tag)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if tag == "tr":
            self._close_implied("td", "th")
        elif tag in ("tbody", "thead", "table"):
            self._close_implied("td", "th", "tr")
        if not self.stack or self.stack[-1] != tag:
            self.errors.append("</%s> closes %s" % (tag, self.stack[-1:] or "nothing"))
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def test_html_report_escapes_the_names(audited):
    source = read(audited, "report.html")
    parsed = Tags()
    parsed.feed(source)
    parsed.close()
    assert parsed.errors == [] and parsed.stack == [], parsed.errors[:5]
    text = "".join(parsed.text)
    for name in NAMES:
        assert name.replace("\n", " ") in text.replace("\n", " "), name
    # The markup in the names never became markup: no <b>, <i> or stray </td> from a name in the source.
    assert "<b>x</b>" not in source and "</td>in" not in source and "&lt;b&gt;x&lt;/b&gt;|y" in source
    assert "&amp;lt;&amp;amp;|" in source  # an entity-looking name is shown as written, not decoded
    assert "{{ 7*7 }}" in text and "49 (pid" not in text


def cells(row):
    """Cells of a Markdown table row: split on pipes that are not backslash-escaped."""
    return re.split(r"(?<!\\)\|", row.strip())[1:-1]


def test_markdown_report_tables_stay_tables(audited):
    source = read(audited, "report.md")
    # Every table row has as many cells as its header.
    header = None
    for line in source.splitlines():
        if line.startswith("|"):
            if header is None:
                header = len(cells(line))
            assert len(cells(line)) == header, line
        else:
            header = None
    # Rendered as a Markdown renderer does: the names are text in the cells, never tags or emphasis.
    rendered = MarkdownIt("commonmark").enable("table").render(source)
    parsed = Tags()
    parsed.feed(rendered)
    parsed.close()
    assert parsed.errors == [] and parsed.stack == [], parsed.errors[:5]
    assert parsed.tags <= {"h1", "h2", "h3", "p", "strong", "em", "code", "table", "thead", "tbody", "tr", "th", "td",
                           "ul", "li", "a"}, parsed.tags
    text = "".join(parsed.text)
    for name in NAMES:
        assert name.replace("\n", "?") in text, name
    # Emphasis markers of a name stay literal: "*_$x$_*" is not rendered as <em>.
    assert "<em>_$x$_</em>" not in rendered and "*_$x$_*`#" in text


def test_markdown_rendered_tables_have_the_same_cells_per_row(audited):
    rendered = MarkdownIt("commonmark").enable("table").render(read(audited, "report.md"))
    tables = re.findall(r"<table>(.*?)</table>", rendered, re.S)
    assert tables, "report.md renders no table at all:\n" + rendered[:2000]
    for table in tables:
        widths = {len(re.findall(r"<t[hd][ >]", row)) for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)}
        assert len(widths) == 1, table[:2000]


def test_prometheus_textfile_parses_and_keeps_the_names(audited):
    path = audited["work"] / "textfile" / "linuxnet_tcp.prom"
    with open(path, encoding="utf-8") as handle:
        check = subprocess.run(["promtool", "check", "metrics"], stdin=handle, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=60, check=False)
    assert check.returncode == 0 and check.stdout.strip() == "", check.stdout
    text = path.read_text(encoding="utf-8")
    labels = re.findall(r'^linuxnet_tcp_close_wait_process_sockets\{process="((?:[^"\\]|\\.)*)",', text, re.M)
    unescaped = [re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), label) for label in labels]
    assert sorted(unescaped) == sorted(set(NAMES) - {"&lt;&amp;|"})
    assert re.search(r'^linuxnet_tcp_listener_queue\{address="127.0.0.1",port="20008",process="&lt;&amp;\|"\} \d+$',
                     text, re.M)


def test_printed_summary_shows_one_line_per_line(audited):
    (summary,) = [res["msg"] for res in host_results(audited["run"], "Show the fleet summary and where the report is").values()
                  if not res.get("skipped")]
    assert all("\n" not in line for line in summary)
    # A newline in a name cannot fake a line of its own ("[CRITICAL]" at the start of a line).
    assert not [line for line in summary if line.lstrip().startswith("[CRITICAL]")]
    joined = "\n".join(summary)
    assert "x?[CRITICAL] (" in joined and "a|b?c (" in joined and "{{ 7*7 }} (" in joined
