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
# The nginx package may start the system's nginx on port 80; the benchmark
# runs its own instances on free ports and does not need that one.
set -u

PKGS=(
    softhsm2 opensc openssl python3 coreutils   # token, pkcs11-tool + pkcs11-spy, report
    libengine-pkcs11-openssl                    # the libp11 engine baseline
    nginx                                       # handshakes through nginx (2 workers)
    valgrind linux-perf                         # callgrind and perf profiles
)

exec bash "$(dirname "$0")/install-pkgs.sh" bench-deps.sh "${PKGS[@]}"
