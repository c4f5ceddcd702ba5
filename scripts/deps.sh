#!/usr/bin/env bash
# scripts/deps.sh: make sure the Debian packages p11id needs to build and test
# are installed. Fast when they are (dpkg-query only); as root it installs the
# missing ones; otherwise it prints the apt-get command and fails.
set -u

PKGS=(
    autoconf automake libtool pkg-config make gcc       # build
    libssl-dev openssl libp11-kit-dev p11-kit           # OpenSSL 3, p11-kit
    p11-kit-modules libsqlite3-dev                      # modules, CA ledger
    softhsm2 opensc                                     # test token, pkcs11-tool, pkcs11-spy
    libnss3 libnss3-tools socat iproute2 util-linux     # NSS softokn, certutil; remote tokens
    libengine-pkcs11-openssl gnutls-bin                 # interoperability tests
    python3 curl procps                                 # test helpers
    nginx apache2-bin python3-requests                  # application tests (tests/apps)
    pcscd vsmartcard-vpcd libcacard-dev libnss3-tools   # virtual smart card (tests/tokens, card)
    iproute2 util-linux
    gdb valgrind                                        # PIN dumps, make memcheck (tests/security)
    clang-14 libclang-rt-14-dev                         # make fuzz (libFuzzer runtime)
    libtpm2-pkcs11-1 libtpm2-pkcs11-tools swtpm         # tpm2 token tests (tests/tokens):
    swtpm-tools tpm2-tools tpm2-abrmd                   #   tpm2-pkcs11 on a software TPM
    libtss2-tcti-swtpm0 libtss2-tcti-tabrmd0 dbus-daemon
)

exec bash "$(dirname "$0")/install-pkgs.sh" deps.sh "${PKGS[@]}"
