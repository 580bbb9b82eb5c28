#!/usr/bin/env bash
# Build the local Molecule test images localhost/linuxnet-tcp-test:debian11/12/13 with debootstrap.
#
# The Debian mirror is read from this machine's apt sources (tests/lib/debian.sh), so no mirror host
# name is ever written into the repository. Images are built once and reused;
# --rebuild builds them again. Usage: tests/images/build.sh [--rebuild] [debian11|debian12|debian13 ...]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/podman/env.sh
. "$here/../podman/env.sh"
# shellcheck source=tests/lib/debian.sh
. "$here/../lib/debian.sh"

repo=localhost/linuxnet-tcp-test
packages=python3,iproute2,procps
rebuild=0
wanted=()
for arg in "$@"; do
  case "$arg" in
    --rebuild) rebuild=1 ;;
    debian11|debian12|debian13) wanted+=("$arg") ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument '$arg' (expected --rebuild or debian11|debian12|debian13)" >&2; exit 2 ;;
  esac
done
[ ${#wanted[@]} -gt 0 ] || wanted=(debian11 debian12 debian13)

command -v debootstrap >/dev/null || { echo "build.sh: debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }
command -v podman >/dev/null || { echo "build.sh: podman is not installed (apt-get install podman runc)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "build.sh: debootstrap needs root" >&2; exit 1; }

mirror=$(debian_mirror)
cache=${LINUXNET_TCP_IMAGE_CACHE:-$here/../../.build/images}
mkdir -p "$cache"

for tag in "${wanted[@]}"; do
  image="$repo:$tag"
  if [ "$rebuild" -eq 0 ] && podman image exists "$image"; then
    echo "build.sh: $image exists (use --rebuild to build it again)"
    continue
  fi
  suite=$(suite_of "$tag")
  rootfs=$(mktemp -d "$cache/rootfs-$tag.XXXXXX")
  trap 'rm -rf "$rootfs"' EXIT
  echo "build.sh: debootstrap $suite (minbase + $packages) for $image"
  start=$(date +%s)
  if ! debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" >"$cache/$tag.log" 2>&1; then
    tail -n 30 "$cache/$tag.log" >&2
    echo "build.sh: debootstrap of $suite failed; full log in $cache/$tag.log" >&2
    exit 1
  fi
  # Keep the image small: package caches and lists are not needed to run tests.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
  tar --numeric-owner -C "$rootfs" -cf - . | podman import \
    --change 'CMD ["/bin/sleep", "infinity"]' \
    --change 'ENV container=podman' \
    --message "linuxnet.tcp test image ($suite minbase + $packages)" \
    - "$image" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
  echo "build.sh: built $image in $(( $(date +%s) - start ))s"
done
