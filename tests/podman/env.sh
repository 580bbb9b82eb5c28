# shellcheck shell=bash
# Sourced by the test targets: point podman at tests/podman/containers.conf only when this host needs
# it (cgroups v1 or hybrid hierarchy, or a hard open-files limit below podman's default 1048576).
# An explicit CONTAINERS_CONF from the caller always wins.
if [ -z "${CONTAINERS_CONF:-}" ]; then
  hard_nofile=$(ulimit -Hn)
  if [ ! -f /sys/fs/cgroup/cgroup.controllers ] || { [ "$hard_nofile" != unlimited ] && [ "$hard_nofile" -lt 1048576 ]; }; then
    CONTAINERS_CONF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/containers.conf"
    export CONTAINERS_CONF
  fi
  unset hard_nofile
fi
