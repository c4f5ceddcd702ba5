#!/usr/bin/env bash
# t_registered_modules.sh: PKCS#11 modules registered with p11-kit (*.module
# files: module:, critical:, x-init-reserved:) are found by name (module-name=
# in URIs, pkcs11-module-name in the provider, the tool) as well as by path;
# registered modules that cannot load or initialise (critical: no) do not
# hide the others; an unknown name gets an error that names the registered
# ones; a critical module that cannot load stops the search with its reason.
#
# p11-kit reads its registrations from fixed directories, so the test runs
# in a private mount namespace with its own directory bind-mounted over
# /usr/share/p11-kit/modules (and /etc/pkcs11): the machine's registrations
# (opensc, tpm2, the trust module) never load here.
set -u
if [ -z "${P11ID_REG_MODDIR:-}" ]; then
    ns=(unshare -m)
    [ "$(id -u)" -eq 0 ] || ns=(unshare -r -m)
    if ! "${ns[@]}" true 2>/dev/null; then
        echo "1..0 # SKIP cannot make a private mount namespace (${ns[*]})"
        exit 0
    fi
    d=$(mktemp -d "${TMPDIR:-/tmp}/p11id-registered.XXXXXX") || exit 1
    mkdir -p "$d/modules" "$d/etc-pkcs11"
    P11ID_REG_MODDIR=$d/modules "${ns[@]}" bash -c '
        mount --bind "$P11ID_REG_MODDIR" /usr/share/p11-kit/modules || exit 99
        if [ -d /etc/pkcs11 ]; then
            mount --bind "${P11ID_REG_MODDIR%/modules}/etc-pkcs11" /etc/pkcs11 || exit 99
        fi
        export P11ID_REG_MODDIR HOME=${P11ID_REG_MODDIR%/modules}
        exec bash "$@"' bash "$0" "$@"
    rc=$?
    rm -rf -- "$d"
    [ "$rc" -eq 99 ] && echo "Bail out! cannot bind-mount the private module directory"
    exit "$rc"
fi

# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
require_cmd openssl pkcs11-tool softhsm2-util p11-kit python3
[ -x "${P11ID_TOOL:-}" ] || { echo "1..0 # SKIP p11id tool not built"; exit 0; }
t_setup
M=$P11ID_REG_MODDIR
NSS_SOFTOKN=/usr/lib/x86_64-linux-gnu/libsoftokn3.so
tool() { run "$P11ID_TOOL" "$@"; }

key_gen k ec256 || bail_out "cannot generate a key on the token"
printf 'data\n' >"$T/d.txt"

# sign_check DESC CONF URI: openssl signs with CONF and URI; the signature
# verifies with the key's public half (two points).
sign_check()
{
    local desc=$1 conf=$2 uri=$3
    OPENSSL_CONF=$conf run openssl dgst -sha256 -sign "$uri" -out "$T/s.sig" "$T/d.txt"
    run_ok "$desc: signs"
    ossl_sw dgst -sha256 -verify "$(key_pub k)" -signature "$T/s.sig" "$T/d.txt"
    run_ok_like '^Verified OK' "$desc: the signature verifies"
}

printf 'module: %s\n' "$SOFTHSM_MODULE" >"$M/p11id-soft.module"

p11kit_list()
{
    local ASAN_PRELOAD=
    OPENSSL_CONF=$T/default-only.cnf run p11-kit list-modules
}

# --- isolation ----------------------------------------------------------------------
p11kit_list  # p11-kit's own view, without p11id or the ASan runtime
run_ok_like '^p11id-soft: ' "p11-kit sees our registration"
file_unlike "$RUN_OUT" '^(opensc-pkcs11|p11-kit-trust|softhsm2|tpm2_pkcs11|tpm2-pkcs11):' \
    "and none of the machine's"

# --- by name ----------------------------------------------------------------------
write_openssl_conf "$T/byname.cnf" "pkcs11-module-path=" "pkcs11-module-name=p11id-soft"
sign_check "pkcs11-module-name = p11id-soft" "$T/byname.cnf" "$(key_uri k)"
OPENSSL_CONF="$T/default-only.cnf" run openssl dgst -sha256 \
    -provider-path "$P11ID_PROVIDER_DIR" -provider p11id -provider default \
    -sign "$(key_uri k)?module-name=p11id-soft&pin-value=$PIN" -out "$T/u.sig" "$T/d.txt"
run_ok "-provider p11id alone: a URI with module-name=p11id-soft signs"
tool tokens 'pkcs11:?module-name=p11id-soft'
run_ok_like "token \"$TOKEN\"" "p11id tokens 'pkcs11:?module-name=p11id-soft' lists the token"
tool objects "pkcs11:token=$TOKEN?module-name=p11id-soft"
run_ok_like '^public-key pkcs11:.*object=k;' "p11id objects by module name lists the key"

# --- by path, the same registered module ---------------------------------------------
OPENSSL_CONF="$T/default-only.cnf" run openssl dgst -sha256 \
    -provider-path "$P11ID_PROVIDER_DIR" -provider p11id -provider default \
    -sign "$(key_uri k)?module-path=$SOFTHSM_MODULE&pin-value=$PIN" -out "$T/p.sig" "$T/d.txt"
run_ok "and by path (module-path=) as before"

# --- modules that fail do not hide the others (critical: no) ----------------------
printf 'module: /nonexistent/libp11id-nope.so\ncritical: no\n' >"$M/broken.module"
if [ -f "$NSS_SOFTOKN" ]; then
    # loads, but C_Initialize refuses it: no init string (x-init-reserved).
    printf 'module: %s\ncritical: no\n' "$NSS_SOFTOKN" >"$M/nss-noargs.module"
fi
p11kit_list  # p11-kit's own view, without p11id or the ASan runtime
diag "p11-kit list-modules with the failing registrations: exit $RUN_RC"
write_openssl_conf "$T/all.cnf" "pkcs11-module-path="
sign_check "no module configured: every registered module, two of them failing" \
    "$T/all.cnf" "$(key_uri k)"
tool tokens
run_ok_like "token \"$TOKEN\"" "p11id tokens with failing registrations still lists the token"
if [ -f "$NSS_SOFTOKN" ]; then
    # tokens is the diagnostic listing: it reports the module that did not
    # initialise, by path, and goes on.
    file_like "$RUN_ERR" 'cannot initialise PKCS#11 module .*libsoftokn3\.so' \
        "p11id tokens names the registered module that failed and goes on"
else
    skip "no NSS softokn" "p11id tokens names the registered module that failed"
fi
if [ -f "$NSS_SOFTOKN" ]; then
    tool tokens 'pkcs11:?module-name=nss-noargs'
    run_fails "asked for by name, the module that fails C_Initialize fails cleanly"
    run_err_like 'init string.*pkcs11-module-init-args.*x-init-reserved' \
        "and the error says which init string it may want and where it goes"
    printf 'module: %s\ncritical: no\nx-init-reserved: configdir=%s certPrefix= keyPrefix= secmod=secmod.db flags=noModDB,readOnly,noCertDB,noKeyDB\n' \
        "$NSS_SOFTOKN" "$T/none" >"$M/nss-noargs.module"
    tool tokens 'pkcs11:?module-name=nss-noargs'
    run_ok_like 'token "NSS Generic Crypto Services"' \
        "with x-init-reserved in its registration the same module initialises"
else
    skip_n 3 "no NSS softokn ($NSS_SOFTOKN)" "a registered module failing C_Initialize"
fi

# --- an unknown name ----------------------------------------------------------------------
write_openssl_conf "$T/unknown.cnf" "pkcs11-module-path=" "pkcs11-module-name=nope"
OPENSSL_CONF=$T/unknown.cnf run openssl dgst -sha256 -sign "$(key_uri k)" \
    -out "$T/x.sig" "$T/d.txt"
run_fails "pkcs11-module-name = nope: clean failure"
run_err_like 'no PKCS#11 module named "nope" is registered with p11-kit; registered: .*"p11id-soft"' \
    "the provider's error names the registered modules"
tool tokens 'pkcs11:?module-name=nope'
run_fails "p11id tokens with an unknown module name fails"
run_err_like 'registered: .*"p11id-soft"' "and lists the registered modules"

# --- a critical module that cannot load --------------------------------------------------
printf 'module: /nonexistent/libp11id-nope.so\ncritical: yes\n' >"$M/broken.module"
OPENSSL_CONF=$T/all.cnf run openssl dgst -sha256 -sign "$(key_uri k)" \
    -out "$T/c.sig" "$T/d.txt"
run_fails "a critical module that cannot load: clean failure"
run_err_like 'registered with p11-kit.*(nope|broken|load)' \
    "the error gives p11-kit's reason"
write_openssl_conf "$T/path.cnf"
sign_check "the module by path is not affected" "$T/path.cnf" "$(key_uri k)"

done_testing
