# linuxnet.tcp developer and user entry points. `make demo` and `make test` are the two commands
# the README's Quick start promises; everything else is a building block of those two.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
BUILD := $(CURDIR)/.build
COLLECTIONS := $(BUILD)/collections
VERSION := $(shell sed -n 's/^version: *//p' galaxy.yml)
# Debian packages the test suite drives (installed by `make test` when running as root). nginx, mariadb-server,
# hping3, wrk and apache2-utils (ab) are the real software of tests/integration/test_diagnosis_real_software.py; the
# tests start their own instances, with their own configuration, in network namespaces of their own, so a default
# service a package may start on the host is neither used nor in the way.
SYSTEM_PACKAGES := podman runc debootstrap iproute2 shellcheck rsync prometheus prometheus-node-exporter chromium strace \
                   nginx mariadb-server hping3 wrk apache2-utils \
                   qemu-system-x86 qemu-utils openssh-client e2fsprogs

export PATH := $(BIN):$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export ANSIBLE_NOCOLOR := 1
export PY_COLORS := 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help demo test bench unit integration sanity lint changelog-lint build molecule images vm-images vm \
        system-deps venv test-deps lock link docs clean matrix matrix-deps

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

# Every Python environment of the project is installed at the versions requirements.lock fixes (`make lock`
# re-resolves it from the ranges in requirements*.txt); tests/lock/pylock.py makes .venv anew when the lock or
# the interpreter changed, so nothing stale survives, and tests/sanity/test_lock.py compares .venv with the lock.
LOCK := requirements.lock
PYLOCK := $(PYTHON) tests/lock/pylock.py

$(BIN)/ansible-playbook: requirements.txt $(LOCK)
	@# Debian and Ubuntu ship venv support separately (python3-venv); install it when root.
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || { [ "$$(id -u)" -eq 0 ] && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; } || \
	  { echo "Python venv support is missing: apt-get install python3-venv"; exit 1; }
	@$(PYLOCK) install --python $(PYTHON) --venv $(VENV) --lock $(LOCK) -r requirements.txt
	@touch $@

venv: $(BIN)/ansible-playbook ## Create .venv with the controller requirements (at the lock's versions)

$(VENV)/.test-deps: requirements-test.txt requirements-docs.txt requirements.txt $(LOCK) $(BIN)/ansible-playbook
	$(PYLOCK) install --python $(PYTHON) --venv $(VENV) --lock $(LOCK) -r requirements-test.txt
	touch $@

lock: ## Re-resolve requirements.lock and the matrix's locks from their ranges (then run `make test`)
	$(PYLOCK) resolve --python $(PYTHON) --out $(LOCK) -r requirements-test.txt
	$(PYTHON) tests/matrix/matrix.py lock

# The compatibility matrix (tests/matrix/matrix.py): a venv per ansible-core minor 2.16 to 2.21 on one of its
# controller Pythons, and one for the target-side unit tests on Python 3.6, under .build/matrix at the versions of
# tests/matrix/*.lock (made again only when a lock's hash or the interpreter changes). The interpreters come from
# pyenv; a missing one stops here with its name.
matrix-deps: ## Install the matrix's venvs (ansible-core 2.16 to 2.21) at their locks
	$(PYTHON) tests/matrix/matrix.py install

test-deps: $(VENV)/.test-deps ## Install the test requirements into .venv at the lock's versions

link: ## Expose this checkout as ansible_collections/linuxnet/tcp for tests
	@mkdir -p $(COLLECTIONS)/ansible_collections/linuxnet
	@ln -sfn ../../../.. $(COLLECTIONS)/ansible_collections/linuxnet/tcp

system-deps: ## As root, install the Debian packages the tests need when missing
	@missing=""; for p in $(SYSTEM_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" -ne 0 ]; then echo "missing Debian packages:$$missing (run as root or install them)"; exit 1; fi; \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

images: system-deps ## Build the local Debian 11/12/13 test images (REBUILD=1 to build again)
	tests/images/build.sh $(if $(REBUILD),--rebuild)

# The Debian 11/12/13 VM images of tests/vm (debootstrap, kernel and initramfs taken out, a raw ext4 disk), cached under
# .build/vm/<tag>-<hash of the recipe>: built once, again when tests/vm/build.sh, tests/lib/debian.sh or tests/vm/guest/ change.
vm-images: system-deps ## Build the VM images of tests/vm when missing or their recipe changed (REBUILD=1 to build again)
	tests/vm/build.sh $(if $(REBUILD),--rebuild)

# The demo's target is this machine: modules run with the system Python (standard library only), or
# with the venv's Python where there is none, rather than whatever interpreter discovery finds first.
DEMO_PYTHON := $(firstword $(wildcard /usr/bin/python3) $(BIN)/python)

# The demo installs the tarball it builds into .venv/collections, as a user installs a release, and writes
# .venv/collection.env, which puts a shell on that install (`source .venv/collection.env`: the venv's commands first
# on PATH, ANSIBLE_COLLECTIONS_PATH at the install). The tests instead run this checkout itself, linked at
# $(COLLECTIONS): edits count without a rebuild. Two places on purpose: neither shadows the other (a copy in the
# venv's site-packages would be found by every ansible command of the venv, the tests' included). It prints the play
# and nothing else: the steps before it are silent unless they fail.
DEMO_COLLECTIONS := $(VENV)/collections

demo: venv ## Install the collection into .venv and audit this machine
	@$(BIN)/ansible-galaxy collection build --force --output-path $(BUILD)/dist . >/dev/null
	@ANSIBLE_COLLECTIONS_PATH=$(DEMO_COLLECTIONS) $(BIN)/ansible-galaxy collection install --force \
	  -p $(DEMO_COLLECTIONS) $(BUILD)/dist/linuxnet-tcp-$(VERSION).tar.gz >/dev/null
	@printf '%s\n' '# Written by make demo: `source` it for a shell with the venv and the installed linuxnet.tcp.' \
	  '. "$(VENV)/bin/activate"' 'export ANSIBLE_COLLECTIONS_PATH="$(DEMO_COLLECTIONS)"' > $(VENV)/collection.env
	@ANSIBLE_COLLECTIONS_PATH=$(DEMO_COLLECTIONS) $(BIN)/ansible-playbook \
	  -i localhost, -c local -e ansible_python_interpreter=$(DEMO_PYTHON) linuxnet.tcp.audit

test: test-deps matrix-deps system-deps link images vm-images ## Install what the tests need, build images, run the whole suite
	source tests/podman/env.sh && $(BIN)/python -m pytest -v -p no:cacheprovider --durations=40

unit: test-deps link ## Unit tests only
	$(BIN)/python -m pytest -q tests/unit

integration: test-deps link ## Live tests in network namespaces (root)
	$(BIN)/python -m pytest -v tests/integration -m live

sanity: test-deps ## ansible-test sanity, ansible-lint, changelog lint, build + ansible-doc, Galaxy import, docs lint + build
	$(BIN)/python -m pytest -v tests/sanity

matrix: test-deps matrix-deps link ## The compatibility matrix only: sanity, unit tests and a live smoke run per ansible-core (root)
	$(BIN)/python -m pytest -v tests/matrix

vm: test-deps system-deps link vm-images ## The VM tests only: Debian 11/12/13 under qemu, tune, reboot, restore (VMS=debian12)
	$(if $(VMS),LINUXNET_TCP_VMS=$(VMS)) $(BIN)/python -m pytest -v tests/vm

molecule: test-deps system-deps link images ## All Molecule scenarios (S=name for one)
	source tests/podman/env.sh && $(BIN)/python -m pytest -v tests/integration/test_molecule.py $(if $(S),-k "$(S)")

# The HTML reference of the modules, filters and roles, from their DOCUMENTATION/EXAMPLES/RETURN blocks and
# argument specs: antsibull-docs writes the RST pages, Sphinx renders them (docs/sphinx/conf.py). Offline,
# and strict: a documentation error or a broken reference fails the build. tests/sanity builds it too.
DOCS ?= $(BUILD)/docs

docs: test-deps link ## Build the HTML reference into .build/docs/html (open index.html)
	rm -rf $(DOCS)/rst $(DOCS)/html $(DOCS)/doctrees
	@# antsibull-docs wants its output directory writable by its owner only.
	mkdir -p $(DOCS)/rst && chmod og-w $(DOCS)/rst
	$(BIN)/antsibull-docs collection --use-current --squash-hierarchy --fail-on-error \
	  --dest-dir $(DOCS)/rst linuxnet.tcp
	$(BIN)/sphinx-build -b html -q -W --keep-going -c docs/sphinx -d $(DOCS)/doctrees $(DOCS)/rst $(DOCS)/html
	@echo "HTML reference: $(DOCS)/html/index.html"

bench: test-deps link ## Benchmarks (not part of `make test`)
	@for b in benchmarks/*/run.py; do echo "== $$b"; PYTHONPATH=$(COLLECTIONS) $(BIN)/python $$b; done

clean: ## Remove build output (keeps .venv and images)
	rm -rf $(BUILD)/dist $(BUILD)/sanity $(BUILD)/install $(BUILD)/docs $(BUILD)/matrix/work tests/output
