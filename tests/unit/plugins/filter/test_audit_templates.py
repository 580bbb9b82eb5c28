# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The audit role's report templates (fleet.txt, report.md, report.html) rendered by Ansible's templating from a
tcp_fleet_summary report: what they list per rule and per container namespace."""
from __future__ import annotations

import os
import re

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader
from ansible.template import Templar
from ansible.utils.collection_loader import AnsibleCollectionConfig

from ansible_collections.linuxnet.tcp.plugins.filter import tcp_fleet_summary as plugin
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp import all_namespaces as _tcp_namespaces
from ansible_collections.linuxnet.tcp.plugins.plugin_utils import _rules

from ansible_collections.linuxnet.tcp.tests.unit.plugins.filter.audit_fixtures import ROOT, builtin_rules, doc

try:
    from ansible.template import trust_as_template
except ImportError:  # ansible-core 2.18 and older trust every template string
    def trust_as_template(text):
        return text

TEMPLATES = os.path.join(ROOT, "roles", "audit", "templates")
INODE = 4026532301


def render(name, report):
    if not AnsibleCollectionConfig.collection_finder:
        init_plugin_loader()  # the builtin filters (regex_replace, to_json, ...) load through it
    variables = {"__tcp_audit_doc": dict(report, generated="2026-12-02T10:00:00Z", ansible_version="2.19.0", fail_on="never"),
                 "tcp_audit_report": False, "tcp_audit_report_formats": ["json"], "ansible_check_mode": False}
    with open(os.path.join(TEMPLATES, name), encoding="utf-8") as handle:
        source = trust_as_template(handle.read())
    # As the template action renders a file (and the template lookup the same way): no backslash escaping, trim_blocks.
    return str(Templar(loader=DataLoader(), variables=variables).template(source, escape_backslashes=False,
                                                                          overrides={"trim_blocks": True}))


def leak(magnitude, name="app"):
    return {"id": "close_wait_leak", "severity": "warning", "title": "CLOSE_WAIT leak", "message": "%s leaks %d" % (name, magnitude),
            "remedy": "close the sockets", "item": {"name": name, "user": "root", "count": magnitude}}


@pytest.fixture(scope="module")
def repeated():
    """Seven hosts with a CLOSE_WAIT leak, the first with four (four processes), report_top 8: the rule's eight worst
    findings are h1's four and h2 to h5."""
    data = {}
    for number in range(1, 8):
        data["h%d" % number] = dict(doc("clean"), findings=[leak(90 - 10 * n, "app%d" % n) for n in range(4)] if number == 1
                                    else [leak(60 - 10 * number)])
    return plugin.tcp_fleet_summary(data, report_top=8)


def test_worst_hosts_are_each_named_once_and_the_rest_counted(repeated):
    line = next(line for line in render("fleet.txt.j2", repeated).splitlines() if "(close_wait_leak)" in line)
    assert line.endswith("(close_wait_leak): 7 host(s): h1, h2, h3, h4, h5 and 2 more"), line
    markdown = render("report.md.j2", repeated)
    assert re.search(r"^\| warning \| CLOSE_WAIT leak \(`close_wait_leak`\) \| 7 \| h1 \(90\), h2 \(40\), h3 \(30\), h4 \(20\), "
                     r"h5 \(10\) and 2 more \|", markdown, re.M), markdown
    page = render("report.html.j2", repeated)
    assert '<span class="small">h1 (90), h2 (40), h3 (30) +4</span>' in page
    # The per-finding table has eight rows of five hosts: the list of every host follows, so h6 and h7 are named.
    assert "<p class=\"small\">All 7 hosts: h1, h2, h3, h4, h5, h6, h7</p>" in page


def test_container_leaders_of_two_hosts_sharing_an_inode():
    """Namespace inode numbers repeat across hosts: each host's namespace has its row in the leaders table."""
    data = {}
    for name in ("node-1", "node-2"):
        host = doc("clean")
        tcp = doc("storm")["tcp"]
        entry = {"inode": INODE, "path": "/proc/4242/ns/net", "netns_name": None}
        owner = {"processes": [{"pid": 4242, "comm": "java", "user": "root"}], "process_count": 1, "runtime": "podman",
                 "container_id": "ab" * 32, "container_name": "shop-api", "pod_uid": None, "pod_name": None,
                 "pod_namespace": None, "cgroup": None}
        host["tcp"]["namespaces"] = [_tcp_namespaces.compact(tcp, entry, owner, {"net.ipv4.tcp_tw_reuse": "0"})]
        host["findings"] = _rules.diagnose(host, builtin_rules())
        data[name] = host
    page = render("report.html.j2", plugin.tcp_fleet_summary(data))
    start = page.index("<th>Namespace</th><th class=\"n\">TIME_WAIT</th>")
    table = page[start:page.index("</table>", start)]
    assert re.findall(r"<tr><td>([^<]*)</td><td>podman shop-api</td>", table) == ["node-1", "node-2"]


def with_states(name, **counts):
    """A recorded host document whose socket counts are ``counts`` (the rest 0)."""
    host = doc(name)
    states = {key: 0 for key in host["tcp"]["states"] if key not in ("total", "by_family")}
    states.update(counts)
    host["tcp"]["states"] = dict(states, total=sum(counts.values()), by_family=host["tcp"]["states"].get("by_family"))
    host["findings"] = _rules.diagnose(host, builtin_rules())
    return host


def test_headline_counts_the_containers_sockets():
    """With namespaces=all facts the headline, the cards and the Markdown count every namespace's sockets, as the
    findings under them do; without, they read as before."""
    host = with_states("clean", ESTABLISHED=1)
    namespace = _tcp_namespaces.compact(doc("storm")["tcp"], {"inode": INODE, "path": "/proc/4242/ns/net", "netns_name": None},
                                        {"processes": [], "process_count": 0, "runtime": "podman", "container_id": "ab" * 32,
                                         "container_name": "shop-api", "pod_uid": None, "pod_name": None,
                                         "pod_namespace": None, "cgroup": None}, {})
    host["tcp"]["namespaces"] = [namespace]
    inside = namespace["states"]
    report = plugin.tcp_fleet_summary({"node-1": host})
    total, time_wait = 1 + inside["total"], inside["TIME_WAIT"]
    assert report["fleet"]["sockets"]["total"] == total and report["fleet"]["states"]["total"] == 1
    first = render("fleet.txt.j2", report).splitlines()[0]
    assert first.startswith("Fleet: 1 host(s), %d TCP sockets (1 in the hosts' own namespaces, %d in 1 container "
                            "namespace(s)) (TIME_WAIT %d, CLOSE_WAIT %d," % (total, inside["total"], time_wait,
                                                                             inside["CLOSE_WAIT"])), first
    page = render("report.html.j2", report)
    assert '<div class="card"><b>%d</b><span>TCP sockets, %d of them in 1 container namespace(s)</span></div>' % (
        total, inside["total"]) in page
    assert '<div class="card"><b>%d</b><span>TIME_WAIT</span></div>' % time_wait in page
    assert "%d TCP sockets (1 in the hosts' own network namespaces, %d in 1 container namespace(s);" % (
        total, inside["total"]) in render("report.md.j2", report)
    plain_host = plugin.tcp_fleet_summary({"web1": with_states("clean", ESTABLISHED=3, TIME_WAIT=2)})
    assert render("fleet.txt.j2", plain_host).startswith("Fleet: 1 host(s), 5 TCP sockets (TIME_WAIT 2, CLOSE_WAIT 0,")


def test_each_fix_is_shown_without_a_click_and_printed():
    """The fix is in the <summary> line of its rule (visible closed, so in a screenshot and on paper), once; print
    styles and a beforeprint hook open the rest."""
    storm = doc("storm")
    storm["findings"] = _rules.diagnose(storm, builtin_rules())
    page = render("report.html.j2", plugin.tcp_fleet_summary({"db1": storm, "db2": storm}))
    rules = re.findall(r'<details class="item"><summary class="row">(.*?)</summary>', page, re.S)
    assert rules and all('<span class="fix"><b>Fix' in summary for summary in rules[:3]), rules[:1]
    assert page.count("An application bug that no sysctl fixes") == 1
    assert "@media print" in page and "details>*{display:block}" in page and '"beforeprint"' in page


def bars(page):
    """Per chart row: the host label and its rects as (fill, x, width)."""
    chart = page[page.index('aria-label="TCP sockets per host"'):page.index("</svg>")]
    rows = []
    for group in re.findall(r'<g transform="translate\(0,[0-9.]+\)">(.*?)</g>', chart, re.S):
        label = re.search(r'text-anchor="end"[^>]*>([^<]*)</text>', group).group(1)
        rects = [(fill, float(x), float(width)) for x, width, fill in
                 re.findall(r'<rect x="([0-9.]+)" y="2" width="([0-9.]+)" height="13" fill="([^"]+)"', group)]
        rows.append((label, rects))
    return rows


def test_sockets_per_host_chart_is_honest_in_either_scale():
    """Log scale (totals differ more than 30-fold): one bar for the total, and the state split in a separate strip
    whose parts are proportional (150 CLOSE_WAIT and 150 FIN_WAIT2 get equal halves). Linear scale: the bar itself
    is split in proportion."""
    log_page = render("report.html.j2", plugin.tcp_fleet_summary({
        "big": with_states("clean", ESTABLISHED=20000, TIME_WAIT=10000),
        "small": with_states("clean", CLOSE_WAIT=150, FIN_WAIT2=150)}))
    assert "bars: the total on one logarithmic scale for every row; strips: the share of each state" in log_page
    rows = dict(bars(log_page))
    (total, *strip) = rows["small"]
    assert total[0] == "#78909c" and len(strip) == 2
    assert abs(strip[0][2] - strip[1][2]) < 0.05 and abs(strip[0][2] + strip[1][2] - 150) < 0.1, strip
    assert strip[1][1] == round(strip[0][1] + strip[0][2], 1) and strip[0][1] > total[1] + total[2]
    (total, *strip) = rows["big"]
    assert abs(strip[0][2] - 2 * strip[1][2]) < 0.1, strip  # ESTABLISHED 20000, TIME_WAIT 10000
    lin_page = render("report.html.j2", plugin.tcp_fleet_summary({
        "a": with_states("clean", ESTABLISHED=300, TIME_WAIT=100), "b": with_states("clean", CLOSE_WAIT=150, FIN_WAIT2=150)}))
    assert "one linear scale for every row, colours split each bar by state" in lin_page
    rows = dict(bars(lin_page))
    assert [round(width, 1) for _fill, _x, width in rows["a"]] == [645.0, 215.0]      # 860 px for the 400 sockets
    assert [round(width, 1) for _fill, _x, width in rows["b"]] == [322.5, 322.5]      # 300 of 400: 645 px in halves
