# tests/lib/common.sh: TAP output, private SoftHSM tokens, keys, OpenSSL configs
# and background processes for the p11id shell tests. Source it; do not run it.
#
# A test script looks like:
#   . "$(dirname "$0")/../lib/common.sh"
#   require_cmd openssl pkcs11-tool softhsm2-util
#   t_setup                      # $T, SoftHSM token $TOKEN, $T/openssl.cnf
#   key_gen srv rsa2048          # key pair on the token, public key in $T/keys
#   ossl_ok "sign with token key" pkeyutl -sign -inkey "$(key_uri srv)" ...
#   done_testing
#
# Environment the tests read (automake's tests.am exports the first four):
#   TOP_SRCDIR, TOP_BUILDDIR, P11ID_PROVIDER_DIR, P11ID_PROVIDER_SO
#   T_TIMEOUT          seconds one command may run (default 60)
#   P11ID_KEEP_TMP=1   keep $T after the test, for debugging
#   P11ID_TEST_SOFTKEYS=1  check the test scripts themselves without the provider:
#                      keys are software files and key_uri names the file; points
#                      that only make sense on a token are skipped with that reason.
#
# Nothing here touches the system SoftHSM token directory: every token lives
# under $T, reached through $T/softhsm2.conf.
#
# Variables set here for the scripts that source this file:
# shellcheck disable=SC2034

# --- locations ----------------------------------------------------------------

if [ -z "${TOP_SRCDIR:-}" ]; then
    TOP_SRCDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
fi
if [ -z "${TOP_BUILDDIR:-}" ]; then
    TOP_BUILDDIR=$TOP_SRCDIR
fi
: "${P11ID_PROVIDER_DIR:=$TOP_BUILDDIR/src/provider/.libs}"
: "${P11ID_PROVIDER_SO:=$P11ID_PROVIDER_DIR/p11id.so}"
: "${T_TIMEOUT:=60}"
: "${SOFTHSM_MODULE:=/usr/lib/softhsm/libsofthsm2.so}"
: "${PKCS11_SPY_MODULE:=/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so}"
export TOP_SRCDIR TOP_BUILDDIR P11ID_PROVIDER_DIR P11ID_PROVIDER_SO
T_LIBDIR="$TOP_SRCDIR/tests/lib"

PIN=1234
SO_PIN=12345678
TOKEN=p11id-test

# --- TAP ----------------------------------------------------------------------

T_N=0           # test points printed so far
T_FAILED=0      # of which "not ok"
T_DONE=0        # done_testing (or a skip-all plan) was printed
T=              # private temp dir, made by t_setup
T_PIDS=()       # background processes started by bg_start, stopped on exit

t_softkeys()
{
    [ "${P11ID_TEST_SOFTKEYS:-0}" = 1 ]
}

# TAP descriptions: one line, '#' escaped (an unescaped one starts a directive).
_t_desc()
{
    local d=${1//$'\n'/ }
    printf '%s' "${d//#/\\#}"
}

diag()
{
    local line
    while IFS= read -r line; do
        printf '# %s\n' "$line"
    done <<<"$*"
}

# diag_file FILE [MAX_LINES]: the tail of FILE as TAP comments (a hex dump of
# the start of a binary file). Every line printed ends in a newline.
diag_file()
{
    local f=$1 max=${2:-20}
    [ -s "$f" ] || return 0
    if ! LC_ALL=C grep -q '[^[:print:][:space:]]' "$f" 2>/dev/null; then
        printf '# --- %s (last %s lines)\n' "${f##*/}" "$max"
        tail -n "$max" "$f" | LC_ALL=C tr -d '\r' | awk '{ print "#   " $0 }'
    else
        printf '# --- %s (binary, %s bytes, first 64)\n' "${f##*/}" \
            "$(wc -c <"$f")"
        od -An -tx1 -N64 "$f" | awk '{ print "#  " $0 }'
    fi
}

pass()
{
    T_N=$((T_N + 1))
    printf 'ok %d - %s\n' "$T_N" "$(_t_desc "$1")"
}

# fail DESC [DIAG...]
fail()
{
    T_N=$((T_N + 1))
    T_FAILED=$((T_FAILED + 1))
    printf 'not ok %d - %s\n' "$T_N" "$(_t_desc "$1")"
    shift
    [ $# -gt 0 ] && diag "$*"
    return 0
}

# skip REASON DESC: one skipped point; every skip says why.
skip()
{
    T_N=$((T_N + 1))
    printf 'ok %d - %s # SKIP %s\n' "$T_N" "$(_t_desc "$2")" "$(_t_desc "$1")"
}

# skip_n COUNT REASON DESC: several skipped points at once.
skip_n()
{
    local i
    for ((i = 0; i < $1; i++)); do
        skip "$2" "$3"
    done
}

bail_out()
{
    printf 'Bail out! %s\n' "$(_t_desc "$*")"
    T_DONE=1
    exit 1
}

done_testing()
{
    printf '1..%d\n' "$T_N"
    T_DONE=1
    exit 0
}

# require_cmd CMD...: skip the whole script when a tool is missing.
require_cmd()
{
    local c
    for c in "$@"; do
        if ! command -v "$c" >/dev/null 2>&1; then
            printf '1..0 # SKIP no %s\n' "$c"
            T_DONE=1
            exit 0
        fi
    done
}

# require_file PATH WHAT: skip the whole script when a file is missing.
require_file()
{
    if [ ! -e "$1" ]; then
        printf '1..0 # SKIP no %s (%s)\n' "$2" "$1"
        T_DONE=1
        exit 0
    fi
}

# is GOT WANT DESC
is()
{
    if [ "$1" = "$2" ]; then
        pass "$3"
    else
        fail "$3" "got:  '$1'"
        diag "want: '$2'"
    fi
}

# files_equal A B DESC
files_equal()
{
    if [ -f "$1" ] && [ -f "$2" ] && cmp -s "$1" "$2"; then
        pass "$3"
    else
        fail "$3" "files differ: $1 $2"
        [ -f "$1" ] && diag_file "$1" 8
        [ -f "$2" ] && diag_file "$2" 8
    fi
}

# file_like FILE ERE DESC: FILE has a line matching ERE (case-insensitive).
file_like()
{
    if [ -f "$1" ] && grep -Eqi -- "$2" "$1"; then
        pass "$3"
    else
        fail "$3" "no line matches /$2/ in ${1##*/}"
        diag_file "$1"
    fi
}

# file_unlike FILE ERE DESC
file_unlike()
{
    if [ -f "$1" ] && ! grep -Eqi -- "$2" "$1"; then
        pass "$3"
    else
        fail "$3" "a line matches /$2/ in ${1##*/}"
        [ -f "$1" ] && grep -Ei -- "$2" "$1" | head -n 5 | sed 's/^/#   /'
    fi
}

# --- running commands -----------------------------------------------------------
#
# run CMD...: run with a timeout, stdin from /dev/null and no controlling
# terminal (nothing can prompt), stdout to $RUN_OUT, stderr to $RUN_ERR, exit
# status in $RUN_RC. Never fails itself: assertions look at the results.

RUN_N=0
RUN_RC=0
RUN_OUT=/dev/null
RUN_ERR=/dev/null
RUN_CMD=
RUN_STDIN=/dev/null

# When p11id.so was built with AddressSanitizer, the uninstrumented openssl
# binary needs the runtime preloaded to dlopen it.
ASAN_PRELOAD=
_t_asan_setup()
{
    local rt
    [ -f "$P11ID_PROVIDER_SO" ] || return 0
    command -v ldd >/dev/null 2>&1 || return 0
    if ldd "$P11ID_PROVIDER_SO" 2>/dev/null | grep -q 'libasan'; then
        rt=$(ldd "$P11ID_PROVIDER_SO" | awk '/libasan/ { print $3; exit }')
        ASAN_PRELOAD=$rt
        export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=0}"
        export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
    fi
}

run()
{
    RUN_N=$((RUN_N + 1))
    local dir=${T:-${TMPDIR:-/tmp}}
    RUN_OUT="$dir/run$RUN_N.out"
    RUN_ERR="$dir/run$RUN_N.err"
    RUN_CMD="$*"
    local setsid=()
    command -v setsid >/dev/null 2>&1 && setsid=(setsid)
    if [ -n "$ASAN_PRELOAD" ]; then
        LD_PRELOAD="$ASAN_PRELOAD" timeout -k 5 "$T_TIMEOUT" "${setsid[@]}" \
            "$@" <"$RUN_STDIN" >"$RUN_OUT" 2>"$RUN_ERR"
    else
        timeout -k 5 "$T_TIMEOUT" "${setsid[@]}" \
            "$@" <"$RUN_STDIN" >"$RUN_OUT" 2>"$RUN_ERR"
    fi
    RUN_RC=$?
    return 0
}

# run_in FILE CMD...: like run, with stdin from FILE.
run_in()
{
    local in=$1
    shift
    RUN_STDIN=$in
    run "$@"
    RUN_STDIN=/dev/null
}

# ossl ARGS...: openssl with the test's OPENSSL_CONF (provider active).
ossl()
{
    run openssl "$@"
}

# ossl_sw ARGS...: openssl with the default provider alone: the independent
# check of what the token produced.
ossl_sw()
{
    OPENSSL_CONF="$T/default-only.cnf" run openssl "$@"
}

# What a crash looks like: a signal, a timeout, or a sanitizer report.
CRASH_RE='Segmentation fault|AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:|double free|stack smashing|core dumped|Assertion .* failed'

run_crashed()
{
    [ "$RUN_RC" -ge 124 ] && return 0
    grep -Eq -- "$CRASH_RE" "$RUN_ERR" "$RUN_OUT" 2>/dev/null
}

_run_diag()
{
    diag "command: $RUN_CMD"
    diag "exit status: $RUN_RC$([ "$RUN_RC" -eq 124 ] && echo ' (timed out)')"
    diag_file "$RUN_ERR" 15
    diag_file "$RUN_OUT" 5
}

# run_ok DESC: the last run exited 0 and did not crash.
run_ok()
{
    if [ "$RUN_RC" -eq 0 ] && ! run_crashed; then
        pass "$1"
        return 0
    fi
    fail "$1"
    _run_diag
    return 1
}

# run_ok_like ERE DESC: the last run exited 0, did not crash, and its output
# (stdout or stderr) has a line matching ERE, ignoring case.
run_ok_like()
{
    if [ "$RUN_RC" -eq 0 ] && ! run_crashed \
        && grep -Eqi -- "$1" "$RUN_OUT" "$RUN_ERR" 2>/dev/null; then
        pass "$2"
        return 0
    fi
    fail "$2" "expected exit 0 and a line matching /$1/"
    _run_diag
    return 1
}

# run_fails DESC: the last run failed cleanly: non-zero, below 124, no crash.
run_fails()
{
    if [ "$RUN_RC" -ne 0 ] && ! run_crashed; then
        pass "$1"
        return 0
    fi
    fail "$1" "expected a clean failure (non-zero exit < 124, no crash)"
    _run_diag
    return 1
}

# run_err_like ERE DESC: the last run's stderr (or stdout) matches ERE, ignoring case.
run_err_like()
{
    if grep -Eqi -- "$1" "$RUN_ERR" "$RUN_OUT" 2>/dev/null; then
        pass "$2"
        return 0
    fi
    fail "$2" "no output line matches /$1/"
    _run_diag
    return 1
}

# ok_run DESC CMD...: run CMD, one point for success.
ok_run()
{
    local d=$1
    shift
    run "$@"
    run_ok "$d"
}

# ossl_ok DESC ARGS... / ossl_sw_ok DESC ARGS...
ossl_ok()
{
    local d=$1
    shift
    ossl "$@"
    run_ok "$d"
}

ossl_sw_ok()
{
    local d=$1
    shift
    ossl_sw "$@"
    run_ok "$d"
}

# ossl_fails DESC ARGS...: openssl must fail cleanly.
ossl_fails()
{
    local d=$1
    shift
    ossl "$@"
    run_fails "$d"
}

# --- the private directory and its cleanup ----------------------------------------

t_cleanup()
{
    local pid
    for pid in "${T_PIDS[@]}"; do
        bg_stop "$pid" >/dev/null 2>&1
    done
    T_PIDS=()
    if [ "$T_DONE" != 1 ]; then
        T_DONE=1
        T_N=$((T_N + 1))
        printf 'not ok %d - test script ended early\n' "$T_N"
        printf '1..%d\n' "$T_N"
    fi
    if [ -n "$T" ] && [ -d "$T" ]; then
        if [ "${P11ID_KEEP_TMP:-0}" = 1 ]; then
            printf '# kept %s\n' "$T"
        else
            rm -rf -- "$T"
        fi
    fi
    T=
}

# softhsm_setup DIR: a SoftHSM configuration whose tokens live in DIR/tokens.
softhsm_setup()
{
    local dir=$1
    mkdir -p "$dir/tokens" || return 1
    chmod 700 "$dir/tokens"
    cat >"$dir/softhsm2.conf" <<EOF
# SoftHSM configuration of one p11id test run; never the system token dir.
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
EOF
    SOFTHSM2_CONF="$dir/softhsm2.conf"
    export SOFTHSM2_CONF
}

# token_init LABEL [PIN] [SO_PIN]: a fresh token in the next free slot.
token_init()
{
    local label=$1 pin=${2:-$PIN} sopin=${3:-$SO_PIN}
    case "$SOFTHSM2_CONF" in
        "$T"/*) ;;
        *) bail_out "SOFTHSM2_CONF ($SOFTHSM2_CONF) is not under the test dir" ;;
    esac
    run softhsm2-util --init-token --free --label "$label" \
        --so-pin "$sopin" --pin "$pin"
    [ "$RUN_RC" -eq 0 ] && return 0
    _run_diag
    return 1
}

# t_setup: $T, SoftHSM config, one token labelled $TOKEN (assign before to
# change it), PIN file, OpenSSL configs. Exports SOFTHSM2_CONF and OPENSSL_CONF
# (default provider and p11id active, PIN from $T/pin.txt).
t_setup()
{
    trap t_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    T=$(mktemp -d "${TMPDIR:-/tmp}/p11id-test.XXXXXX") || bail_out "mktemp failed"
    chmod 700 "$T"
    mkdir -p "$T/keys"
    unset OPENSSL_CONF OPENSSL_MODULES OPENSSL_ENGINES PKCS11SPY PKCS11SPY_OUTPUT
    _t_asan_setup
    softhsm_setup "$T" || bail_out "cannot write $T/softhsm2.conf"
    printf '%s' "$PIN" >"$T/pin.txt"
    chmod 600 "$T/pin.txt"
    printf '# default provider only\n' >"$T/default-only.cnf"
    write_openssl_conf "$T/openssl.cnf"
    OPENSSL_CONF="$T/openssl.cnf"
    export OPENSSL_CONF
    if t_softkeys; then
        PROV_ARGS=()
        diag "P11ID_TEST_SOFTKEYS=1: software keys stand in for token keys"
    else
        PROV_ARGS=(-provider-path "$P11ID_PROVIDER_DIR" -provider p11id
            -provider default)
        [ -f "$P11ID_PROVIDER_SO" ] \
            || diag "provider module $P11ID_PROVIDER_SO does not exist (yet)"
    fi
    token_init "$TOKEN" || bail_out "softhsm2-util could not create token $TOKEN"
}

# write_openssl_conf FILE [KEY=VALUE...]: an OpenSSL config activating the
# default provider and p11id. KEY=VALUE sets a key of p11id's section; KEY=
# (empty value) leaves the key out. Lines from $CONF_EXTRA are appended.
write_openssl_conf()
{
    local file=$1
    shift
    local -a keys=(module pkcs11-module-path pin-source)
    local -A val=(
        [module]="$P11ID_PROVIDER_SO"
        [pkcs11-module-path]="$SOFTHSM_MODULE"
        [pin-source]="file:$T/pin.txt"
    )
    local kv k
    for kv in "$@"; do
        k=${kv%%=*}
        [ -n "${val[$k]+x}" ] || keys+=("$k")
        val[$k]=${kv#*=}
    done
    {
        printf '# OpenSSL configuration of one p11id test run\n'
        printf 'openssl_conf = openssl_init\n\n'
        printf '[openssl_init]\nproviders = provider_sect\n\n'
        printf '[provider_sect]\ndefault = default_sect\n'
        t_softkeys || printf 'p11id = p11id_sect\n'
        printf '\n[default_sect]\nactivate = 1\n\n'
        if ! t_softkeys; then
            printf '[p11id_sect]\n'
            for k in "${keys[@]}"; do
                [ -n "${val[$k]}" ] && printf '%s = %s\n' "$k" "${val[$k]}"
            done
            printf 'activate = 1\n\n'
        fi
        printf '[req]\ndistinguished_name = req_dn\n\n[req_dn]\n'
        [ -n "${CONF_EXTRA:-}" ] && printf '\n%s\n' "$CONF_EXTRA"
    } >"$file"
}

# --- keys on the token ------------------------------------------------------------

declare -A KEY_ID=()      # key name -> CKA_ID (hex)
declare -A KEY_TYPE=()    # key name -> rsa2048 | ec256 | ...
declare -A KEY_TOKEN=()   # key name -> token label
KEY_NEXT_ID=1

# pkcs11-tool's --key-type for our short names.
_key_type_arg()
{
    case "$1" in
        rsa2048) echo rsa:2048 ;;
        rsa3072) echo rsa:3072 ;;
        ec256 | ecp256) echo EC:prime256v1 ;;
        ec384 | ecp384) echo EC:secp384r1 ;;
        ec521 | ecp521) echo EC:secp521r1 ;;
        ed25519) echo EC:edwards25519 ;;
        *) return 1 ;;
    esac
}

_key_genpkey_args()
{
    case "$1" in
        rsa2048) echo "-algorithm RSA -pkeyopt rsa_keygen_bits:2048" ;;
        rsa3072) echo "-algorithm RSA -pkeyopt rsa_keygen_bits:3072" ;;
        ec256 | ecp256) echo "-algorithm EC -pkeyopt ec_paramgen_curve:P-256" ;;
        ec384 | ecp384) echo "-algorithm EC -pkeyopt ec_paramgen_curve:P-384" ;;
        ec521 | ecp521) echo "-algorithm EC -pkeyopt ec_paramgen_curve:P-521" ;;
        ed25519) echo "-algorithm ED25519" ;;
        *) return 1 ;;
    esac
}

p11tool()
{
    run pkcs11-tool --module "$SOFTHSM_MODULE" "$@"
}

# token_key_attrs TOKEN ID: the "Access:" line pkcs11-tool prints for the
# private key with CKA_ID ID (pkcs11-tool -O ignores --id, so filter here).
token_key_access()
{
    p11tool --token-label "$1" --login --pin "$PIN" --list-objects --type privkey
    awk -v id="$2" '
        /^[^ ]/ { inkey = ($0 ~ /^Private Key Object/); want = 0 }
        inkey && $1 == "ID:" && tolower($2) == tolower(id) { want = 1 }
        inkey && want && $1 == "Access:" { sub(/^ *Access: */, ""); print; exit }
    ' "$RUN_OUT"
}

# key_gen NAME TYPE [TOKEN]: a key pair generated on the token (TYPE: rsa2048,
# rsa3072, ec256, ec384, ec521 (or ecp256...), ed25519; label NAME,
# next free CKA_ID); its public key, read back with pkcs11-tool, is in
# $T/keys/NAME.pub.pem. Returns non-zero (with diagnostics) on failure.
key_gen()
{
    local name=$1 type=$2 token=${3:-$TOKEN} id kt access
    id=$(printf '%02x' "$KEY_NEXT_ID")
    KEY_NEXT_ID=$((KEY_NEXT_ID + 1))
    KEY_ID[$name]=$id
    KEY_TYPE[$name]=$type
    KEY_TOKEN[$name]=$token
    if t_softkeys; then
        # shellcheck disable=SC2046
        ossl_sw genpkey $(_key_genpkey_args "$type") -out "$T/keys/$name.key"
        [ "$RUN_RC" -eq 0 ] || { _run_diag; return 1; }
        ossl_sw pkey -in "$T/keys/$name.key" -pubout -out "$T/keys/$name.pub.pem"
        [ "$RUN_RC" -eq 0 ] || { _run_diag; return 1; }
        return 0
    fi
    kt=$(_key_type_arg "$type") || { diag "unknown key type $type"; return 1; }
    p11tool --token-label "$token" --login --pin "$PIN" --keypairgen \
        --key-type "$kt" --id "$id" --label "$name"
    [ "$RUN_RC" -eq 0 ] || { _run_diag; return 1; }
    access=$(token_key_access "$token" "$id")
    case "$access" in
        *sensitive*"never extractable"*) ;;
        *) diag "key $name is not sensitive/non-extractable: '$access'"; return 1 ;;
    esac
    token_pubkey "$token" "$id" "$T/keys/$name.pub.pem" || return 1
}

# token_pubkey TOKEN ID OUT.pem: the public key object as a PEM SPKI, read
# without the provider. RSA: pkcs11-tool --read-object (DER). EC and EdDSA:
# built from CKA_EC_PARAMS and CKA_EC_POINT as pkcs11-tool -O prints them,
# because OpenSC 0.23's --read-object fails on P-384 ("cannot create
# EVP_PKEY") and writes Ed25519 keys as PEM.
token_pubkey()
{
    local token=$1 id=$2 out=$3 attrs
    p11tool --token-label "$token" --list-objects --type pubkey
    [ "$RUN_RC" -eq 0 ] || { _run_diag; return 1; }
    attrs=$(awk -v id="$id" '
        function flush() {
            if (inpub && tolower(oid) == tolower(id)) {
                print (params == "" ? "-" : params), (point == "" ? "-" : point)
                found = 1
            }
        }
        /^[^ ]/ { flush(); inpub = ($0 ~ /^Public Key Object/)
                  params = ""; point = ""; oid = "" }
        $1 == "EC_POINT:" { point = $2 }
        $1 == "EC_PARAMS:" { params = $2 }
        $1 == "ID:" { oid = $2 }
        END { flush(); if (!found) exit 1 }
    ' "$RUN_OUT") || { diag "no public key with ID $id on token $token"; return 1; }
    if [ "$attrs" = "- -" ]; then
        p11tool --token-label "$token" --read-object --type pubkey --id "$id" \
            -o "$out.raw"
        [ "$RUN_RC" -eq 0 ] || { _run_diag; return 1; }
    else
        # shellcheck disable=SC2086
        run python3 "$T_LIBDIR/spki.py" $attrs
        [ "$RUN_RC" -eq 0 ] || { _run_diag; return 1; }
        cp "$RUN_OUT" "$out.raw"
    fi
    ossl_sw pkey -pubin -in "$out.raw" -out "$out"
    [ "$RUN_RC" -eq 0 ] || { _run_diag; return 1; }
    rm -f "$out.raw"
}

# key_uri NAME [private|public]: how a command names the key. On a token, a
# pkcs11: URI (the module and PIN come from the provider config); with
# P11ID_TEST_SOFTKEYS=1, the software key file.
key_uri()
{
    local name=$1 kind=${2:-private}
    if t_softkeys; then
        if [ "$kind" = public ]; then
            printf '%s' "$T/keys/$name.pub.pem"
        else
            printf '%s' "$T/keys/$name.key"
        fi
        return 0
    fi
    printf 'pkcs11:token=%s;object=%s;type=%s' "${KEY_TOKEN[$name]:-$TOKEN}" \
        "$name" "$kind"
}

# key_pub NAME: the public key file read from the token by pkcs11-tool.
key_pub()
{
    printf '%s' "$T/keys/$1.pub.pem"
}

# key_selfcontained_uri NAME: a URI that carries module and PIN itself, for
# openssl runs that load the provider with -provider (no config section).
key_selfcontained_uri()
{
    if t_softkeys; then
        key_uri "$1"
        return 0
    fi
    printf '%s?module-path=%s&pin-value=%s' "$(key_uri "$1")" \
        "$SOFTHSM_MODULE" "$PIN"
}

# --- key reference files -----------------------------------------------------------

# keyref_build URI OUT [keyref.py options]: a key reference file made without
# the provider (stdlib python).
keyref_build()
{
    local uri=$1 out=$2
    shift 2
    run python3 "$T_LIBDIR/keyref.py" "$@" "$uri"
    [ "$RUN_RC" -eq 0 ] || { _run_diag; return 1; }
    cp "$RUN_OUT" "$out"
}

# keyref_genconf URI OUT: the same, with openssl asn1parse -genconf.
keyref_genconf()
{
    local uri=$1 out=$2
    local esc=${uri//\\/\\\\}
    esc=${esc//#/\\#}
    esc=${esc//\$/\\\$}
    esc=${esc//\"/\\\"}
    esc=${esc//\'/\\\'}
    {
        printf 'asn1 = SEQUENCE:keyref\n[keyref]\n'
        printf 'desc = VISIBLESTRING:PKCS\\#11 Provider URI v1.0\n'
        printf 'uri = UTF8:%s\n' "$esc"
    } >"$out.genconf"
    ossl_sw asn1parse -genconf "$out.genconf" -noout -out "$out.der"
    [ "$RUN_RC" -eq 0 ] || { _run_diag; return 1; }
    {
        printf -- '-----BEGIN PKCS#11 PROVIDER URI-----\n'
        base64 -w 64 "$out.der"
        printf -- '-----END PKCS#11 PROVIDER URI-----\n'
    } >"$out"
}

# --- certificates ------------------------------------------------------------------

SERIAL=4096

# ext_file KIND OUT: X.509v3 extensions for ca | server | client certificates.
ext_file()
{
    case "$1" in
        ca)
            printf '%s\n' 'basicConstraints = critical,CA:TRUE' \
                'keyUsage = critical,keyCertSign,cRLSign' \
                'subjectKeyIdentifier = hash' \
                'authorityKeyIdentifier = keyid:always' >"$2" ;;
        server)
            printf '%s\n' 'basicConstraints = CA:FALSE' \
                'keyUsage = critical,digitalSignature,keyEncipherment' \
                'extendedKeyUsage = serverAuth' \
                'subjectAltName = DNS:localhost,IP:127.0.0.1' \
                'subjectKeyIdentifier = hash' \
                'authorityKeyIdentifier = keyid:always' >"$2" ;;
        client)
            printf '%s\n' 'basicConstraints = CA:FALSE' \
                'keyUsage = critical,digitalSignature' \
                'extendedKeyUsage = clientAuth' \
                'subjectKeyIdentifier = hash' \
                'authorityKeyIdentifier = keyid:always' >"$2" ;;
        *) return 1 ;;
    esac
}

# ca_make KEYREF OUT.crt [SUBJECT] [openssl req options...]: a self-signed CA
# certificate signed by KEYREF (a token URI: the provider signs).
ca_make()
{
    local key=$1 out=$2 subj=${3:-/CN=Test CA}
    shift 3 2>/dev/null || shift $#
    ossl req -x509 -new -key "$key" -subj "$subj" -days 30 -out "$out" \
        -addext 'basicConstraints=critical,CA:TRUE' \
        -addext 'keyUsage=critical,keyCertSign,cRLSign' "$@"
    [ "$RUN_RC" -eq 0 ] || { _run_diag; return 1; }
}

# soft_ca_make DIR NAME SUBJECT: a CA with a software key (another CA, for
# refusal tests): DIR/NAME.key, DIR/NAME.crt.
soft_ca_make()
{
    ossl_sw req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$1/$2.key" -subj "$3" -days 30 -out "$1/$2.crt" \
        -addext 'basicConstraints=critical,CA:TRUE' \
        -addext 'keyUsage=critical,keyCertSign,cRLSign'
    [ "$RUN_RC" -eq 0 ] || { _run_diag; return 1; }
}

# csr_make KEYREF SUBJECT OUT.csr [openssl req options...]
csr_make()
{
    local key=$1 subj=$2 out=$3
    shift 3
    ossl req -new -key "$key" -subj "$subj" -out "$out" "$@"
    [ "$RUN_RC" -eq 0 ] || { _run_diag; return 1; }
}

# cert_issue CA.crt CAKEYREF CSR KIND OUT.crt [openssl x509 options...]
cert_issue()
{
    local ca=$1 cakey=$2 csr=$3 kind=$4 out=$5
    shift 5
    ext_file "$kind" "$out.ext" || return 1
    SERIAL=$((SERIAL + 1))
    ossl x509 -req -in "$csr" -CA "$ca" -CAkey "$cakey" -set_serial "$SERIAL" \
        -days 30 -extfile "$out.ext" -out "$out" "$@"
    [ "$RUN_RC" -eq 0 ] || { _run_diag; return 1; }
}

# --- network and background processes -----------------------------------------------

# free_port: a TCP port on 127.0.0.1 nobody listens on right now.
free_port()
{
    local p i
    if command -v python3 >/dev/null 2>&1; then
        p=$(python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])' 2>/dev/null) && [ -n "$p" ] && { echo "$p"; return 0; }
    fi
    for ((i = 0; i < 100; i++)); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# bg_start NAME CMD...: CMD in the background under timeout, output in
# $T/NAME.out and $T/NAME.err; its pid in BG_PID (stopped at exit).
bg_start()
{
    local name=$1
    shift
    if [ -n "$ASAN_PRELOAD" ]; then
        LD_PRELOAD="$ASAN_PRELOAD" timeout -k 5 "$T_TIMEOUT" "$@" \
            </dev/null >"$T/$name.out" 2>"$T/$name.err" &
    else
        timeout -k 5 "$T_TIMEOUT" "$@" \
            </dev/null >"$T/$name.out" 2>"$T/$name.err" &
    fi
    BG_PID=$!
    T_PIDS+=("$BG_PID")
}

# wait_for_line FILE ERE PID [SECONDS]: wait until FILE has a line matching ERE;
# fails early if PID exits first.
wait_for_line()
{
    local file=$1 re=$2 pid=$3 secs=${4:-20} i
    for ((i = 0; i < secs * 10; i++)); do
        grep -Eq -- "$re" "$file" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || {
            grep -Eq -- "$re" "$file" 2>/dev/null
            return
        }
        sleep 0.1
    done
    return 1
}

# bg_wait PID [SECONDS]: wait for PID to end; its exit status in BG_RC
# (124 if it had to be stopped).
bg_wait()
{
    local pid=$1 secs=${2:-20} i
    for ((i = 0; i < secs * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        bg_stop "$pid"
        BG_RC=124
        return 1
    fi
    wait "$pid" 2>/dev/null
    BG_RC=$?
    return 0
}

# bg_stop PID: TERM, then KILL after 5 s; reaps it.
bg_stop()
{
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

# --- other tokens ----------------------------------------------------------------
# P11ID_TOKEN_KIND selects the token the tests run on: softhsm (default) or the
# name of a driver tests/tokens/drv_KIND.sh. A driver redefines what differs
# for its token: SOFTHSM_MODULE (the module path), token_init (make a fresh
# token labelled LABEL with $PIN under $T), p11tool (pkcs11-tool arguments),
# key_gen, write_openssl_conf's extra keys, t_cleanup additions, and
# token_supports. Tests ask token_supports before using a capability.
: "${P11ID_TOKEN_KIND:=softhsm}"
export P11ID_TOKEN_KIND

# token_supports WHAT: the token can do WHAT (a key type of key_gen, or one of
# keygen-tool, import, oaep-sha256, ecdh, session-copy, ...). SoftHSM does all.
token_supports()
{
    return 0
}

if [ "$P11ID_TOKEN_KIND" != softhsm ]; then
    if [ ! -f "$T_LIBDIR/../tokens/drv_$P11ID_TOKEN_KIND.sh" ]; then
        echo "Bail out! no token driver tests/tokens/drv_$P11ID_TOKEN_KIND.sh"
        exit 1
    fi
    # shellcheck disable=SC1090
    . "$T_LIBDIR/../tokens/drv_$P11ID_TOKEN_KIND.sh"
fi
