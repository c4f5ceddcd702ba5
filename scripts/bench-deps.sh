#!/usr/bin/env bash
# scripts/bench-deps.sh: make sure the Debian packages `make bench` uses are
# installed (on top of scripts/deps.sh's). Fast when they are (dpkg-query
# only); as root it installs the missing ones; otherwise it prints the
# apt-get command and fails. What the benchmark does without each:
#   softhsm2, opensc, openssl, python3   required (token, pkcs11-tool, spy, report)
#   libengine-pkcs11-openssl             the libp11 column stays empty
#   nginx                                the nginx handshake rows stay empty
#   valgrind                             no instruction profile (callgrind)
#   linux-perf                           no sampled profile
set -u

PKGS=(
    softhsm2 opensc openssl python3 coreutils   # token, pkcs11-tool + pkcs11-spy, report
    libengine-pkcs11-openssl                    # the libp11 engine baseline
    nginx                                       # handshakes through nginx (2 workers)
    valgrind linux-perf                         # callgrind and perf profiles
)

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "bench-deps.sh: not a Debian system; make sure these (or your" \
        "distribution's equivalents) are installed: ${PKGS[*]}" >&2
    exit 0
fi

installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${PKGS[@]}" 2>/dev/null \
    | awk '$2 == "install" && $3 == "ok" && $4 == "installed" { print $1 }')
missing=()
for p in "${PKGS[@]}"; do
    printf '%s\n' "$installed" | grep -qx -- "$p" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "bench-deps.sh: missing Debian packages: ${missing[*]}" >&2
    echo "bench-deps.sh: install them with:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi

echo "bench-deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || { echo "bench-deps.sh: apt-get update failed" >&2; exit 1; }
apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    || { echo "bench-deps.sh: apt-get install failed" >&2; exit 1; }
# The nginx package may start the system's nginx on port 80; the benchmark
# runs its own instances on free ports and does not need that one.
