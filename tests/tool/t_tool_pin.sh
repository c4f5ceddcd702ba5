#!/usr/bin/env bash
# t_tool_pin.sh: p11id pin on a SoftHSM token: status of a fresh token (text
# and --json); change the user PIN (files, then variables) and use the new
# one; a wrong old PIN is tried once, exits 3 and changes nothing; a new PIN
# too short for the token is refused; unblock with the SO PIN sets a new user
# PIN; a wrong SO PIN exits 3. Locked and final-try PINs (reported by
# tests/lib/pinflags_shim.c, SoftHSM never locks) are refused without any
# C_Login. No PIN appears in any output.
set -u
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/tool/diag_lib.sh
. "$(dirname "$0")/diag_lib.sh"
require_cmd openssl pkcs11-tool softhsm2-util python3
diag_setup

key_gen k ec256 || bail_out "cannot generate a key on the token"
TOK="pkcs11:token=$TOKEN"
NEW_PIN=p11id-new-8391
NEW_PIN2=p11id-unblocked-5517
secret() { printf '%s\n' "$2" >"$T/$1"; chmod 600 "$T/$1"; }
secret old.pin "$PIN"
secret new.pin "$NEW_PIN"
secret new2.pin "$NEW_PIN2"
secret so.pin "$SO_PIN"
secret wrong.pin 0000
secret short.pin 12
ALL_OUT=()

# The PIN-flags shim wraps SoftHSM, logs each C_Login and, with mode locked
# or final_try, reports those flags (SoftHSM never locks a PIN).
SHIM=$T/pinflags_shim.so
CC=${CC:-cc}
if command -v "$CC" >/dev/null 2>&1 && pkg-config --exists p11-kit-1 2>/dev/null; then
    # shellcheck disable=SC2046
    run "$CC" -shared -fPIC -o "$SHIM" $(pkg-config --cflags p11-kit-1) \
        "$T_LIBDIR/pinflags_shim.c" -ldl
    [ "$RUN_RC" -eq 0 ] || { _run_diag; SHIM=; }
else
    SHIM=
fi
# shim MODE TOOL-ARGS...: the tool on the shim; logins: its C_Login count.
shim()
{
    local mode=$1
    shift
    rm -f "$T/shim.log"
    P11ID_MODULE=$SHIM P11ID_SHIM_MODULE=$SOFTHSM_MODULE \
        P11ID_SHIM_PIN_FLAGS=$mode P11ID_SHIM_LOG=$T/shim.log tool "$@"
}
logins()
{
    if [ -f "$T/shim.log" ]; then
        grep -c '^C_Login$' "$T/shim.log"
    else
        echo 0
    fi
}

# signs_with PINFILE DESC: the key signs on the token with that PIN (the
# tool logs in with it and the provider signs).
signs_with()
{
    tool check "$(key_uri k)" --pin-file "$1"
    ALL_OUT+=("$RUN_OUT" "$RUN_ERR")
    file_like "$RUN_OUT" '^ok +key signs' "$2"
}

# --- status --------------------------------------------------------------------------

tool pin status "$TOK"
tool_rc 0 "status of a fresh token: exit 0"
file_like "$RUN_OUT" "^token: +$TOKEN\$" "status: token label"
file_like "$RUN_OUT" '^uri: +pkcs11:.*token=p11id-test' "status: token URI"
file_like "$RUN_OUT" '^login: +required' "status: login required"
file_like "$RUN_OUT" '^user PIN: +retries ok; set$' "status: user PIN set, retries ok"
file_like "$RUN_OUT" '^SO PIN: +retries ok; set$' "status: SO PIN retries ok"
file_like "$RUN_OUT" '^PIN length: +[0-9]+ to [0-9]+ characters' "status: PIN lengths"

tool pin status "$TOK" --json
tool_rc 0 "status --json: exit 0"
is "$(json_get "$RUN_OUT" '[d["user_pin"]["initialized"], d["user_pin"]["retries"], d["user_pin"]["locked"], d["so_pin"]["retries"], d["login_required"]]')" \
    '[true, "ok", false, "ok", true]' "status --json: flags of a fresh token"

# --- change ---------------------------------------------------------------------------

tool pin change "$TOK" --pin-file "$T/wrong.pin" --new-pin-file "$T/new.pin"
ALL_OUT+=("$RUN_OUT" "$RUN_ERR")
tool_rc 3 "change with a wrong old PIN: exit 3"
run_err_like 'PIN incorrect' "wrong old PIN: says PIN incorrect"

tool pin status "$TOK"
file_like "$RUN_OUT" '^user PIN: +retries count low; a wrong PIN was entered' \
    "status after a wrong PIN: count low"

if [ -n "$SHIM" ]; then
    shim none pin change "$TOK" --pin-file "$T/wrong.pin" \
        --new-pin-file "$T/new.pin"
    tool_rc 3 "wrong old PIN through the logging shim: exit 3"
    is "$(logins)" 1 "wrong old PIN: tried exactly once"
else
    skip_n 2 "the PIN-flags shim could not be built (no cc or p11-kit-1 headers)" \
        "wrong old PIN tried once"
fi
signs_with "$T/old.pin" "wrong old PIN: nothing changed, the old PIN still works"

tool pin status "$TOK" --json
is "$(json_get "$RUN_OUT" 'd["user_pin"]["retries"]')" ok \
    "status: a good login cleared the count of wrong PINs"

tool pin change "$TOK" --pin-file "$T/old.pin" --new-pin-file "$T/short.pin"
ALL_OUT+=("$RUN_OUT" "$RUN_ERR")
tool_rc 1 "a new PIN shorter than the token takes: exit 1"
run_err_like 'the new PIN has 2 characters; this token takes [0-9]+ to [0-9]+' \
    "short new PIN: the token's limits named"

tool pin change "$TOK" --pin-file "$T/old.pin"
tool_rc 1 "no new PIN source and no terminal: exit 1"
run_err_like 'new user PIN: no terminal to ask on; give --new-pin-file' \
    "no terminal: says how to give the new PIN"

tool pin change "$TOK" --pin-file "$T/old.pin" --new-pin-file "$T/new.pin"
ALL_OUT+=("$RUN_OUT" "$RUN_ERR")
tool_rc 0 "change the user PIN: exit 0"
file_like "$RUN_OUT" 'the user PIN of token "p11id-test" is changed' \
    "change: says so"
signs_with "$T/new.pin" "the new PIN works"
tool check "$(key_uri k)" --pin-file "$T/old.pin"
tool_rc 3 "the old PIN no longer works: exit 3"

# And back, with the PINs in environment variables.
OLDP=$NEW_PIN NEWP=$PIN tool pin change "$TOK" --pin-env OLDP --new-pin-env NEWP
ALL_OUT+=("$RUN_OUT" "$RUN_ERR")
tool_rc 0 "change with --pin-env and --new-pin-env: exit 0"
signs_with "$T/old.pin" "the PIN from the variable works"

# --- unblock --------------------------------------------------------------------------

tool pin unblock "$TOK" --so-pin-file "$T/wrong.pin" --new-pin-file "$T/new2.pin"
ALL_OUT+=("$RUN_OUT" "$RUN_ERR")
tool_rc 3 "unblock with a wrong SO PIN: exit 3"
run_err_like 'SO PIN incorrect' "wrong SO PIN: says SO PIN incorrect"

tool pin unblock "$TOK" --so-pin-file "$T/so.pin" --new-pin-file "$T/new2.pin"
ALL_OUT+=("$RUN_OUT" "$RUN_ERR")
tool_rc 0 "unblock with the SO PIN: exit 0"
file_like "$RUN_OUT" 'the user PIN of token "p11id-test" is set' "unblock: says so"
signs_with "$T/new2.pin" "the PIN set by the SO works"

tool pin unblock "$TOK" --pin-file "$T/old.pin"
tool_rc 2 "unblock with a user PIN option: exit 2"
tool pin frobnicate "$TOK"
tool_rc 2 "unknown action: exit 2"

# --- locked and final try: refused without a login ---------------------------------------

if [ -z "$SHIM" ]; then
    skip_n 9 "the PIN-flags shim could not be built (no cc or p11-kit-1 headers)" \
        "locked and final-try PIN"
else
    shim locked pin status "$TOK"
    file_like "$RUN_OUT" '^user PIN: +retries locked; locked: set a new one with the SO PIN \(p11id pin unblock\)' \
        "locked: status says how to unblock"
    shim locked pin change "$TOK" --pin-file "$T/new2.pin" --new-pin-file "$T/new.pin"
    tool_rc 3 "locked: change refused, exit 3"
    run_err_like 'locked.*p11id pin unblock' "locked: the error says to unblock"
    is "$(logins)" 0 "locked: no C_Login attempted"

    shim final_try pin status "$TOK" --json
    is "$(json_get "$RUN_OUT" '[d["user_pin"]["final_try"], d["user_pin"]["retries"]]')" \
        '[true, "final try"]' "final try: status --json"
    shim final_try pin change "$TOK" --pin-file "$T/new2.pin" --new-pin-file "$T/new.pin"
    tool_rc 3 "final try: change refused, exit 3"
    run_err_like 'final (PIN )?try' "final try: the error says so"
    is "$(logins)" 0 "final try: no C_Login attempted"

    shim locked pin unblock "$TOK" --so-pin-file "$T/so.pin" --new-pin-file "$T/old.pin"
    tool_rc 0 "locked: unblock with the SO PIN works"
fi

# --- no PIN in any output ------------------------------------------------------------------

leaked=
for f in "${ALL_OUT[@]}"; do
    for p in "$PIN" "$NEW_PIN" "$NEW_PIN2" "$SO_PIN"; do
        grep -qF -- "$p" "$f" 2>/dev/null && leaked="$leaked ${f##*/}:$p"
    done
done
is "$leaked" "" "no PIN appears in the tool's output"

done_testing
