# shellcheck shell=bash
# Sourced by tests/images/build.sh and tests/vm/build.sh (both debootstrap Debian 11/12/13): the release each image tag
# names, and the Debian mirror of this machine's apt sources, so no mirror host name is ever written into the repository.
# tests/vm/build.sh hashes this file into the key of its images (a tag's suite is part of the recipe), so a change
# here builds the VM images again, as a change of that script does.

# The Debian suite of an image tag; an unknown tag stops the build with the ones it knows.
suite_of() {
  case "$1" in
    debian11) echo bullseye ;;
    debian12) echo bookworm ;;
    debian13) echo trixie ;;
    *) echo "${0##*/}: unknown image '$1' (expected debian11, debian12 or debian13)" >&2; exit 2 ;;
  esac
}

# First "URIs:" of a deb822 source whose Suites name a Debian release, else the first plain "deb" line; the
# -security suites are skipped (debootstrap needs the main archive). Exits with a message when there is none.
debian_mirror() {
  local uri=""
  shopt -s nullglob
  for f in /etc/apt/sources.list.d/*.sources; do
    uri=$(awk '
      /^[[:space:]]*$/ { if (uri != "" && debian && !security) { print uri; exit } uri=""; debian=0; security=0; next }
      /^URIs:/ { uri=$2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) { if ($i ~ /-security$/) security=1; if ($i ~ /^(bullseye|bookworm|trixie|stable|oldstable|testing)/) debian=1 } }
      END { if (uri != "" && debian && !security) print uri }
    ' "$f" | head -n1)
    [ -n "$uri" ] && break
  done
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' /etc/apt/sources.list)
  fi
  [ -n "$uri" ] || { echo "${0##*/}: no Debian mirror found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list" >&2; exit 1; }
  echo "${uri%/}"
}
