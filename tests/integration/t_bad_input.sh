#!/usr/bin/env bash
# t_bad_input.sh: wrong input fails cleanly (non-zero exit below 124, no crash)
# with a message that says what is wrong: malformed and unknown URI parts, no
# or several matching keys, a wrong PIN (tried exactly once, counted with
# pkcs11-spy, token not locked), a locked PIN and a PIN on its final try (not
# tried at all), a missing module, empty/missing PIN sources.
set -u
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
require_cmd openssl pkcs11-tool softhsm2-util python3
t_setup

if t_softkeys; then
    skip "P11ID_TEST_SOFTKEYS=1: every point here is about the provider" \
        "bad input to the provider"
    done_testing
fi

key_gen alpha rsa2048 || bail_out "cannot generate RSA key on the token"
key_gen beta ec256 || bail_out "cannot generate EC key on the token"

D=$T/data.sha256
printf 'bad input' >"$T/data.txt"
ossl_sw dgst -sha256 -binary -out "$D" "$T/data.txt"
[ "$RUN_RC" -eq 0 ] || bail_out "openssl dgst failed"

# sign_with URI: pkeyutl -sign through the provider (config in OPENSSL_CONF).
sign_with()
{
    ossl pkeyutl -sign -inkey "$1" -in "$D" -out "$T/sig" -pkeyopt digest:sha256
}

# Error text must come from the provider, not from OpenSSL repeating its
# input: the regexes below avoid words of the URIs and file names they test
# ("Could not open file or uri for loading private key from <URI>").

# --- URIs ---------------------------------------------------------------------

sign_with "pkcs11:token=%zz;object=alpha;type=private"
run_fails "malformed percent-encoding (token=%zz): clean failure"
run_err_like 'percent|encod|malformed|invalid|pars' \
    "malformed percent-encoding: error says the URI is malformed"

sign_with "pkcs11:foo=bar"
run_fails "unknown attribute (pkcs11:foo=bar): clean failure"
run_err_like 'unknown attribute.*foo|foo.*unknown attribute' \
    "unknown attribute: error names attribute foo"

sign_with "pkcs11:token=$TOKEN;object=gamma;type=private"
run_fails "no matching key (object=gamma): clean failure"
run_err_like 'no private key matches' "no matching key: error says no private key matches"
run_err_like 'alpha' "no matching key: error lists the token's key alpha"
run_err_like 'beta' "no matching key: error lists the token's key beta"

sign_with "pkcs11:token=$TOKEN;type=private"
run_fails "ambiguous URI (two private keys): clean failure"
run_err_like 'ambiguous' "ambiguous URI: error says ambiguous"
run_err_like 'pkcs11:[^ ]*(object=alpha|id=%01)' \
    "ambiguous URI: error lists the URI of key alpha"
run_err_like 'pkcs11:[^ ]*(object=beta|id=%02)' \
    "ambiguous URI: error lists the URI of key beta"

# --- wrong PIN: one C_Login per process, counted by pkcs11-spy -------------------

# spy_logins LOG: C_Login (and PKCS#11 3.0 C_LoginUser) calls pkcs11-spy saw.
# pkcs11-spy (OpenSC 0.23) writes "<n>: C_Login" on a line of its own.
spy_logins()
{
    if [ -f "$1" ]; then
        grep -Ec '^[0-9]+: C_Login(User)?$' "$1"
    else
        echo none
    fi
}

printf '9999' >"$T/pinw.txt"
write_openssl_conf "$T/wrongpin.cnf" "pin-source=file:$T/pinw.txt" \
    "pkcs11-module-path=$PKCS11_SPY_MODULE"

if [ ! -f "$PKCS11_SPY_MODULE" ]; then
    skip_n 9 "no pkcs11-spy module at $PKCS11_SPY_MODULE" "wrong PIN counted with pkcs11-spy"
else
    rm -f "$T/spy1.log"
    OPENSSL_CONF="$T/wrongpin.cnf" PKCS11SPY="$SOFTHSM_MODULE" \
        PKCS11SPY_OUTPUT="$T/spy1.log" sign_with "$(key_uri alpha)"
    run_fails "wrong PIN from the config: clean failure"
    run_err_like 'PIN incorrect|CKR_PIN_INCORRECT' "wrong PIN: error says the PIN is incorrect"
    is "$(spy_logins "$T/spy1.log")" 1 "wrong PIN: exactly one C_Login (pkcs11-spy)"

    # Listing every object must not retry the PIN per object either.
    rm -f "$T/spy2.log"
    OPENSSL_CONF="$T/wrongpin.cnf" PKCS11SPY="$SOFTHSM_MODULE" \
        PKCS11SPY_OUTPUT="$T/spy2.log" ossl storeutl "pkcs11:token=$TOKEN"
    if [ "$RUN_RC" -lt 124 ] && ! run_crashed; then
        pass "wrong PIN: storeutl over the whole token ends without a crash"
    else
        fail "wrong PIN: storeutl over the whole token ends without a crash"
        _run_diag
    fi
    is "$(spy_logins "$T/spy2.log")" 1 \
        "wrong PIN: storeutl over the whole token: exactly one C_Login"

    # The PIN in the URI, provider loaded by -provider (no config section).
    rm -f "$T/spy3.log"
    OPENSSL_CONF="$T/default-only.cnf" PKCS11SPY="$SOFTHSM_MODULE" \
        PKCS11SPY_OUTPUT="$T/spy3.log" run openssl pkeyutl "${PROV_ARGS[@]}" \
        -sign -inkey "$(key_uri alpha)?module-path=$PKCS11_SPY_MODULE&pin-value=9999" \
        -in "$D" -out "$T/sig" -pkeyopt digest:sha256
    run_fails "wrong ?pin-value in the URI: clean failure"
    run_err_like 'PIN incorrect|CKR_PIN_INCORRECT' \
        "wrong ?pin-value: error says the PIN is incorrect"
    is "$(spy_logins "$T/spy3.log")" 1 "wrong ?pin-value: exactly one C_Login"

    # The wrong PIN did not lock the token; the right one works afterwards.
    p11tool --list-token-slots
    file_unlike "$RUN_OUT" 'PIN locked' "after the wrong PINs the user PIN is not locked"
fi
sign_with "$(key_uri alpha)"
run_ok "the right PIN still works after the wrong ones"

# --- locked PIN and final try: no C_Login at all ----------------------------------

# SoftHSM 2.6 never locks a user PIN: ten wrong logins only set "user PIN
# count low". If it did lock, the real lock is used; otherwise a shim module
# reports the flags (tests/lib/pinflags_shim.c).
token_init locked || bail_out "cannot create token 'locked'"
for ((i = 0; i < 10; i++)); do
    p11tool --token-label locked --login --pin 0000 --list-objects
done
p11tool --list-token-slots
if grep -q 'user PIN locked' "$RUN_OUT"; then
    diag "SoftHSM locked the PIN after 10 wrong logins: testing the real lock"
    LOCK_MODULE=$SOFTHSM_MODULE
    SHIM=
else
    diag "SoftHSM did not lock the PIN after 10 wrong logins (it never does):"
    diag "the lock is simulated by tests/lib/pinflags_shim.c"
    LOCK_MODULE=
    SHIM=$T/pinflags_shim.so
    CC=${CC:-cc}
    if command -v "$CC" >/dev/null 2>&1 && command -v pkg-config >/dev/null 2>&1 \
        && pkg-config --exists p11-kit-1; then
        # shellcheck disable=SC2046
        run "$CC" -shared -fPIC -o "$SHIM" $(pkg-config --cflags p11-kit-1) \
            "$T_LIBDIR/pinflags_shim.c" -ldl
        if [ "$RUN_RC" -eq 0 ]; then
            LOCK_MODULE=$SHIM
        else
            _run_diag
        fi
    fi
fi

LOCKED_URI="pkcs11:token=locked;object=alpha;type=private"
if [ -z "$LOCK_MODULE" ]; then
    skip_n 6 "SoftHSM never locks a PIN and the shim could not be built (no cc or p11-kit-1 headers)" \
        "locked and final-try PIN"
else
    # The key must exist for the failure to be about the PIN, not the key.
    p11tool --token-label locked --login --pin "$PIN" --keypairgen \
        --key-type EC:prime256v1 --id 01 --label alpha
    [ "$RUN_RC" -eq 0 ] || bail_out "cannot generate a key on token 'locked'"
    write_openssl_conf "$T/locked.cnf" "pkcs11-module-path=$LOCK_MODULE"
    for mode in locked final_try; do
        rm -f "$T/shim-$mode.log"
        OPENSSL_CONF="$T/locked.cnf" P11ID_SHIM_MODULE="$SOFTHSM_MODULE" \
            P11ID_SHIM_PIN_FLAGS="$mode" P11ID_SHIM_LOG="$T/shim-$mode.log" \
            sign_with "$LOCKED_URI"
        run_fails "user PIN $mode: clean failure"
        if [ "$mode" = locked ]; then
            run_err_like 'PIN is locked|PIN locked|CKF_USER_PIN_LOCKED' \
                "user PIN locked: error says the PIN is locked"
        else
            run_err_like 'final try|last try|FINAL_TRY' \
                "user PIN on its final try: error says so"
        fi
        if [ -n "$SHIM" ]; then
            n=0
            [ -f "$T/shim-$mode.log" ] && n=$(grep -c '^C_Login$' "$T/shim-$mode.log")
            is "$n" 0 "user PIN $mode: no C_Login attempted"
        else
            skip "the real SoftHSM lock is used: no shim log to count C_Login" \
                "user PIN $mode: no C_Login attempted"
        fi
    done
fi

# --- module and PIN sources --------------------------------------------------------

write_openssl_conf "$T/nomodule.cnf" "pkcs11-module-path=/nonexistent/libnope.so"
OPENSSL_CONF="$T/nomodule.cnf" sign_with "$(key_uri alpha)"
run_fails "missing PKCS#11 module in the config: clean failure"
run_err_like 'cannot load PKCS#11 module.*/nonexistent/libnope\.so|/nonexistent/libnope\.so.*(cannot|could not|no such)' \
    "missing module: error names the module path"

OPENSSL_CONF="$T/default-only.cnf" run openssl pkeyutl "${PROV_ARGS[@]}" -sign \
    -inkey "$(key_uri alpha)?module-path=/nonexistent/libnope2.so&pin-value=$PIN" \
    -in "$D" -out "$T/sig" -pkeyopt digest:sha256
run_fails "missing module in ?module-path: clean failure"
run_err_like '(cannot|could not).*load.*libnope2|libnope2\.so.*(cannot|could not|no such)' \
    "missing module in ?module-path: error names the module path"

: >"$T/pin0.txt"
write_openssl_conf "$T/emptypin.cnf" "pin-source=file:$T/pin0.txt"
OPENSSL_CONF="$T/emptypin.cnf" sign_with "$(key_uri alpha)"
run_fails "empty PIN file: clean failure"
run_err_like 'empty' "empty PIN file: error says the PIN is empty"

write_openssl_conf "$T/nopinfile.cnf" "pin-source=file:$T/nonexistent-pin.txt"
OPENSSL_CONF="$T/nopinfile.cnf" sign_with "$(key_uri alpha)"
run_fails "missing PIN file: clean failure"
run_err_like 'nonexistent-pin\.txt' "missing PIN file: error names the file"

unset P11ID_TEST_NO_SUCH_VAR
write_openssl_conf "$T/nopinenv.cnf" "pin-source=env:P11ID_TEST_NO_SUCH_VAR"
OPENSSL_CONF="$T/nopinenv.cnf" sign_with "$(key_uri alpha)"
run_fails "PIN from an unset environment variable: clean failure"
run_err_like 'P11ID_TEST_NO_SUCH_VAR' "unset PIN variable: error names the variable"

write_openssl_conf "$T/envpin.cnf" "pin-source=env:P11ID_TEST_PIN_VAR"
OPENSSL_CONF="$T/envpin.cnf" P11ID_TEST_PIN_VAR=$PIN sign_with "$(key_uri alpha)"
run_ok "control: the right PIN from env:P11ID_TEST_PIN_VAR works"

# A process without SoftHSM's variable (an nginx worker without
# "env SOFTHSM2_CONF;") sees SoftHSM's system token directory: the error
# names the variable and the directive.
saved_conf=$SOFTHSM2_CONF
unset SOFTHSM2_CONF
sign_with "$(key_uri alpha)"
SOFTHSM2_CONF=$saved_conf
export SOFTHSM2_CONF
run_fails "SOFTHSM2_CONF missing in the process: clean failure"
run_err_like 'env SOFTHSM2_CONF;' "SOFTHSM2_CONF missing: the error names the nginx env directive"

done_testing
