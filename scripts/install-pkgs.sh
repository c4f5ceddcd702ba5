#!/usr/bin/env bash
# scripts/install-pkgs.sh NAME PKG...: the Debian package check that
# scripts/deps.sh and scripts/bench-deps.sh (NAME, for messages) share.
# Fast when every PKG is installed (one dpkg-query); as root it installs the
# missing ones; otherwise it prints the apt-get command and fails. On a
# system without dpkg it names the packages and succeeds.
set -u

name=$1
shift
PKGS=("$@")

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "$name: not a Debian system; make sure these (or your distribution's" \
        "equivalents) are installed: ${PKGS[*]}" >&2
    exit 0
fi

# One dpkg-query for all: "<package> <status>" for each known package.
installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${PKGS[@]}" 2>/dev/null \
    | awk '$2 == "install" && $3 == "ok" && $4 == "installed" { print $1 }')
missing=()
for p in "${PKGS[@]}"; do
    printf '%s\n' "$installed" | grep -qx -- "$p" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "$name: missing Debian packages: ${missing[*]}" >&2
    echo "$name: install them with:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi

echo "$name: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || { echo "$name: apt-get update failed" >&2; exit 1; }
apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    || { echo "$name: apt-get install failed" >&2; exit 1; }
