#!/usr/bin/env bash
# tests/fuzz/make-corpus.sh: (re)makes the generated part of the seed
# corpora: key reference files written by the p11id tool for keys on a
# throw-away SoftHSM token (PEM and DER), and CSRs made with openssl from
# software keys, well-formed and hostile. Handwritten seeds (URIs, configs)
# are committed as they are. Run from a built tree:
#   bash tests/fuzz/make-corpus.sh [BUILDDIR]
set -eu
src=$(cd "$(dirname "$0")" && pwd)
build=${1:-$src/../..}
tool="$build/src/tool/p11id"
module=/usr/lib/softhsm/libsofthsm2.so
work=$(mktemp -d "${TMPDIR:-/tmp}/p11id-corpus.XXXXXX")
trap 'rm -rf "$work"' EXIT
export SOFTHSM2_CONF="$work/softhsm2.conf"
mkdir -p "$work/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\n' \
    "$work" >"$SOFTHSM2_CONF"
printf '1234' >"$work/pin.txt"

# --- keyref: PEM from the tool, and the DER inside it ---------------------
kr="$src/corpus/keyref"
mkdir -p "$kr"
softhsm2-util --init-token --free --label "fuzz token" --so-pin 5678 \
    --pin 1234 >/dev/null
pkcs11-tool --module "$module" --token-label "fuzz token" --login \
    --pin 1234 --keypairgen --key-type EC:prime256v1 --id 01 \
    --label "srv key" >/dev/null
key='pkcs11:token=fuzz%20token;object=srv%20key;type=private'
"$tool" keyfile "$key" -o "$work/plain.pem" --module "$module" \
    --pin-file "$work/pin.txt" >/dev/null
"$tool" keyfile "$key" -o "$work/module.pem" --module "$module" \
    --with-module --pin-file "$work/pin.txt" >/dev/null
"$tool" keyfile "$key" -o "$work/pin.pem" --module "$module" \
    --with-pin --pin-file "$work/pin.txt" >/dev/null 2>&1
for f in plain module pin; do
    cp "$work/$f.pem" "$kr/tool-$f.pem"
    openssl base64 -d -in <(grep -v -- '-----' "$work/$f.pem") \
        -out "$kr/tool-$f.der"
done
# A key reference after another PEM block, as in a combined file.
openssl genpkey -algorithm ed25519 -out "$work/ed.key" 2>/dev/null
openssl pkey -in "$work/ed.key" -pubout >"$kr/after-pubkey.pem"
cat "$work/plain.pem" >>"$kr/after-pubkey.pem"
# Malformed ones, from the tests' own writer.
k="python3 $src/../lib/keyref.py"
$k --uri-tag ia5 "$key" >"$kr/bad-uri-tag.pem"
$k --desc-tag utf8 "$key" >"$kr/bad-desc-tag.pem"
$k --outer-tag set "$key" --der >"$kr/bad-outer-set.der"
$k --no-desc "$key" --der >"$kr/bad-no-desc.der"
$k --truncate 3 "$key" >"$kr/bad-truncated.pem"
$k --trailing 0500 "$key" --der >"$kr/bad-trailing.der"
$k --bad-base64 "$key" >"$kr/bad-base64.pem"
$k --label "PKCS#11 PROVIDER URIX" "$key" >"$kr/other-label.pem"
$k "" >"$kr/bad-empty-uri.pem"
$k "$key?pin-value=12%2034&module-path=/usr/lib/softhsm/libsofthsm2.so" \
    --der >"$kr/query.der"
head -n 2 "$work/plain.pem" >"$kr/bad-no-end.pem"

# --- csr -------------------------------------------------------------------
cr="$src/corpus/csr"
mkdir -p "$cr"
openssl genpkey -algorithm ed25519 -out "$work/k.ed" 2>/dev/null
openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 \
    -out "$work/k.ec" 2>/dev/null
openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:2048 \
    -out "$work/k.rsa" 2>/dev/null
openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:1024 \
    -out "$work/k.rsa1024" 2>/dev/null
openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:secp256k1 \
    -out "$work/k.k1" 2>/dev/null
# csr NAME KEY SUBJECT [openssl req -addext ...]: PEM and DER.
csr()
{
    local name=$1 key=$2 subj=$3
    shift 3
    if ! openssl req -new -key "$work/$key" -subj "$subj" "$@" \
        -out "$cr/$name.pem" 2>/dev/null; then
        echo "make-corpus.sh: openssl req refused $name: left out" >&2
        rm -f "$cr/$name.pem"
        return 0
    fi
    openssl req -in "$cr/$name.pem" -outform DER -out "$cr/$name.der"
}
csr server-ed k.ed "/CN=web.example.com" \
    -addext "subjectAltName=DNS:web.example.com,IP:192.0.2.1"
csr client-ec k.ec "/O=Example/CN=alice" \
    -addext "subjectAltName=email:alice@example.com,URI:spiffe://td/alice"
csr rsa k.rsa "/C=DE/O=Example/OU=Ops/CN=host" \
    -addext "subjectAltName=DNS:host.example.com,IP:2001:db8::1"
csr no-subject k.ed "/" -addext "subjectAltName=DNS:only.example.com"
csr wildcard k.ed "/CN=wild" -addext "subjectAltName=DNS:*.example.com"
csr ca-true k.ed "/CN=evil" -addext "basicConstraints=critical,CA:TRUE"
csr ca-pathlen k.ec "/CN=evil" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:5" \
    -addext "keyUsage=critical,keyCertSign,cRLSign"
csr name-constraints k.ed "/CN=evil" \
    -addext "nameConstraints=critical,permitted;DNS:example.com" \
    -addext "subjectAltName=DNS:a.example.com"
csr eku-any k.ed "/CN=evil" \
    -addext "extendedKeyUsage=anyExtendedKeyUsage,codeSigning" \
    -addext "keyUsage=digitalSignature"
csr two-sans k.ed "/CN=two" -addext "subjectAltName=DNS:a.example.com" \
    -addext "issuerAltName=DNS:b.example.com"
csr othername k.ed "/CN=o" \
    -addext "subjectAltName=otherName:1.2.3.4;UTF8:x,DNS:a.example.com"
csr dirname k.ed "/CN=d" -addext "subjectAltName=dirName:dir_sect" \
    -config <(printf '[req]\ndistinguished_name=dn\n[dn]\n[dir_sect]\nCN=x\n')
csr rid k.ed "/CN=r" -addext "subjectAltName=RID:1.2.3.4"
csr bad-dns k.ed "/CN=b" -addext "subjectAltName=DNS:-bad-.example..com"
csr ip-like k.ed "/CN=b" -addext "subjectAltName=DNS:192.168.0.1"
csr email-bad k.ed "/CN=b" -addext "subjectAltName=email:no-at-sign"
csr uri-noscheme k.ed "/CN=b" -addext "subjectAltName=URI:example.com/x"
csr small-rsa k.rsa1024 "/CN=weak"
csr k1-curve k.k1 "/CN=k1"
csr unknown-ext k.ed "/CN=u" -addext "1.2.3.4.5=critical,DER:05:00"
csr long-value k.ed "/CN=x/description=$(printf 'a%.0s' $(seq 300))"
csr many-attrs k.ed "$(for i in $(seq 40); do printf '/OU=u%d' "$i"; done)/CN=x"
csr utf8 k.ed "/CN=Jürgen Ölmann/O=Übung" -utf8
csr ctl-cn k.ed "/CN=a$(printf '\t')b"
# A request whose signature no longer matches (one byte of the subject).
sed 's/alice/alicf/' <(openssl req -in "$cr/client-ec.pem" -outform DER | \
    openssl base64) | openssl base64 -d >"$cr/bad-signature.der"
echo "corpora written to $kr and $cr"
