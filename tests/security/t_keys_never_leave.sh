#!/usr/bin/env bash
# t_keys_never_leave.sh: every private or secret key that p11id puts on a
# token (p11id keygen of every type, ca init, renew; with certificates
# imported, a key reference file written and a certificate issued beside
# them) is CKA_SENSITIVE, not CKA_EXTRACTABLE, CKA_NEVER_EXTRACTABLE and
# CKA_ALWAYS_SENSITIVE, as pkcs11-tool (not p11id) reads them; and every way
# an OpenSSL application asks for a token private key's material (openssl
# pkey -out, -traditional, -outform DER, -text, pkcs12 -export,
# EVP_PKEY_todata, parameter getters, i2d/PKCS#8, a copy into the default
# provider) gives a key reference or a clean refusal, never key material.
. "$(dirname "$0")/../lib/common.sh"
require_cmd openssl pkcs11-tool softhsm2-util sqlite3
PROBE="$TOP_BUILDDIR/tests/security/export_probe"
[ -x "$PROBE" ] || { echo "1..0 # SKIP $PROBE not built"; exit 0; }
[ -x "${P11ID_TOOL:-}" ] || { echo "1..0 # SKIP p11id tool not built"; exit 0; }
T_TIMEOUT=120
t_setup
export P11ID_MODULE=$SOFTHSM_MODULE
TOK="pkcs11:token=$TOKEN"

tool()
{
    run "$P11ID_TOOL" "$@" --pin-file "$T/pin.txt"
}

# --- every path that creates keys ------------------------------------------------
NKEYS=0
for type in rsa:2048 rsa:3072 rsa:4096 ec:P-256 ec:P-384 ec:P-521 ed25519; do
    label=k-${type//:/-}
    tool keygen "$TOK" --type "$type" --label "$label"
    run_ok "keygen $type" && NKEYS=$((NKEYS + 1))
done
tool ca init "$TOK" --subject "CN=Leave Test CA" --days 30 --type ec:P-384 \
    --label ca -o "$T/ca.crt"
run_ok "ca init makes the CA key" && NKEYS=$((NKEYS + 1))
CAKEY="$TOK;object=ca;type=private"
tool csr "$TOK;object=k-ec-P-256" --subject CN=leaf --usage both \
    --san DNS:leaf.example -o "$T/leaf.csr"
run_ok "csr for the P-256 key"
tool ca sign "$T/leaf.csr" --ca "$CAKEY" --ca-cert "$T/ca.crt" --profile both \
    --days 5 -o "$T/leaf.crt"
run_ok "ca sign"
tool import "$TOK;object=k-ec-P-256" "$T/leaf.crt" --chain "$T/ca.crt"
run_ok "import the certificate and its chain"
tool keyfile "$TOK;object=k-ec-P-256" -o "$T/leaf.keyref.pem"
run_ok "keyfile"
tool renew "$TOK;object=k-ec-P-256" --label renewed --ca "$CAKEY" \
    --ca-cert "$T/ca.crt" --days 5
run_ok "renew generates a new key and issues its certificate" \
    && NKEYS=$((NKEYS + 1))

# --- walk every key object with pkcs11-tool --------------------------------------
run pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$TOKEN" --login \
    --pin "$PIN" --list-objects
run_ok "pkcs11-tool lists the token's objects"
cp "$RUN_OUT" "$T/objects.txt"
# One line per private or secret key: "<label>|<access flags>".
awk '
    /^[^ ]/ { if (inkey) print label "|" access
              inkey = ($0 ~ /^(Private|Secret) Key Object/); label = ""; access = "" }
    inkey && $1 == "label:" { sub(/^ *label: */, ""); label = $0 }
    inkey && $1 == "Access:" { sub(/^ *Access: */, ""); access = $0 }
    END { if (inkey) print label "|" access }
' "$T/objects.txt" >"$T/keys.txt"
is "$(grep -c . "$T/keys.txt")" "$NKEYS" "every key made is on the token ($NKEYS private keys)"
bad=0
while IFS='|' read -r label access; do
    IFS=',' read -ra flags <<<"$access"
    declare -A have=()
    for f in "${flags[@]}"; do
        f=${f# }
        have[$f]=1
    done
    if [ -n "${have[sensitive]:-}" ] && [ -n "${have[always sensitive]:-}" ] \
        && [ -n "${have[never extractable]:-}" ] && [ -z "${have[extractable]:-}" ]; then
        :
    else
        bad=$((bad + 1))
        diag "key \"$label\": Access: $access"
    fi
    unset have
done <"$T/keys.txt"
is "$bad" 0 "every key is SENSITIVE, ALWAYS_SENSITIVE, NEVER_EXTRACTABLE and not EXTRACTABLE"

# --- OpenSSL asks for the private half -----------------------------------------------
# no_private_text FILE DESC: FILE (openssl pkey -text output) names no
# private component.
no_private_text()
{
    if grep -Eqi '^(priv|privateExponent|prime1|prime2|exponent1|exponent2|coefficient):' "$1"; then
        fail "$2" "private components printed"
        diag_file "$1" 10
    else
        pass "$2"
    fi
}

# is_reference FILE DESC: FILE is a key reference (PEM or DER) holding a URI,
# and the default provider finds no private key in it.
is_reference()
{
    local f=$1 d=$2 inform=PEM
    head -c 40 "$f" | grep -q -- '-----BEGIN' || inform=DER
    ossl_sw asn1parse -inform "$inform" -in "$f"
    if [ "$RUN_RC" -eq 0 ] && grep -q 'UTF8STRING *:pkcs11:' "$RUN_OUT" \
        && [ "$(grep -c 'prim:' "$RUN_OUT")" -eq 2 ]; then
        ossl_sw pkey -inform "$inform" -in "$f" -noout
        if [ "$RUN_RC" -ne 0 ]; then
            pass "$d"
            return 0
        fi
        fail "$d" "the default provider reads a private key from it"
        return 1
    fi
    fail "$d" "not a key reference"
    _run_diag
}

for k in k-rsa-2048 k-ec-P-384 k-ed25519 ca; do
    uri="$TOK;object=$k;type=private"
    ossl pkey -in "$uri" -out "$T/$k.pem"
    if [ "$RUN_RC" -eq 0 ]; then
        is_reference "$T/$k.pem" "$k: openssl pkey -out writes a key reference"
    else
        run_fails "$k: openssl pkey -out refuses cleanly"
    fi
    ossl pkey -in "$uri" -traditional -out "$T/$k.trad.pem"
    if [ "$RUN_RC" -eq 0 ]; then
        is_reference "$T/$k.trad.pem" "$k: openssl pkey -traditional writes a key reference"
    else
        run_fails "$k: openssl pkey -traditional refuses cleanly"
    fi
    ossl pkey -in "$uri" -outform DER -out "$T/$k.der"
    if [ "$RUN_RC" -eq 0 ] && [ -s "$T/$k.der" ]; then
        is_reference "$T/$k.der" "$k: openssl pkey -outform DER writes a key reference"
    else
        run_fails "$k: openssl pkey -outform DER refuses cleanly"
    fi
    ossl pkey -in "$uri" -text -noout
    cp "$RUN_OUT" "$T/$k.txt"
    no_private_text "$T/$k.txt" "$k: openssl pkey -text prints no private component"
    run "$PROBE" "$uri"
    cp "$RUN_OUT" "$T/$k.probe"
    if [ "$RUN_RC" -eq 0 ] && grep -q '^leaks 0$' "$RUN_OUT"; then
        pass "$k: EVP_PKEY_todata, parameter getters, PEM/DER/PKCS#8 writers and a default-provider copy give no key material"
    else
        fail "$k: EVP_PKEY_todata, parameter getters, PEM/DER/PKCS#8 writers and a default-provider copy give no key material"
        _run_diag
    fi
done

# The probe itself: a software key in a file leaks through every door.
ossl_sw genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/soft.key"
OPENSSL_CONF="$T/default-only.cnf" run "$PROBE" "$T/soft.key"
if [ "$RUN_RC" -eq 1 ] && [ "$(grep -c ': LEAK' "$RUN_OUT")" -ge 5 ]; then
    pass "control: the probe finds the material of a software key"
else
    fail "control: the probe finds the material of a software key"
    _run_diag
fi

# PKCS#12: the token key cannot be put in a file.
ossl pkcs12 -export -inkey "$TOK;object=k-ec-P-256;type=private" -in "$T/leaf.crt" \
    -passout pass:x -out "$T/leaf.p12"
if [ "$RUN_RC" -ne 0 ]; then
    run_fails "openssl pkcs12 -export of a token key refuses cleanly"
else
    ossl_sw pkcs12 -in "$T/leaf.p12" -passin pass:x -nodes -nocerts
    if grep -q 'PRIVATE KEY-----' "$RUN_OUT"; then
        fail "openssl pkcs12 -export of a token key refuses cleanly" "a private key came out"
    else
        pass "openssl pkcs12 -export of a token key holds no private key"
    fi
fi

done_testing
