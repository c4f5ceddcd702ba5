#!/usr/bin/env bash
# t_keyref.sh: key reference files. Exporting a token private key writes a PEM
# "PKCS#11 PROVIDER URI" file that holds the URI and no key bytes; such a file
# (written by the provider, by python, or by openssl asn1parse -genconf) works
# wherever a PEM key file does; corrupt ones fail with a clear error, no crash.
set -u
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
require_cmd openssl pkcs11-tool softhsm2-util python3 base64
t_setup

key_gen rsa rsa2048 || bail_out "cannot generate RSA key on the token"
key_gen ec ec256 || bail_out "cannot generate EC key on the token"

D=$T/data.txt
printf 'signed through a key reference file\n' >"$D"
ossl_sw dgst -sha256 -binary -out "$D.sha256" "$D"

TOKEN_URI="pkcs11:token=$TOKEN"

# --- the two independent builders agree (no provider involved) ----------------------

keyref_build "$TOKEN_URI;object=ec;type=private" "$T/ref-py-ec.pem" \
    || bail_out "keyref.py failed"
keyref_genconf "$TOKEN_URI;object=ec;type=private" "$T/ref-genconf-ec.pem" \
    || bail_out "asn1parse -genconf failed"
files_equal "$T/ref-py-ec.pem" "$T/ref-genconf-ec.pem" \
    "keyref.py and asn1parse -genconf build the same key reference file"
ossl_sw asn1parse -in "$T/ref-py-ec.pem"
run_ok_like "UTF8STRING +:$TOKEN_URI;object=ec;type=private\$" \
    "asn1parse reads the URI back from the built file"

# check_keyref FILE NAME: FILE is a key reference file (3 points).
check_keyref()
{
    local f=$1 name=$2
    file_like "$f" '^-----BEGIN PKCS#11 PROVIDER URI-----$' \
        "$name: file is a PEM 'PKCS#11 PROVIDER URI' block"
    file_unlike "$f" 'PRIVATE KEY|PUBLIC KEY' "$name: file holds no key block"
    ossl_sw asn1parse -in "$f"
    # Exactly: SEQUENCE, VISIBLESTRING description, UTF8STRING URI.
    if [ "$RUN_RC" -eq 0 ] && [ "$(wc -l <"$RUN_OUT")" -eq 3 ] \
        && grep -q 'VISIBLESTRING *:PKCS#11 Provider URI v1.0' "$RUN_OUT" \
        && grep -Eq "UTF8STRING *:pkcs11:.*(object=$name|id=%0)" "$RUN_OUT"; then
        pass "$name: DER is SEQUENCE { description, URI naming the key }, nothing else"
    else
        fail "$name: DER is SEQUENCE { description, URI naming the key }, nothing else"
        _run_diag
    fi
}

if t_softkeys; then
    skip "P11ID_TEST_SOFTKEYS=1: key reference files need the provider" \
        "key reference files through the provider"
    done_testing
fi

# --- written by the provider --------------------------------------------------------

for k in rsa ec; do
    ossl pkey -in "$(key_uri "$k")" -out "$T/ref-$k.pem"
    run_ok "$k: openssl pkey -in <token URI> -out key.pem writes a file"
    check_keyref "$T/ref-$k.pem" "$k"
    ossl pkey -in "$T/ref-$k.pem" -pubout -out "$T/ref-$k.pub"
    run_ok "$k: openssl pkey reads the key reference file back"
    files_equal "$(key_pub "$k")" "$T/ref-$k.pub" \
        "$k: the file names the token key (same public key)"
done

# No bytes of the RSA modulus in the file (a cheap "no key bytes" check).
ossl_sw rsa -pubin -in "$(key_pub rsa)" -noout -modulus
mod=$(sed -n 's/^Modulus=//p' "$RUN_OUT")
base64 -d <(sed '/^-----/d' "$T/ref-rsa.pem") 2>/dev/null | od -An -tx1 \
    | tr -d ' \n' | tr a-f A-F >"$T/ref-rsa.hex"
if [ -n "$mod" ] && ! grep -q "${mod:0:32}" "$T/ref-rsa.hex"; then
    pass "rsa: key reference file contains no part of the modulus"
else
    fail "rsa: key reference file contains no part of the modulus"
fi

# sign_with KEYFILE PUBKEY DESC: sign with the file as -inkey, verify in software.
sign_with()
{
    ossl pkeyutl -sign -inkey "$1" -in "$D.sha256" -out "$T/sig" \
        -pkeyopt digest:sha256
    run_ok "$3: pkeyutl -sign -inkey <key reference file>"
    ossl_sw pkeyutl -verify -pubin -inkey "$2" -in "$D.sha256" -sigfile "$T/sig" \
        -pkeyopt digest:sha256
    run_ok_like 'Signature Verified Successfully' "$3: signature verifies"
    rm -f "$T/sig"
}

sign_with "$T/ref-rsa.pem" "$(key_pub rsa)" "provider-written RSA file"
sign_with "$T/ref-ec.pem" "$(key_pub ec)" "provider-written EC file"
sign_with "$T/ref-py-ec.pem" "$(key_pub ec)" "python-built EC file"
keyref_genconf "$TOKEN_URI;object=rsa;type=private" "$T/ref-genconf-rsa.pem" \
    || bail_out "asn1parse -genconf failed"
sign_with "$T/ref-genconf-rsa.pem" "$(key_pub rsa)" "asn1parse-built RSA file"

ossl dgst -sha256 -sign "$T/ref-ec.pem" -out "$T/dgst.sig" "$D"
run_ok "openssl dgst -sign <key reference file>"
ossl_sw dgst -sha256 -verify "$(key_pub ec)" -signature "$T/dgst.sig" "$D"
run_ok_like '^Verified OK' "dgst signature made through the file verifies"

# A file whose URI carries module and PIN works with -provider and no config.
keyref_build "$(key_selfcontained_uri rsa)" "$T/ref-self.pem" \
    || bail_out "keyref.py failed"
OPENSSL_CONF="$T/default-only.cnf" run openssl pkeyutl "${PROV_ARGS[@]}" -sign \
    -inkey "$T/ref-self.pem" -in "$D.sha256" -out "$T/self.sig" \
    -pkeyopt digest:sha256
run_ok "file with ?module-path&pin-value works with -provider p11id, no config"
ossl_sw pkeyutl -verify -pubin -inkey "$(key_pub rsa)" -in "$D.sha256" \
    -sigfile "$T/self.sig" -pkeyopt digest:sha256
run_ok_like 'Signature Verified Successfully' "its signature verifies"

# --- broken files fail cleanly, saying what is wrong ------------------------------------

# bad ERE DESC [keyref.py options] URI: the file (named neutrally, so that
# OpenSSL's own "Could not read ... from FILE" line cannot match ERE) fails.
BAD_N=0
bad()
{
    local re=$1 desc=$2 f
    shift 2
    BAD_N=$((BAD_N + 1))
    f=$T/broken$BAD_N.pem
    run python3 "$T_LIBDIR/keyref.py" "$@"
    [ "$RUN_RC" -eq 0 ] || bail_out "keyref.py $* failed"
    cp "$RUN_OUT" "$f"
    ossl pkeyutl -sign -inkey "$f" -in "$D.sha256" -out "$T/bad.sig" \
        -pkeyopt digest:sha256
    run_fails "$desc: refused without a crash"
    run_err_like "$re" "$desc: error says what is wrong (/$re/)"
}

GOOD="$TOKEN_URI;object=rsa;type=private"
# What OpenSSL prints alone ("No supported data to decode", the file name) must
# not satisfy these: the provider has to say it was a key reference file.
# (Avoid "p11id" and "uri" here: the temp dir and OpenSSL's own lines have them.)
REF='key reference|reference file|PKCS#11 PROVIDER URI|PKCS#11 Provider URI'
bad "base64|bad end line|$REF" "bad base64" --bad-base64 "$GOOD"
bad "truncat|$REF" "DER truncated by 5 bytes" --truncate 5 "$GOOD"
bad "trailing|$REF" "garbage after the DER" --trailing 0000ff "$GOOD"
bad "$REF" "URI as OCTET STRING, not UTF8String" --uri-tag octet "$GOOD"
bad "$REF" "description as INTEGER, not VisibleString" \
    --desc-tag integer "$GOOD"
bad "$REF" "SET instead of SEQUENCE" --outer-tag set "$GOOD"
bad "$REF" "description missing" --no-desc "$GOOD"
bad 'no (private )?key|not found|no .*match|nosuchkey' \
    "URI that matches no key" "$TOKEN_URI;object=nosuchkey;type=private"
bad 'no (private )?key|not found|no .*match|no token|nosuchtoken' \
    "URI naming a token that does not exist" \
    "pkcs11:token=nosuchtoken;object=rsa;type=private"
bad 'unknown attribute.*foo|foo.*unknown' \
    "URI with an unknown attribute" "pkcs11:foo=bar"
bad 'file:/etc/passwd|scheme|not a pkcs11' \
    "URI that is not a pkcs11: URI" "file:/etc/passwd"
bad "empty|$REF" "empty URI" ""

done_testing
