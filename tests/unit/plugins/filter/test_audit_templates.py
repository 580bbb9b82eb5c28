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
from ansible_collections.linuxnet.tcp.plugins.module_utils import _tcp_namespaces
from ansible_collections.linuxnet.tcp.plugins.plugin_utils import _rules

from audit_fixtures import ROOT, builtin_rules, doc

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
