# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Sphinx configuration of `make docs`: the HTML reference of linuxnet.tcp (modules, filters, roles).

`antsibull-docs collection` writes the RST pages from the collection's own DOCUMENTATION, EXAMPLES and RETURN
blocks and role argument specs; this file renders them with the Ansible theme, as `antsibull-docs
sphinx-init` would set it up, with one difference: the build is offline. antsibull-docs links a few pages of
the Ansible documentation (common return values, configuration settings, modules of other collections named
in `seealso`); online, intersphinx resolves those through docs.ansible.com's inventory, which cannot be
fetched here. Those labels are linked by URL instead (`_ansible_docsite_link`). Every other reference must
resolve: warnings are errors (`sphinx-build -W`), and `nitpicky` reports any that does not.
"""
from __future__ import annotations

import re

from docutils import nodes

project = "linuxnet.tcp"
copyright = "linuxnet.tcp maintainers"  # pylint: disable=redefined-builtin
title = "linuxnet.tcp collection documentation"
html_short_title = "linuxnet.tcp"

extensions = ["sphinx_antsibull_ext"]
pygments_style = "ansible"
highlight_language = "YAML+Jinja"

html_theme = "sphinx_ansible_theme"
html_show_sphinx = False
html_use_smartypants = True
html_use_modindex = False
html_use_index = False
html_copy_source = False
display_version = False

default_role = "any"
nitpicky = True

ANSIBLE_DOCSITE = "https://docs.ansible.com/projects/ansible/devel/"
# Labels of the Ansible documentation that antsibull-docs' templates use.
ANSIBLE_DOCSITE_LABELS = {
    "common_return_values": ("reference_appendices/common_return_values.html", "Return Values"),
    "ansible_configuration_settings": ("reference_appendices/config.html", "Ansible Configuration Settings"),
    # The `action` attribute of an action plugin's documentation (tcp_audit_facts) links the plugin guide.
    "action_plugins": ("plugins/action.html", "Action plugins"),
}
# Plugin pages of other collections, e.g. ansible_collections.ansible.posix.sysctl_module.
OTHER_COLLECTION_PLUGIN = re.compile(r"^ansible_collections\.(?!linuxnet\.tcp\.)(\w+)\.(\w+)\.(\w+)$")


def _ansible_docsite_link(app, env, node, contnode):  # pylint: disable=unused-argument
    """Resolve a :ref: to a page of the Ansible documentation; leave every other missing label alone."""
    if node.get("refdomain") != "std" or node.get("reftype") != "ref":
        return None
    target = node["reftarget"]
    if target in ANSIBLE_DOCSITE_LABELS:
        path, default_title = ANSIBLE_DOCSITE_LABELS[target]
    else:
        match = OTHER_COLLECTION_PLUGIN.match(target)
        if not match:
            return None
        namespace, name, page = match.groups()
        path, default_title = "collections/%s/%s/%s.html" % (namespace, name, page), target
    text = contnode if node.get("refexplicit") else nodes.inline(default_title, default_title)
    reference = nodes.reference("", "", internal=False, refuri=ANSIBLE_DOCSITE + path)
    reference += text
    return reference


def setup(app):
    app.connect("missing-reference", _ansible_docsite_link)
