#!/usr/bin/env bash
# t_ca_safety.sh: what tests/tool/t_tool_ca_hostile.sh and
# t_tool_ca_ledger.sh leave out. (They cover: CA:TRUE, name constraints,
# unknown critical extensions, other EKUs, path lengths one at a time; 101
# and 1000 names; NUL bytes, otherName, bad IPs, wildcards; flipped
# signature and TBS bytes, random and truncated input, weak keys, the CA's
# own key; eight concurrent signers with distinct serials; SIGKILL during
# signing with integrity_check and certificate files matching rows.)
#
# Here: every extension an attacker could want in one request, under each
# profile, with the issued certificate's whole extension list checked
# against the profile; 10000 names (bounded time, nothing issued); a second
# subjectAltName extension smuggling a wildcard; a subjectAltName of broken
# DER under a valid signature; BER and trailing bytes around a good request;
# a PEM holding two requests; and, over everything this test issued, unique
# serials and certificates equal to their ledger rows.
. "$(dirname "$0")/../lib/common.sh"
. "$TOP_SRCDIR/tests/tool/ca_lib.sh"
ca_lib_require
t_setup
ca_lib_setup

tool_ok "ca init" ca init "$TOK" --subject "CN=Safety CA" --days 30 \
    --type ec:P-256 -o "$CA"

# ext_list CERT: the names of the certificate's extensions, one a line, with
# " critical" when marked so.
ext_list()
{
    ossl_sw x509 -in "$1" -noout -text
    awk '/X509v3 extensions:/ { on = 1; next }
         /Signature Algorithm|Signature Value/ { on = 0 }
         on && /^            [^ ]/ { sub(/^ +/, ""); sub(/: *$/, ""); print }' "$RUN_OUT"
}

# only_profile NAME PROFILE DESC: the certificate has exactly the profile's
# extensions: CA:FALSE and digitalSignature (both critical), the EKU of the
# profile, the key identifiers and the subjectAltName; nothing else.
only_profile()
{
    local name=$1 profile=$2 d=$3 crt=$T/$1.crt exts want_eku bad=
    exts=$(ext_list "$crt" | sort)
    while IFS= read -r e; do
        case "$e" in
            "X509v3 Basic Constraints: critical" | "X509v3 Key Usage: critical" \
                | "X509v3 Extended Key Usage" | "X509v3 Subject Key Identifier" \
                | "X509v3 Authority Key Identifier" \
                | "X509v3 Subject Alternative Name" \
                | "X509v3 Subject Alternative Name: critical") ;;
            *) bad="$bad [$e]" ;;
        esac
    done <<<"$exts"
    ossl_sw x509 -in "$crt" -noout -ext basicConstraints,keyUsage,extendedKeyUsage
    cp "$RUN_OUT" "$T/$name.ext"
    case "$profile" in
        server) want_eku='TLS Web Server Authentication' ;;
        client) want_eku='TLS Web Client Authentication' ;;
        both) want_eku='TLS Web Server Authentication, TLS Web Client Authentication' ;;
    esac
    grep -qx '    CA:FALSE' "$T/$name.ext" || bad="$bad [not CA:FALSE]"
    grep -qx '    Digital Signature' "$T/$name.ext" || bad="$bad [key usage is not digitalSignature alone]"
    grep -qx "    $want_eku" "$T/$name.ext" || bad="$bad [EKU is not exactly $profile]"
    if [ -z "$bad" ]; then
        pass "$d: exactly the $profile profile's extensions"
    else
        fail "$d: exactly the $profile profile's extensions" "unexpected:$bad"
        diag_file "$T/$name.ext" 20
    fi
}

# nothing_issued NAME ROWS DESC: no certificate file, the ledger unchanged.
nothing_issued()
{
    if [ ! -e "$T/$1.crt" ] && [ "$(ledger_rows "$LEDGER")" = "$2" ]; then
        pass "$3: no certificate, no ledger row"
    else
        fail "$3: no certificate, no ledger row"
    fi
}

# --- every extension at once -----------------------------------------------------
cat >"$T/greedy.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
req_extensions = ext
[dn]
CN = greedy.example
[ext]
basicConstraints = critical, CA:TRUE, pathlen:9
keyUsage = critical, keyCertSign, cRLSign, digitalSignature, keyAgreement, dataEncipherment
extendedKeyUsage = anyExtendedKeyUsage, codeSigning, OCSPSigning, timeStamping, serverAuth, clientAuth
nameConstraints = critical, permitted;DNS:.greedy.example
policyConstraints = critical, requireExplicitPolicy:0
inhibitAnyPolicy = critical, 0
certificatePolicies = 2.5.29.32.0
authorityInfoAccess = OCSP;URI:http://evil.example/ocsp, caIssuers;URI:http://evil.example/ca.crt
crlDistributionPoints = URI:http://evil.example/crl
subjectKeyIdentifier = 0102030405060708090a0b0c0d0e0f1011121314
issuerAltName = DNS:issuer.evil.example
subjectAltName = DNS:greedy.example
1.3.6.1.4.1.11129.2.4.3 = critical, ASN1:NULL
1.3.6.1.5.5.7.1.24 = DER:3003020105
2.5.29.9 = DER:3000
EOF
ossl_sw req -new -config "$T/greedy.cnf" -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -nodes -keyout "$T/greedy.key" -out "$T/greedy.csr"
run_ok "a request asking for every extension at once" || bail_out "openssl req failed"
for profile in server client both; do
    cp "$T/greedy.csr" "$T/greedy-$profile.csr"
    ca_sign "greedy-$profile" "$profile"
    if run_ok "greedy request under the $profile profile is issued"; then
        only_profile "greedy-$profile" "$profile" "greedy request, $profile"
        ossl_sw x509 -in "$T/greedy-$profile.crt" -noout -ext subjectKeyIdentifier
        file_unlike "$RUN_OUT" '01:02:03:04:05:06:07:08' \
            "greedy request, $profile: the requested key identifier is not copied"
    fi
done
# The greedy leaf, used as a CA anyway: what it signs does not verify.
ossl_sw x509 -req -in "$T/greedy.csr" -CA "$T/greedy-both.crt" -CAkey "$T/greedy.key" \
    -set_serial 9 -days 1 -out "$T/greedy-sub.crt"
ossl_sw verify -CAfile "$CA" -untrusted "$T/greedy-both.crt" "$T/greedy-sub.crt"
run_fails "a certificate signed by the greedy leaf does not verify"

# --- 10000 names -------------------------------------------------------------------
{
    printf '%s\n' '[req]' 'distinguished_name = dn' 'prompt = no' \
        'req_extensions = ext' '[dn]' 'CN = many' '[ext]' 'subjectAltName = @alt' '[alt]'
    for i in $(seq 1 10000); do printf 'DNS.%d = h%d.example\n' "$i" "$i"; done
} >"$T/many.cnf"
ossl_sw req -new -config "$T/many.cnf" -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -nodes -keyout "$T/many.key" -out "$T/many.csr"
run_ok "a request with 10000 subjectAltNames" || bail_out "openssl req failed"
rows=$(ledger_rows "$LEDGER")
start=$(date +%s%N)
ca_sign many server
ms=$(( ($(date +%s%N) - start) / 1000000 ))
if [ "$RUN_RC" -eq 1 ] && ! run_crashed && grep -qi 'subjectAltNames' "$RUN_ERR"; then
    pass "10000 subjectAltNames: refused"
else
    fail "10000 subjectAltNames: refused"
    _run_diag
fi
nothing_issued many "$rows" "10000 subjectAltNames"
[ "$ms" -lt 20000 ] && pass "10000 subjectAltNames: refused in ${ms} ms (< 20 s)" \
    || fail "10000 subjectAltNames: refused in ${ms} ms (< 20 s)"

# --- a second subjectAltName extension smuggles a wildcard ---------------------------
# 2.5.29.17 by number is not merged with subjectAltName by name: the request
# holds two SAN extensions, the second with DNS:*.evil.example.
wild=$(printf '*.evil.example' | od -An -tx1 | tr -d ' \n')
ossl_sw req -new -config "$T/req.cnf" -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -nodes -keyout "$T/twosan.key" -subj "/CN=twosan" -out "$T/twosan.csr" \
    -addext 'subjectAltName=DNS:good.example' \
    -addext "2.5.29.17=DER:3010820e$wild"
run_ok "a request with two subjectAltName extensions" || bail_out "openssl req failed"
ossl_sw req -in "$T/twosan.csr" -noout -text
if [ "$(grep -c 'Subject Alternative Name' "$RUN_OUT")" -eq 2 ]; then
    pass "the request really holds two subjectAltName extensions"
else
    fail "the request really holds two subjectAltName extensions"
fi
rows=$(ledger_rows "$LEDGER")
ca_sign twosan server
if [ "$RUN_RC" -ne 0 ]; then
    run_fails "two subjectAltName extensions: refused cleanly"
    nothing_issued twosan "$rows" "two subjectAltName extensions"
else
    ossl_sw x509 -in "$T/twosan.crt" -noout -text
    if grep -q 'evil' "$RUN_OUT"; then
        fail "two subjectAltName extensions: the unchecked wildcard is not issued"
    else
        pass "two subjectAltName extensions: the unchecked wildcard is not issued"
    fi
    is "$(grep -c 'Subject Alternative Name' "$RUN_OUT")" 1 \
        "two subjectAltName extensions: the certificate has one"
fi

# --- encodings ---------------------------------------------------------------------------
# subjectAltName holding broken DER (a length past its end), validly signed.
ossl_sw req -new -config "$T/req.cnf" -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -nodes -keyout "$T/brokensan.key" -subj "/CN=brokensan" -out "$T/brokensan.csr" \
    -addext "subjectAltName=DER:3010820e$(printf 'a.example' | od -An -tx1 | tr -d ' \n')"
run_ok "a validly signed request whose subjectAltName is broken DER" \
    || bail_out "openssl req failed"
rows=$(ledger_rows "$LEDGER")
ca_sign brokensan server
run_fails "broken subjectAltName DER: refused cleanly"
run_err_like 'subjectAltName cannot be decoded' "broken subjectAltName DER: the reason is given"
nothing_issued brokensan "$rows" "broken subjectAltName DER"

soft_csr "$T/good.csr" "/CN=good" -addext 'subjectAltName=DNS:good.example' \
    || bail_out "openssl req failed"
ossl_sw req -in "$T/good.csr" -outform DER -out "$T/good.der"
# BER: the outer SEQUENCE with an indefinite length (the signed part is
# unchanged, so the signature still verifies).
python3 - "$T/good.der" "$T/ber.csr" <<'EOF'
import sys
d = open(sys.argv[1], "rb").read()
assert d[0] == 0x30
n = d[1]
hdr = 2 if n < 0x80 else 2 + (n & 0x7f)
open(sys.argv[2], "wb").write(b"\x30\x80" + d[hdr:] + b"\x00\x00")
EOF
for v in ber trailing; do
    [ "$v" = trailing ] && { cp "$T/good.der" "$T/trailing.csr"; printf 'GARBAGE' >>"$T/trailing.csr"; }
    rows=$(ledger_rows "$LEDGER")
    ca_sign "$v" server
    if [ "$RUN_RC" -ne 0 ]; then
        run_fails "$v request: refused cleanly"
        nothing_issued "$v" "$rows" "$v request"
    else
        only_profile "$v" server "$v request, issued"
    fi
done
# A PEM file with two requests: only one identity may come out of it.
soft_csr "$T/second.csr" "/CN=second" -addext 'subjectAltName=DNS:second.example' \
    || bail_out "openssl req failed"
cat "$T/good.csr" "$T/second.csr" >"$T/double.csr"
rows=$(ledger_rows "$LEDGER")
ca_sign double server
if [ "$RUN_RC" -ne 0 ]; then
    run_fails "two requests in one file: refused cleanly"
    nothing_issued double "$rows" "two requests in one file"
else
    is "$(ledger_rows "$LEDGER")" $((rows + 1)) "two requests in one file: one certificate"
fi

# --- the ledger after all of it ------------------------------------------------------------
is "$(sqlite3 "$LEDGER" 'PRAGMA integrity_check')" ok "the ledger passes integrity_check"
is "$(sqlite3 "$LEDGER" 'SELECT count(*) - count(DISTINCT serial) FROM certs')" 0 \
    "every serial in the ledger is unique"
mismatch=0
for crt in "$T"/*.crt; do
    [ "$crt" = "$CA" ] && continue
    case "$crt" in *greedy-sub.crt) continue ;; esac
    serial=$(OPENSSL_CONF="$T/default-only.cnf" openssl x509 -in "$crt" -noout \
        -serial | cut -d= -f2)
    ossl_sw x509 -in "$crt" -outform DER -out "$T/cmp.der"
    row=$(sqlite3 "$LEDGER" "SELECT hex(der) FROM certs WHERE upper(serial) = upper('$serial')")
    [ "$row" = "$(od -An -tx1 "$T/cmp.der" | tr -d ' \n' | tr a-f A-F)" ] || {
        mismatch=$((mismatch + 1))
        diag "$crt (serial $serial) does not match its ledger row"
    }
done
is "$mismatch" 0 "every certificate issued here is byte for byte its ledger row"

done_testing
