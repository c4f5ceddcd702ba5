#!/usr/bin/env bash
# t_faults_recovery.sh: the provider recovers from token faults injected by
# the fault module around SoftHSM. A long-running process (faultdrv) loads an
# EC token key once by URI and signs on command, verifying every signature
# with the public key in software, while the test changes the faults: lost
# sessions (CKR_SESSION_HANDLE_INVALID, CKR_SESSION_CLOSED), a logout
# underneath (CKR_USER_NOT_LOGGED_IN, and SoftHSM's CKR_OBJECT_HANDLE_INVALID),
# module restarts (sessions gone; CKR_CRYPTOKI_NOT_INITIALIZED), a removed
# token and its reinsertion, device errors, a slow token, and faults while 4
# threads sign. Each recovery opens new sessions, logs in again exactly once
# (counted by the fault module) and finds the key again; what cannot recover
# fails with an error that says why. openssl one-shots with an RSA key check
# the same from the command line.
set -u
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/faults/faults_lib.sh
. "$(dirname "$0")/faults_lib.sh"
require_cmd openssl pkcs11-tool softhsm2-util
require_file "$FAULTMOD" "the fault module (make check builds it)"
require_file "$FAULTDRV" "the fault driver (make check builds it)"
t_setup
key_gen ec ec256 || bail_out "cannot generate the EC key"
key_gen rsa rsa2048 || bail_out "cannot generate the RSA key"
fm_setup

drv_start "$(key_uri ec)" "$(key_pub ec)" || bail_out "faultdrv did not start"
drv_cmd load
is "$DRV_LINE" "load ok" "the driver loads the key through faultmod"
drv_cmd 'sign 3'
drv_expect 3 0 "3 signatures without faults, all verified"
is "$(fm_count C_Login)" 1 "one C_Login so far"

# recovers DESC N LINES...: with the faults LINES, N signatures all succeed
# and verify; the token was logged in again exactly once.
recovers()
{
    local desc=$1 n=$2 before after
    shift 2
    before=$(fm_count C_Login)
    fm_set "$@"
    drv_cmd "sign $n"
    drv_expect "$n" 0 "$desc: recovered, $n signatures verified"
    after=$(fm_count C_Login)
    is "$((after - before))" 1 "$desc: logged in again exactly once"
    fm_set
}

recovers "CKR_SESSION_HANDLE_INVALID (every session invalidated)" 3 \
    invalidate-sessions
recovers "CKR_SESSION_CLOSED (every session closed)" 3 \
    'invalidate-sessions CKR_SESSION_CLOSED'
recovers "CKR_SESSION_CLOSED from C_Sign" 3 'fail C_Sign 1 CKR_SESSION_CLOSED'
recovers "CKR_USER_NOT_LOGGED_IN after a token reset" 3 logout \
    'fail C_SignInit 1 CKR_USER_NOT_LOGGED_IN'
recovers "logout underneath (SoftHSM answers CKR_OBJECT_HANDLE_INVALID)" 3 \
    logout
recovers "module restart (sessions and handles gone)" 3 restart

inits=$(fm_count C_Initialize)
recovers "module restart, finalized (CKR_CRYPTOKI_NOT_INITIALIZED)" 3 \
    'restart finalized'
is "$(fm_count C_Initialize)" "$((inits + 1))" \
    "after CKR_CRYPTOKI_NOT_INITIALIZED the module was initialised again once"
is "$(fm_count_rv C_Initialize CKR_OK)" "$(fm_count C_Initialize)" \
    "every C_Initialize succeeded"

# --- faults that a new session does not cure ---------------------------------------
logins=$(fm_count C_Login)
fm_set 'fail C_Sign 2 CKR_DEVICE_ERROR'
drv_cmd 'sign 3'
drv_expect 2 1 "CKR_DEVICE_ERROR on one C_Sign: that signature fails, the others work"
case "$(drv_field err)" in
    *"C_Sign: CKR_DEVICE_ERROR"*) pass "the error names C_Sign and CKR_DEVICE_ERROR" ;;
    *) fail "the error names C_Sign and CKR_DEVICE_ERROR" "$DRV_LINE" ;;
esac
fm_set 'fail C_Sign from 1 times 3 CKR_DEVICE_ERROR'
drv_cmd 'sign 5'
drv_expect 2 3 "a burst of 3 device errors fails 3 signatures, no more"
fm_set
drv_cmd 'sign 3'
drv_expect 3 0 "after the device errors: signing works"
is "$(fm_count C_Login)" "$logins" "device errors cost no login"

# --- a removed token, then reinsertion ---------------------------------------------
logins=$(fm_count C_Login)
fm_set remove-token
drv_cmd 'sign 2'
drv_expect 0 2 "token removed: signing fails cleanly"
case "$(drv_field err)" in
    *"token \"$TOKEN\" is not present"*removed*)
        pass "the error names the removed token" ;;
    *) fail "the error names the removed token" "$DRV_LINE" ;;
esac
drv_cmd load
case "$DRV_LINE" in
    "load fail"*"token \"$TOKEN\" is not present"*removed*)
        pass "loading the key while the token is out names the removed token" ;;
    *) fail "loading the key while the token is out names the removed token" \
        "$DRV_LINE" ;;
esac
is "$(fm_count C_Login)" "$logins" "no login attempt while the token is out"
fm_set insert-token
drv_cmd 'sign 3'
drv_expect 3 0 "token inserted again: signing works (new sessions, login, handles)"
is "$(fm_count C_Login)" "$((logins + 1))" "reinsertion: logged in again once"
fm_set

# --- loading the key again after faults ----------------------------------------------
fm_set logout
drv_cmd load
is "$DRV_LINE" "load ok" "loading the key after a logout underneath"
fm_set 'restart finalized'
drv_cmd load
is "$DRV_LINE" "load ok" "loading the key after CKR_CRYPTOKI_NOT_INITIALIZED"
fm_set invalidate-sessions
drv_cmd load
is "$DRV_LINE" "load ok" "loading the key after every session was invalidated"
drv_cmd 'sign 2'
drv_expect 2 0 "the key loaded last signs"
fm_set

# --- a slow token -------------------------------------------------------------------
fm_set 'delay C_Sign 50ms'
start=$(date +%s%N)
drv_cmd 'sign 4'
ms=$(( ($(date +%s%N) - start) / 1000000 ))
drv_expect 4 0 "a token 50 ms slow per C_Sign: 4 signatures"
if [ "$ms" -ge 200 ]; then
    pass "the delay was applied (4 signatures in $ms ms)"
else
    fail "the delay was applied" "4 signatures in $ms ms"
fi
fm_set

# --- faults while 4 threads sign -------------------------------------------------------
threads_under()
{
    local desc=$1
    shift
    drv_send 'run 4 2500'
    sleep 0.8
    fm_set "$1"
    sleep 0.8
    fm_set "$2"
    drv_read 60
    local ok fail bad
    ok=$(drv_field ok)
    fail=$(drv_field fail)
    bad=$(drv_field bad)
    if [ "${ok:-0}" -gt 0 ] && [ "$fail" = 0 ] && [ "$bad" = 0 ]; then
        pass "$desc: $ok signatures by 4 threads, none failed"
    else
        fail "$desc" "got: ${DRV_LINE:-(no answer)}"
        diag_file "$T/faultdrv.err" 5
    fi
    fm_set
}
threads_under "4 threads: sessions invalidated, then a logout underneath" \
    invalidate-sessions logout
threads_under "4 threads: module restart, then restart finalized" \
    restart 'restart finalized'
drv_cmd 'sign 2'
drv_expect 2 0 "after the threaded faults: signing works"

drv_stop
is "$DRV_RC" 0 "the driver exits cleanly"
if grep -Eq -- "$CRASH_RE" "$T/faultdrv.err"; then
    fail "no crash report from the driver"
    diag_file "$T/faultdrv.err"
else
    pass "no crash report from the driver"
fi

# --- openssl one-shots (RSA key) -----------------------------------------------------------
printf 'one-shot message\n' >"$T/msg.txt"
oneshot_sign()
{
    OPENSSL_CONF="$T/fault.cnf" run openssl dgst -sha256 -sign "$(key_uri rsa)" \
        -out "$T/msg.sig" "$T/msg.txt"
}
fm_set 'fail C_Sign 1 CKR_SESSION_HANDLE_INVALID'
oneshot_sign
run_ok "openssl dgst -sign recovers from CKR_SESSION_HANDLE_INVALID"
ossl_sw dgst -sha256 -verify "$(key_pub rsa)" -signature "$T/msg.sig" "$T/msg.txt"
run_ok_like 'Verified OK' "the one-shot signature verifies in software"
fm_set 'fail C_SignInit 1 CKR_USER_NOT_LOGGED_IN'
oneshot_sign
run_ok "openssl dgst -sign recovers from CKR_USER_NOT_LOGGED_IN"
fm_set 'fail C_Sign every CKR_DEVICE_ERROR'
oneshot_sign
run_fails "openssl dgst -sign with a failing device fails cleanly"
run_err_like 'C_Sign: CKR_DEVICE_ERROR' "its error names C_Sign and CKR_DEVICE_ERROR"
fm_set remove-token
oneshot_sign
run_fails "openssl dgst -sign with the token removed fails cleanly"
# A new process never saw the token: it can only say none matches.
run_err_like "no private key matches pkcs11:token=$TOKEN.*no matching token" \
    "its error names the token's URI and says no token matches"
fm_set

done_testing
