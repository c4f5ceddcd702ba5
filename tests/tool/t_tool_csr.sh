#!/usr/bin/env bash
# t_tool_csr.sh: p11id csr: requests signed on the token for RSA, EC and
# Ed25519 keys verify in software and hold the token key, the subject in
# both notations, the names and the usage's extensions; malformed subjects
# and names, a missing key, a wrong PIN and an unwritable or existing output
# are refused with a clear error and nothing written.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/ca_lib.sh"
ca_lib_require
t_setup
ca_lib_setup

key_gen rsa rsa2048 || bail_out "cannot generate an RSA key on the token"
key_gen ec ec256 || bail_out "cannot generate an EC key on the token"
key_gen ed ed25519 || bail_out "cannot generate an Ed25519 key on the token"

# csr_check NAME DESC: the request verifies (default provider only) and
# holds the token key; its text is in $T/NAME.csr.txt.
csr_check()
{
    ossl_sw req -in "$T/$1.csr" -verify -noout -text
    run_ok_like 'verify OK' "$2: the request's signature verifies in software"
    cp "$RUN_OUT" "$T/$1.csr.txt"
    ossl_sw req -in "$T/$1.csr" -noout -pubkey -out "$T/$1.csr.pub"
    files_equal "$(key_pub "$1")" "$T/$1.csr.pub" "$2: the request holds the token key"
}

# --- RSA server ---------------------------------------------------------------
tool_ok "csr for an RSA server key" csr "$(key_uri rsa)" \
    --subject "CN=web.example.com,O=Example\, Inc.,C=DE" \
    --san "DNS:web.example.com, DNS:www.example.com,IP:192.0.2.7" \
    --san "IP:2001:db8::1,email:ops@example.com,URI:https://example.com/a,b" \
    --usage server -o "$T/rsa.csr"
csr_check rsa "RSA server"
file_like "$T/rsa.csr.txt" 'Subject: C *= *DE, O *= *"Example, Inc\.", CN *= *web\.example\.com' \
    "RFC 4514 subject: most specific first on the command line, last in the request"
file_like "$T/rsa.csr.txt" 'DNS:web\.example\.com, DNS:www\.example\.com, IP Address:192\.0\.2\.7, IP Address:2001:DB8:0:0:0:0:0:1, email:ops@example\.com, URI:https://example\.com/a,b' \
    "every --san name is requested, a URI keeps its comma"
file_like "$T/rsa.csr.txt" 'TLS Web Server Authentication' "server usage asks for serverAuth"
file_unlike "$T/rsa.csr.txt" 'TLS Web Client Authentication' "server usage does not ask for clientAuth"
file_like "$T/rsa.csr.txt" 'Digital Signature, Key Encipherment' \
    "an RSA server key asks for digitalSignature and keyEncipherment"
file_like "$T/rsa.csr.txt" 'CA:FALSE' "the request asks for CA:FALSE"
file_like "$T/rsa.csr.txt" 'sha256WithRSAEncryption' "RSA requests are signed with SHA-256 by default"
run stat -c %a "$T/rsa.csr"
is "$(cat "$RUN_OUT")" 644 "the request file is 0644"

# --- EC client, OpenSSL's subject form, standard output ----------------------
tool_ok "csr for an EC client key to standard output" csr "$(key_uri ec)" \
    --subject "/C=DE/O=Example/OU=Ops\/Dev/CN=app client" --usage client
cp "$RUN_OUT" "$T/ec.csr"
csr_check ec "EC client"
file_like "$T/ec.csr.txt" 'Subject: C *= *DE, O *= *Example, OU *= *Ops/Dev, CN *= *app client' \
    "OpenSSL subject form, in certificate order, with an escaped slash"
file_like "$T/ec.csr.txt" 'TLS Web Client Authentication' "client usage asks for clientAuth"
file_unlike "$T/ec.csr.txt" 'Key Encipherment' "an EC key asks for no keyEncipherment"
file_unlike "$T/ec.csr.txt" 'Subject Alternative Name' "no --san: no subjectAltName requested"

tool_ok "csr --md sha384 for both usages" csr "$(key_uri ec)" --subject "CN=both" \
    --san DNS:both.example --usage both --md sha384 -o "$T/both.csr"
ossl_sw req -in "$T/both.csr" -noout -text
file_like "$RUN_OUT" 'TLS Web Server Authentication, TLS Web Client Authentication' \
    "both usages ask for serverAuth and clientAuth"
file_like "$RUN_OUT" 'ecdsa-with-SHA384' "--md sha384 is the signature digest"

# --- Ed25519 ----------------------------------------------------------------
tool_ok "csr for an Ed25519 key" csr "$(key_uri ed)" --subject "CN=ed client" \
    --usage client -o "$T/ed.csr"
csr_check ed "Ed25519"
file_like "$T/ed.csr.txt" 'Signature Algorithm: ED25519' "Ed25519 signs without a digest"
tool_refuses "--md with an Ed25519 key is refused" 1 'without a separate digest' \
    csr "$(key_uri ed)" --subject "CN=x" --usage client --md sha256 -o "$T/ed2.csr"
no_file "$T/ed2.csr" "nothing written for the refused Ed25519 --md"

# --- malformed subjects and names: usage errors, nothing written ------------
bad_san()
{
    tool_refuses "$1" 2 "$2" csr "$(key_uri ec)" --subject "CN=x" --usage server \
        --san "$3" -o "$T/bad.csr"
}
bad_san "a name without a type is refused" 'no type' 'web.example.com'
bad_san "an empty DNS label is refused" 'empty label' 'DNS:web..example.com'
bad_san "an underscore in a DNS name is refused" "'_' is not allowed" 'DNS:bad_name.example'
bad_san "a label starting with '-' is refused" "starts or ends with '-'" 'DNS:-web.example.com'
bad_san "a 64-character label is refused" 'longer than 63' \
    "DNS:$(printf 'a%.0s' {1..64}).example"
bad_san "a wildcard inside a label is refused" 'whole leftmost label' 'DNS:w*.example.com'
bad_san "a wildcard over a TLD is refused" 'two more labels|at least two labels' 'DNS:*.com'
bad_san "an IP address as DNS name is refused" 'looks like an IP' 'DNS:192.0.2.1'
bad_san "an impossible IPv4 address is refused" 'not an IPv4 or IPv6' 'IP:192.0.2.300'
bad_san "an email without @ is refused" 'not local@domain' 'email:nobody'
bad_san "a URI without a scheme is refused" 'no scheme' 'URI:example.com/path'
bad_san "a URI with a space is refused" 'space' 'URI:https://example.com/a b'
bad_san "a repeated name is refused" 'repeats' 'DNS:a.example,DNS:a.example'
no_file "$T/bad.csr" "nothing written for a refused name"
tool_refuses "a subject item without '=' is refused" 2 'not ATTRIBUTE=value' \
    csr "$(key_uri ec)" --subject "CN=x,Example" --usage client -o "$T/bad.csr"
tool_refuses "an unknown subject attribute is refused" 2 'unknown attribute "XX"' \
    csr "$(key_uri ec)" --subject "/XX=y/CN=x" --usage client -o "$T/bad.csr"
tool_refuses "a country of more than two letters is refused" 2 'not a valid C' \
    csr "$(key_uri ec)" --subject "/C=Germany/CN=x" --usage client -o "$T/bad.csr"
tool_refuses "an empty subject value is refused" 2 'empty value' \
    csr "$(key_uri ec)" --subject "/CN=" --usage client -o "$T/bad.csr"
tool_refuses "an unknown usage is refused" 2 'client, server or both' \
    csr "$(key_uri ec)" --subject "CN=x" --usage admin -o "$T/bad.csr"
tool_refuses "a missing --usage is a usage error" 2 'usage p11id csr|--subject and --usage' \
    csr "$(key_uri ec)" --subject "CN=x" -o "$T/bad.csr"
no_file "$T/bad.csr" "nothing written for a refused subject"
tool csr "$(key_uri ec)" --subject "CN=x" --usage server -o "$T/nosan.csr"
run_ok_like 'warning: a server request without --san' \
    "a server request without --san warns that clients match names"

# --- keys, PINs, files ------------------------------------------------------
tool_refuses "a missing key is refused, naming the URI" 1 'no private key matches.*object=nosuch' \
    csr "pkcs11:token=$TOKEN;object=nosuch" --subject "CN=x" --usage client -o "$T/nokey.csr"
no_file "$T/nokey.csr" "nothing written for a missing key"
printf '9999' >"$T/wrong-pin.txt"
run "$P11ID_TOOL" csr "$(key_uri ec)" --subject "CN=x" --usage client \
    -o "$T/pin.csr" --pin-file "$T/wrong-pin.txt"
is "$RUN_RC" 3 "a wrong PIN exits 3"
no_file "$T/pin.csr" "nothing written after a wrong PIN"
printf 'keep me\n' >"$T/exists.csr"
tool_refuses "an existing output is not overwritten" 1 'exists: not overwritten' \
    csr "$(key_uri ec)" --subject "CN=x" --usage client -o "$T/exists.csr"
is "$(cat "$T/exists.csr")" "keep me" "the existing file is untouched"
tool_ok "--force replaces it" csr "$(key_uri ec)" --subject "CN=x" --usage client \
    -o "$T/exists.csr" --force
file_like "$T/exists.csr" 'BEGIN CERTIFICATE REQUEST' "the replaced file is a request"
printf 'a file\n' >"$T/afile"
tool_refuses "an output under a file (not a directory) is refused" 1 \
    'cannot write.*Not a directory' \
    csr "$(key_uri ec)" --subject "CN=x" --usage client -o "$T/afile/x.csr"
mkdir -p "$T/ro"
chmod 555 "$T/ro"
if [ "$(id -u)" = 0 ]; then
    # root writes through mode bits: make the directory a read-only bind
    # mount in a private mount namespace instead.
    run unshare -m sh -c 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" &&
        shift && exec "$@"' sh "$T/ro" "$P11ID_TOOL" csr "$(key_uri ec)" \
        --subject "CN=x" --usage client -o "$T/ro/x.csr" --pin-file "$T/pin.txt"
    is "$RUN_RC" 1 "an unwritable directory is refused"
    file_like "$RUN_ERR" 'cannot write' "the error says the file cannot be written"
    is "$(ls -A "$T/ro")" "" "nothing left in the unwritable directory"
else
    tool_refuses "an unwritable directory is refused" 1 'cannot write' \
        csr "$(key_uri ec)" --subject "CN=x" --usage client -o "$T/ro/x.csr"
    file_like "$RUN_ERR" 'cannot write' "the error says the file cannot be written"
    is "$(ls -A "$T/ro")" "" "nothing left in the unwritable directory"
fi
tool_refuses "a missing directory is refused" 1 'cannot write.*No such file' \
    csr "$(key_uri ec)" --subject "CN=x" --usage client -o "$T/nodir/x.csr"

run "$P11ID_TOOL" help csr
run_ok_like '^usage: p11id csr KEY-URI' "p11id help csr starts with the synopsis"

done_testing
