#!/usr/bin/env bash
# t_faults_pin.sh: PIN safety, counted by the fault module. A wrong PIN costs
# exactly one C_Login per process: a process that tries to load the key 5
# times makes 1 C_Login, and each of 3 openssl one-shots makes 1; the error
# says "PIN incorrect"; SoftHSM's token is not locked or on its final try
# afterwards and the right PIN works. A token whose flags say
# CKF_USER_PIN_FINAL_TRY or CKF_USER_PIN_LOCKED (faked by the fault module)
# gets no C_Login at all. A PIN that the token rejects when p11id logs in
# again after a lost session (as after a PIN change) is tried once and never
# again by that process.
set -u
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/faults/faults_lib.sh
. "$(dirname "$0")/faults_lib.sh"
require_cmd openssl pkcs11-tool softhsm2-util
require_file "$FAULTMOD" "the fault module (make check builds it)"
require_file "$FAULTDRV" "the fault driver (make check builds it)"
t_setup
key_gen k ec256 || bail_out "cannot generate the key"
fm_setup
printf 'pin safety\n' >"$T/msg.txt"

# clear_stats: forget the call counts of the processes before.
clear_stats()
{
    rm -f "$FM_STATS"/stats.*
}

# token_flags: the token's flags as pkcs11-tool prints them (no faultmod).
token_flags()
{
    p11tool -L
    sed -n 's/^ *token flags *: //p' "$RUN_OUT" | head -n 1
}

# --- a wrong PIN: one C_Login per process -----------------------------------------------
printf 'wrong-pin-0000' >"$T/pin.txt"
clear_stats
drv_start "$(key_uri k)" "$(key_pub k)" || bail_out "faultdrv did not start"
answers=()
for i in 1 2 3 4 5; do
    drv_cmd load
    answers+=("$DRV_LINE")
done
n_fail=0
for a in "${answers[@]}"; do
    case "$a" in "load fail"*) n_fail=$((n_fail + 1)) ;; esac
done
is "$n_fail" 5 "wrong PIN: 5 loads of the key in one process all fail"
case "${answers[0]}" in
    *"PIN incorrect"*) pass "the first error says PIN incorrect" ;;
    *) fail "the first error says PIN incorrect" "${answers[0]}" ;;
esac
case "${answers[4]}" in
    *"rejected the PIN earlier"*) pass "the later errors say the PIN was rejected before" ;;
    *) fail "the later errors say the PIN was rejected before" "${answers[4]}" ;;
esac
drv_stop
is "$(fm_stats_files)" 1 "one process used the fault module"
is "$(fm_count C_Login)" 1 "5 loads with a wrong PIN: exactly 1 C_Login"
is "$(fm_count_rv C_Login CKR_PIN_INCORRECT)" 1 "... which the token answered CKR_PIN_INCORRECT"

clear_stats
for i in 1 2 3; do
    OPENSSL_CONF="$T/fault.cnf" run openssl dgst -sha256 -sign "$(key_uri k)" \
        -out "$T/msg.sig" "$T/msg.txt"
    run_fails "wrong PIN: openssl one-shot $i fails cleanly"
done
run_err_like 'PIN incorrect' "the one-shot's error says PIN incorrect"
is "$(fm_stats_files)" 3 "3 one-shot processes used the fault module"
per_proc=$(awk '$1 == "C_Login" { print $2 }' "$FM_STATS"/stats.* | sort | uniq -c \
    | awk '{ print $1 "x" $2 }')
is "$per_proc" "3x1" "each one-shot made exactly 1 C_Login"

flags=$(token_flags)
case "$flags" in
    *locked* | *"final try"*) fail "the token is neither locked nor on its final try" "flags: $flags" ;;
    *) pass "the token is neither locked nor on its final try ($flags)" ;;
esac

printf '%s' "$PIN" >"$T/pin.txt"
clear_stats
OPENSSL_CONF="$T/fault.cnf" run openssl dgst -sha256 -sign "$(key_uri k)" \
    -out "$T/msg.sig" "$T/msg.txt"
run_ok "the right PIN works afterwards"
ossl_sw dgst -sha256 -verify "$(key_pub k)" -signature "$T/msg.sig" "$T/msg.txt"
run_ok_like 'Verified OK' "its signature verifies"
is "$(fm_count C_Login)" 1 "with the right PIN: 1 C_Login"

# --- PIN flags: no login attempt at all ------------------------------------------------
for f in CKF_USER_PIN_FINAL_TRY CKF_USER_PIN_LOCKED; do
    clear_stats
    fm_set "token-flags +$f"
    OPENSSL_CONF="$T/fault.cnf" run openssl dgst -sha256 -sign "$(key_uri k)" \
        -out "$T/msg.sig" "$T/msg.txt"
    run_fails "$f: the key is not used"
    if [ "$f" = CKF_USER_PIN_LOCKED ]; then
        run_err_like 'PIN of token .* is locked' "$f: the error says the PIN is locked"
    else
        run_err_like 'final PIN try' "$f: the error says the token is on its final PIN try"
    fi
    is "$(fm_count C_Login)" 0 "$f: no C_Login"
    is "$(fm_count C_GetTokenInfo)" "$(fm_count_rv C_GetTokenInfo CKR_OK)" \
        "$f: the flags were read (C_GetTokenInfo)"
done
fm_set

# --- the PIN is refused when p11id logs in again ------------------------------------------
# SoftHSM keeps a PIN changed by another process unseen in this one: the
# fault module's token refuses every C_Login instead, as a token whose PIN
# was changed meanwhile would.
clear_stats
drv_start "$(key_uri k)" "$(key_pub k)" || bail_out "faultdrv did not start"
drv_cmd load
is "$DRV_LINE" "load ok" "a process loads the key with the right PIN"
drv_cmd 'sign 2'
drv_expect 2 0 "and signs"
before=$(fm_count C_Login)
fm_set invalidate-sessions 'fail C_Login every CKR_PIN_INCORRECT'
drv_cmd 'sign 5'
drv_expect 0 5 "sessions lost, the kept PIN refused: 5 signatures fail"
case "$(drv_field err)" in
    *"rejected the PIN earlier"*) pass "the error says the PIN was rejected before" ;;
    *) fail "the error says the PIN was rejected before" "$DRV_LINE" ;;
esac
is "$(($(fm_count C_Login) - before))" 1 \
    "the refused PIN cost exactly 1 C_Login for 5 signatures"
fm_set
drv_cmd 'sign 1'
drv_expect 0 1 "the process does not try the PIN again even when the token would take it"
is "$(($(fm_count C_Login) - before))" 1 "still exactly 1 C_Login"
drv_stop
is "$DRV_RC" 0 "the driver exits cleanly"
flags=$(token_flags)
case "$flags" in
    *locked* | *"final try"*) fail "the token is still usable" "flags: $flags" ;;
    *) pass "the token is still usable ($flags)" ;;
esac

done_testing
