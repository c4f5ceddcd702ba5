#!/usr/bin/env bash
# t_card_readonly.sh: the CAC smart card is read-only (P11ID_TOKEN_KIND=card):
# p11id keygen and import are refused with an error that says so (quirk
# P11ID_QUIRK_READ_ONLY: OpenSC 0.23 does not set CKF_WRITE_PROTECTED), while
# what needs no writing works: listing, a CSR signed on the card, a key
# reference file.
set -u
P11ID_TOKEN_KIND=card
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
require_cmd openssl pkcs11-tool python3
[ -x "${P11ID_TOOL:-}" ] || { echo "1..0 # SKIP p11id tool not built"; exit 0; }
t_setup
key_gen k rsa2048 || bail_out "cannot get the card's key"
TOK="pkcs11:token=$TOKEN"
tool() { run "$P11ID_TOOL" "$@" --module "$SOFTHSM_MODULE" --pin-file "$T/pin.txt"; }

tool keygen "$TOK" --type rsa:2048 --label new-key
is "$RUN_RC" 1 "keygen on the card fails"
run_err_like "token \"$TOKEN\" is read-only: it cannot generate keys" \
    "keygen says the card is read-only"
file_unlike "$RUN_ERR" 'does it have the mechanism' \
    "keygen does not send the user looking for a mechanism"

ossl_sw req -x509 -newkey rsa:2048 -nodes -keyout "$T/other.key" \
    -subj /CN=other -days 2 -out "$T/other.crt"
ossl req -x509 -new -key "$(key_uri k)" -subj "/CN=$TOKEN renewed" -days 2 \
    -out "$T/k.crt"
[ "$RUN_RC" -eq 0 ] || _run_diag
tool import "$(key_uri k)" "$T/k.crt"
is "$RUN_RC" 1 "import of a new certificate for the card's key fails"
run_err_like "token \"$TOKEN\" is read-only: it cannot store certificates" \
    "import says the card is read-only"
run pkcs11-tool --module "$SOFTHSM_MODULE" --list-objects --type cert
is "$(grep -c '^Certificate Object' "$RUN_OUT")" 1 "the card still holds one certificate"

tool objects "$TOK"
is "$RUN_RC" 0 "objects lists the card"
file_like "$RUN_OUT" '^private-key pkcs11:.*object=CAC%20ID%20Certificate;id=%00%01;type=private$' \
    "the card's key is listed with its URI"
tool csr "$(key_uri k)" --subject "/CN=card user" --usage client -o "$T/k.csr"
is "$RUN_RC" 0 "csr: a request signed on the card"
ossl_sw req -in "$T/k.csr" -verify -noout
run_ok_like 'verify OK|Certificate request self-signature verify OK' "the request's signature verifies"
tool keyfile "$(key_uri k)" -o "$T/k.ref.pem"
is "$RUN_RC" 0 "keyfile writes a key reference file for the card's key"
ossl_ok "openssl signs with the key reference file" pkeyutl -sign -rawin \
    -digest sha256 -inkey "$T/k.ref.pem" -in "$T/k.csr" -out "$T/k.sig"
done_testing
