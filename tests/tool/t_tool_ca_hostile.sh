#!/usr/bin/env bash
# t_tool_ca_hostile.sh: p11id ca sign with hostile requests. A request that
# asks to be a CA, for name constraints, for unknown critical extensions or
# other key usages gets exactly its profile and no more; a request with a
# bad signature, invalid DER, too many or malformed names (NUL bytes,
# otherName, bad IP lengths, wildcards), a weak key, an unknown subject
# attribute or the CA's own key is refused: no certificate, no ledger row.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/ca_lib.sh"
ca_lib_require
t_setup
ca_lib_setup

tool_ok "ca init" ca init "$TOK" --subject "CN=Hostile Test CA" --days 30 \
    --type rsa:3072 -o "$CA"

# granted NAME PROFILE DESC [ca sign options]: issued; the text of the
# certificate is in $T/NAME.crt.txt; it is not a CA and cannot sign.
granted()
{
    local name=$1 profile=$2 desc=$3
    shift 3
    ca_sign "$name" "$profile" "$@"
    run_ok "$desc: issued under the $profile profile" || return 0
    cp "$RUN_ERR" "$T/$name.err"
    cert_text "$T/$name.crt"
    file_like "$T/$name.crt.txt" 'CA:FALSE' "$desc: the certificate is CA:FALSE"
    file_unlike "$T/$name.crt.txt" 'Certificate Sign|CRL Sign' \
        "$desc: no certificate or CRL signing"
}

# refused NAME ERE DESC [ca sign options]: exit 1, the reason, nothing made.
refused()
{
    local name=$1 re=$2 desc=$3 rows
    shift 3
    rows=$(ledger_rows "$LEDGER")
    ca_sign "$name" server "$@"
    if [ "$RUN_RC" -eq 1 ] && ! run_crashed && grep -Eqi -- "$re" "$RUN_ERR"; then
        pass "$desc: refused"
    else
        fail "$desc: refused" "expected exit 1 and /$re/"
        _run_diag
    fi
    if [ ! -e "$T/$name.crt" ] && [ "$(ledger_rows "$LEDGER")" = "$rows" ]; then
        pass "$desc: no certificate, no ledger row"
    else
        fail "$desc: no certificate, no ledger row"
    fi
}

# der_san HEX...: an -addext value putting raw DER in subjectAltName.
der_san()
{
    printf 'subjectAltName=DER:%s' "$(printf '%s' "$@" | sed 's/../&:/g; s/:$//')"
}

# hex STRING: its bytes in hex.
hex()
{
    printf '%s' "$1" | od -An -tx1 | tr -d ' \n'
}

# --- asks for more than a leaf: never granted ------------------------------------
soft_csr "$T/ca-true.csr" "/CN=wants to be a CA" \
    -addext 'basicConstraints=critical,CA:TRUE' \
    -addext 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature' \
    -addext 'subjectAltName=DNS:ca-true.example' || bail_out "openssl req failed"
granted ca-true server "CA:TRUE request"
file_like "$T/ca-true.err" 'asks for basicConstraints CA:TRUE.*not granted' \
    "CA:TRUE request: the refusal to obey is reported"
# The leaf tries to act as a CA anyway: its "sub-certificate" must not verify.
ossl_sw x509 -req -in "$T/ca-true.csr" -CA "$T/ca-true.crt" -CAkey "$T/ca-true.csr.key" \
    -set_serial 7 -days 1 -out "$T/sub.crt"
ossl_sw verify -CAfile "$CA" -untrusted "$T/ca-true.crt" "$T/sub.crt"
run_fails "a certificate signed by the CA:TRUE requester does not verify"

soft_csr "$T/nc.csr" "/CN=constrainer" \
    -addext 'nameConstraints=critical,permitted;DNS:.example.com' \
    -addext 'subjectAltName=DNS:nc.example.com' || bail_out "openssl req failed"
granted nc server "nameConstraints request"
file_unlike "$T/nc.crt.txt" 'Name Constraints' "nameConstraints request: none in the certificate"
file_like "$T/nc.err" 'nameConstraints \(critical\)' "nameConstraints request: reported"

soft_csr "$T/crit.csr" "/CN=unknown critical" \
    -addext '1.3.6.1.4.1.55555.7=critical,ASN1:UTF8String:obey me' \
    -addext 'subjectAltName=DNS:crit.example' || bail_out "openssl req failed"
granted crit server "unknown critical extension"
file_unlike "$T/crit.crt.txt" '1\.3\.6\.1\.4\.1\.55555|obey me' \
    "unknown critical extension: not copied"
file_like "$T/crit.err" '1\.3\.6\.1\.4\.1\.55555\.7 \(critical\)' \
    "unknown critical extension: reported by OID"

soft_csr "$T/eku.csr" "/CN=code signer" \
    -addext 'extendedKeyUsage=codeSigning,OCSPSigning,serverAuth' || bail_out "openssl req failed"
granted eku client "other extendedKeyUsages"
file_like "$T/eku.crt.txt" '^ *TLS Web Client Authentication$' \
    "other extendedKeyUsages: exactly the profile's clientAuth"

soft_csr "$T/pathlen.csr" "/CN=pathlen" \
    -addext 'basicConstraints=CA:FALSE,pathlen:5' || bail_out "openssl req failed"
granted pathlen client "basicConstraints with a path length"
file_unlike "$T/pathlen.crt.txt" 'pathlen:' "a requested path length is not copied"

# --- names ----------------------------------------------------------------------------
sans=$(for i in $(seq 1 1000); do printf 'DNS:h%d.example,' "$i"; done)
soft_csr "$T/many.csr" "/CN=many" -addext "subjectAltName=${sans%,}" \
    || bail_out "openssl req failed"
refused many '1000 subjectAltNames: at most 100' "1000 subjectAltNames"
sans=$(for i in $(seq 1 101); do printf 'DNS:h%d.example,' "$i"; done)
soft_csr "$T/n101.csr" "/CN=n101" -addext "subjectAltName=${sans%,}" \
    || bail_out "openssl req failed"
refused n101 '101 subjectAltNames' "101 subjectAltNames"
sans=$(for i in $(seq 1 100); do printf 'DNS:h%d.example,' "$i"; done)
soft_csr "$T/n100.csr" "/CN=n100" -addext "subjectAltName=${sans%,}" \
    || bail_out "openssl req failed"
granted n100 server "100 subjectAltNames"
file_like "$T/n100.crt.txt" 'DNS:h100\.example' "100 subjectAltNames: all issued"

name=$(hex 'good.example')00$(hex '.evil.example')
soft_csr "$T/nul.csr" "/CN=nul" -addext "$(der_san 301b 8219 "$name")" \
    || bail_out "openssl req failed"
refused nul 'NUL byte' "a DNS name with an embedded NUL"
soft_csr "$T/nulcn.csr" "/CN=nul" \
    -addext "$(der_san 3010 820e "$(hex 'a.example')00$(hex 'evil')")" \
    || bail_out "openssl req failed"
refused nulcn 'NUL byte' "another embedded NUL"
soft_csr "$T/ip5.csr" "/CN=ip5" -addext "$(der_san 3007 8705 0102030405)" \
    || bail_out "openssl req failed"
refused ip5 'IP subjectAltName of 5 bytes' "an IP name of 5 bytes"
soft_csr "$T/upn.csr" "/CN=upn" \
    -addext 'subjectAltName=otherName:1.3.6.1.4.1.311.20.2.3;UTF8:admin@example.com' \
    || bail_out "openssl req failed"
refused upn 'otherName' "an otherName (UPN) name"
soft_csr "$T/under.csr" "/CN=under" -addext 'subjectAltName=DNS:bad_name.example' \
    || bail_out "openssl req failed"
refused under "'_' is not allowed" "a DNS name with an underscore"
soft_csr "$T/idn.csr" "/CN=idn" -addext "$(der_san 3008 8206 "$(hex 'ex')c3a9$(hex '.de')")" \
    || bail_out "openssl req failed"
refused idn "not allowed in a host name" "a DNS name with non-ASCII bytes"
soft_csr "$T/email.csr" "/CN=email" -addext 'subjectAltName=email:no-at-sign' \
    || bail_out "openssl req failed"
refused email 'not local@domain' "an email name without @"
soft_csr "$T/uri.csr" "/CN=uri" -addext 'subjectAltName=URI:no scheme here' \
    || bail_out "openssl req failed"
refused uri 'space|no scheme' "a URI with a space and no scheme"
soft_csr "$T/wild.csr" "/CN=wild" -addext 'subjectAltName=DNS:*.example.com' \
    || bail_out "openssl req failed"
refused wild 'wildcard.*--allow-wildcard' "a wildcard without --allow-wildcard"
granted wild server "a wildcard with --allow-wildcard" --allow-wildcard
file_like "$T/wild.crt.txt" 'DNS:\*\.example\.com' "the wildcard is issued when allowed"
soft_csr "$T/tld.csr" "/CN=tld" -addext 'subjectAltName=DNS:*.com' \
    || bail_out "openssl req failed"
refused tld 'at least two labels' "a wildcard over a TLD, even with --allow-wildcard" \
    --allow-wildcard
soft_csr "$T/deep.csr" "/CN=deep" -addext 'subjectAltName=DNS:a.*.example.com' \
    || bail_out "openssl req failed"
refused deep 'whole leftmost label' "a wildcard inside the name" --allow-wildcard

# --- subjects -----------------------------------------------------------------------
# openssl req skips attributes it has no name for: give it one.
printf '%s\n' 'oid_section = oids' '[oids]' 'hostileAttr = 1.3.6.1.4.1.55555.9' \
    >"$T/oid.cnf"
cat "$T/req.cnf" >>"$T/oid.cnf"
ossl_sw req -new -config "$T/oid.cnf" -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -nodes -keyout "$T/oid.key" -subj "/hostileAttr=x/CN=oid" -out "$T/oid.csr"
refused oid 'unknown attribute type 1\.3\.6\.1\.4\.1\.55555\.9' "an unknown subject attribute"
soft_csr "$T/ctl.csr" "/CN=line$(printf '\t')tab" || bail_out "openssl req failed"
refused ctl 'control character' "a control character in the subject"
soft_csr "$T/empty.csr" "/" || bail_out "openssl req failed"
refused empty 'names nobody' "no subject and no names"
soft_csr "$T/onlysan.csr" "/" -addext 'subjectAltName=DNS:onlysan.example' \
    || bail_out "openssl req failed"
granted onlysan server "an empty subject with a name"
file_like "$T/onlysan.crt.txt" 'Subject Alternative Name: critical' \
    "an empty subject makes the subjectAltName critical (RFC 5280)"

# --- signatures, encodings, keys ------------------------------------------------------
soft_csr "$T/good.csr" "/CN=good" -addext 'subjectAltName=DNS:good.example' \
    || bail_out "openssl req failed"
ossl_sw req -in "$T/good.csr" -outform DER -out "$T/good.der"
size=$(stat -c %s "$T/good.der")
cp "$T/good.der" "$T/badsig.csr"
printf '\x55' | dd of="$T/badsig.csr" bs=1 seek=$((size - 5)) conv=notrunc 2>/dev/null
refused badsig "signature does not verify" "a flipped byte in the signature"
cp "$T/good.der" "$T/badtbs.csr"
off=$(grep -abo 'good.example' "$T/good.der" | head -n 1 | cut -d: -f1)
printf 'X' | dd of="$T/badtbs.csr" bs=1 seek="$off" conv=notrunc 2>/dev/null
refused badtbs "signature does not verify" "a changed name under a kept signature"
head -c 300 /dev/urandom >"$T/random.csr"
refused random 'not a certificate request' "random bytes"
head -c $((size / 2)) "$T/good.der" >"$T/short.csr"
refused short 'not a certificate request' "a truncated request"
printf '' >"$T/nothing.csr"
refused nothing 'empty|not a certificate request' "an empty file"
ossl_sw req -new -config "$T/req.cnf" -newkey rsa:1024 -nodes -keyout "$T/weak.key" \
    -subj "/CN=weak" -out "$T/weak.csr"
refused weak 'RSA key of 1024 bits: at least 2048' "a 1024-bit RSA key"
tool_ok "csr with the CA's own key" csr "$CAKEY" --subject "CN=me again" \
    --usage server --san DNS:ca.example -o "$T/own.csr"
refused own "the CA's own key" "a request holding the CA's own key"
granted good server "the unmodified request"

is "$(sqlite3 "$LEDGER" 'PRAGMA integrity_check')" ok "the ledger is sound"

done_testing
