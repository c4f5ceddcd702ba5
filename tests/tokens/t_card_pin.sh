#!/usr/bin/env bash
# t_card_pin.sh: a wrong PIN on the CAC smart card (P11ID_TOKEN_KIND=card).
# OpenSC 0.23 answers C_Login with CKR_GENERAL_ERROR, not CKR_PIN_INCORRECT,
# for a CAC card (the card says 6985): the quirk P11ID_QUIRK_BAD_PIN_GENERAL_ERROR
# (src/core/quirks.c) makes p11id take it as a rejected PIN, say so, and
# never send it again in the same process (counted with pkcs11-spy).
set -u
P11ID_TOKEN_KIND=card
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
require_cmd openssl pkcs11-tool python3
require_file "$PKCS11_SPY_MODULE" "OpenSC's pkcs11-spy"
t_setup

key_gen k rsa2048 || bail_out "cannot get the card's key"
printf 'p11id signs this\n' >"$T/data.txt"
printf '9999\n' >"$T/wrong.pin"
write_openssl_conf "$T/wrong.cnf" "pin-source=file:$T/wrong.pin"
write_openssl_conf "$T/wrong-spy.cnf" "pin-source=file:$T/wrong.pin" \
    "pkcs11-module-path=$PKCS11_SPY_MODULE"

# What the module itself answers (the quirk's premise).
p11tool --login --pin 9999 --sign --id "${KEY_ID[k]}" -m SHA256-RSA-PKCS \
    -i "$T/data.txt" -o "$T/x.sig"
run_fails "pkcs11-tool with a wrong PIN fails"
run_err_like 'C_Login failed: rv = CKR_GENERAL_ERROR' \
    "OpenSC answers a wrong PIN on this card with CKR_GENERAL_ERROR"

OPENSSL_CONF="$T/wrong.cnf" ossl pkeyutl -sign -rawin -digest sha256 \
    -inkey "$(key_uri k)" -in "$T/data.txt" -out "$T/x.sig"
run_fails "openssl with a wrong PIN fails cleanly"
run_err_like 'PIN incorrect for token "'"$TOKEN"'"' \
    "the error says the PIN is incorrect (not only CKR_GENERAL_ERROR)"

# One process loads the key twice with the wrong PIN: one C_Login only.
cat >"$T/twice.py" <<'PY'
import ctypes, sys
c = ctypes.CDLL("libcrypto.so.3")
c.OSSL_STORE_open.restype = ctypes.c_void_p
c.OSSL_STORE_open.argtypes = [ctypes.c_char_p] + [ctypes.c_void_p] * 4
c.OSSL_STORE_load.restype = ctypes.c_void_p
c.OSSL_STORE_load.argtypes = [ctypes.c_void_p]
c.OSSL_STORE_eof.argtypes = [ctypes.c_void_p]
c.OSSL_STORE_close.argtypes = [ctypes.c_void_p]
c.ERR_print_errors_fp.argtypes = [ctypes.c_void_p]
libc = ctypes.CDLL(None)
libc.fdopen.restype = ctypes.c_void_p
libc.fflush.argtypes = [ctypes.c_void_p]
err = libc.fdopen(2, b"w")
for attempt in (1, 2):
    ctx = c.OSSL_STORE_open(sys.argv[1].encode(), None, None, None, None)
    n = 0
    while ctx and not c.OSSL_STORE_eof(ctx):
        if c.OSSL_STORE_load(ctx):
            n += 1
    if ctx:
        c.OSSL_STORE_close(ctx)
    print("attempt %d: %d objects" % (attempt, n))
    c.ERR_print_errors_fp(err)
    libc.fflush(err)
PY
PKCS11SPY=$SOFTHSM_MODULE PKCS11SPY_OUTPUT=$T/spy.log OPENSSL_CONF="$T/wrong-spy.cnf" \
    run python3 "$T/twice.py" "$(key_uri k)"
run_ok "one process loads the key twice with the wrong PIN"
is "$(grep -c '^[0-9]*: C_Login' "$T/spy.log")" 1 \
    "the wrong PIN reached the card once (C_Login calls in pkcs11-spy's log)"
run_err_like 'rejected the PIN earlier in this process' \
    "the second load is refused without asking the card, and says why"

# The card is not blocked: the right PIN still signs, in a new process.
ossl_ok "the right PIN signs afterwards" pkeyutl -sign -rawin -digest sha256 \
    -inkey "$(key_uri k)" -in "$T/data.txt" -out "$T/ok.sig"
ossl_sw pkeyutl -verify -rawin -digest sha256 -pubin -inkey "$(key_pub k)" \
    -in "$T/data.txt" -sigfile "$T/ok.sig"
run_ok_like 'Signature Verified Successfully' "and the signature verifies"

if [ -x "${P11ID_TOOL:-}" ]; then
    run "$P11ID_TOOL" csr "$(key_uri k)" --subject /CN=x --usage client -o "$T/x.csr" \
        --module "$SOFTHSM_MODULE" --pin-file "$T/wrong.pin"
    run_fails "p11id csr with a wrong PIN fails cleanly"
    run_err_like 'PIN incorrect' "p11id says the PIN is incorrect"
    is "$RUN_RC" 3 "p11id exits 3 (PIN problem) on the card's wrong-PIN answer"
else
    skip_n 3 "p11id tool not built" "p11id with a wrong PIN"
fi
done_testing
