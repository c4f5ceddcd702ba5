# tests/tokens/drv_nss.sh: token driver for NSS softokn (libsoftokn3.so from
# libnss3), sourced by tests/lib/common.sh when P11ID_TOKEN_KIND=nss.
#
# A token is an NSS database under $T made by certutil -N with $PIN. softokn
# takes its settings (database directory, token labels) in C_Initialize's
# pReserved string, which p11id gets two ways, both used here:
#   - the provider setting pkcs11-module-init-args (every openssl.cnf the
#     tests write: pkcs11-module-path = libsoftokn3.so plus the init string);
#   - p11-kit's x-init-reserved in a .module file registering the module as
#     "nss": pkcs11-tool reaches it through p11-kit-proxy.so, the p11id tool
#     by module-name=nss, and self-contained URIs use module-name=nss too.
# The registration lives in a private mount namespace: the test script runs
# again under unshare -m with its own directory bind-mounted over
# /usr/share/p11-kit/modules (and /etc/pkcs11), so the machine's registered
# modules never load and ours is the only one.
# shellcheck disable=SC2034

NSS_SOFTOKN=${NSS_SOFTOKN:-/usr/lib/x86_64-linux-gnu/libsoftokn3.so}
P11KIT_PROXY=${P11KIT_PROXY:-/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so}
NSS_MODULE_NAME=nss
# softokn's key database: one PBE iteration, or every RSA login crawls.
export NSS_MIN_MP_PBE_ITERATION_COUNT=1 NSS_MAX_MP_PBE_ITERATION_COUNT=1

# nss_enter_namespace: run this test script again in a private mount
# namespace where P11ID_NSS_MODDIR is the only p11-kit module directory. The
# outer shell waits, removes the directory and exits with the test's status.
nss_enter_namespace()
{
    [ -n "${P11ID_NSS_MODDIR:-}" ] && return 0
    local dir rc unshare=(unshare -m)
    if [ ! -f "$NSS_SOFTOKN" ]; then
        printf '1..0 # SKIP no NSS softokn (%s; Debian: libnss3)\n' "$NSS_SOFTOKN"
        exit 0
    fi
    if ! command -v certutil >/dev/null 2>&1; then
        printf '1..0 # SKIP no certutil (Debian: libnss3-tools)\n'
        exit 0
    fi
    [ "$(id -u)" -eq 0 ] || unshare=(unshare -r -m)
    if ! "${unshare[@]}" true 2>/dev/null; then
        printf '1..0 # SKIP cannot make a private mount namespace (%s) for the test'"'"'s own p11-kit registrations\n' "${unshare[*]}"
        exit 0
    fi
    dir=$(mktemp -d "${TMPDIR:-/tmp}/p11id-nss-modules.XXXXXX") || exit 1
    mkdir -p "$dir/modules" "$dir/etc-pkcs11/modules"
    P11ID_NSS_MODDIR=$dir/modules "${unshare[@]}" bash -c '
        mount --bind "$P11ID_NSS_MODDIR" /usr/share/p11-kit/modules || exit 99
        if [ -d /etc/pkcs11 ]; then
            mount --bind "${P11ID_NSS_MODDIR%/modules}/etc-pkcs11" /etc/pkcs11 \
                || exit 99
        fi
        export P11ID_NSS_MODDIR
        exec bash "$@"' bash "$0" "$@"
    rc=$?
    rm -rf -- "$dir"
    [ "$rc" -eq 99 ] && echo "Bail out! cannot bind-mount the private p11-kit module directory"
    exit "$rc"
}
nss_enter_namespace "$@"

# In here p11-kit sees only our registration; the user's ~/.config/pkcs11
# (read by p11-kit for non-root users) is kept out too.
export HOME=${P11ID_NSS_MODDIR%/modules}
SOFTHSM_MODULE=$NSS_SOFTOKN
NSS_TOKENS=()      # labels of the tokens made so far, in slot order

# nss_init_args: the C_Initialize pReserved string for the tokens made so
# far. One token: its database and label (dbTokenDescription). More: NSS's
# tokens=<slot=[...] ...> list, which must name the internal slots 1 and 2.
nss_init_args()
{
    local base="configdir='sql:$T/nssdb0' certPrefix='' keyPrefix='' secmod='secmod.db' flags=noModDB"
    local i list
    if [ "${#NSS_TOKENS[@]}" -le 1 ]; then
        # NSS's own label is "NSS Certificate DB": name no other then.
        case "${NSS_TOKENS[0]:-NSS Certificate DB}" in
            "NSS Certificate DB") printf '%s' "$base" ;;
            *) printf "%s dbTokenDescription='%s'" "$base" "${NSS_TOKENS[0]}" ;;
        esac
        return 0
    fi
    list="0x01=[flags=noCertDB,noKeyDB tokenDescription='NSS Generic Crypto Services']"
    for i in "${!NSS_TOKENS[@]}"; do
        list+=" $(printf '0x%02x' $((i + 2)))=[configdir='sql:$T/nssdb$i' tokenDescription='${NSS_TOKENS[$i]}']"
    done
    printf '%s tokens=<%s>' "$base" "$list"
}

# nss_register: (re)write the .module file registering softokn as "nss".
nss_register()
{
    printf '# p11id test: NSS softokn with its own databases\nmodule: %s\nx-init-reserved: %s\n' \
        "$NSS_SOFTOKN" "$(nss_init_args)" >"$P11ID_NSS_MODDIR/$NSS_MODULE_NAME.module"
}

# The common config writer, kept under another name.
eval "_common_write_openssl_conf() $(declare -f write_openssl_conf | tail -n +2)"

# write_openssl_conf FILE [KEY=VALUE...]: the module is softokn, with the
# init string of the tokens made so far (double quotes keep its quotes).
write_openssl_conf()
{
    local file=$1
    shift
    _common_write_openssl_conf "$file" "pkcs11-module-path=$NSS_SOFTOKN" \
        "pkcs11-module-init-args=\"$(nss_init_args)\"" "$@"
}

# token_init LABEL [PIN]: a new NSS database labelled LABEL; the test's
# openssl.cnf and the registration are rewritten to include it.
token_init()
{
    local label=$1 pin=${2:-$PIN} n=${#NSS_TOKENS[@]}
    mkdir -p "$T/nssdb$n" || return 1
    printf '%s\n' "$pin" >"$T/nssdb$n.pw"
    run certutil -N -d "sql:$T/nssdb$n" -f "$T/nssdb$n.pw"
    rm -f "$T/nssdb$n.pw"
    [ "$RUN_RC" -eq 0 ] || { _run_diag; return 1; }
    NSS_TOKENS+=("$label")
    nss_register
    [ -f "$T/openssl.cnf" ] && write_openssl_conf "$T/openssl.cnf"
    return 0
}

# pkcs11-tool has no way to pass init arguments: it goes through
# p11-kit-proxy.so, which loads our registration (x-init-reserved).
p11tool()
{
    run pkcs11-tool --module "$P11KIT_PROXY" "$@"
}

# The p11id tool reaches the token by its registered name.
nss_tool()
{
    run "${P11ID_TOOL:-$TOP_BUILDDIR/src/tool/p11id}" "$@"
}

# key_gen NAME TYPE [TOKEN]: made by p11id keygen (pkcs11-tool leaves out
# CKA_EXTRACTABLE and NSS then makes the key extractable), checked to be
# sensitive and never extractable, public key read back with pkcs11-tool.
key_gen()
{
    local name=$1 type=$2 token=${3:-$TOKEN} id kt access
    id=$(printf '%02x' "$KEY_NEXT_ID")
    KEY_NEXT_ID=$((KEY_NEXT_ID + 1))
    KEY_ID[$name]=$id
    KEY_TYPE[$name]=$type
    KEY_TOKEN[$name]=$token
    case "$type" in
        rsa2048) kt=rsa:2048 ;;
        rsa3072) kt=rsa:3072 ;;
        ec256 | ecp256) kt=ec:P-256 ;;
        ec384 | ecp384) kt=ec:P-384 ;;
        ec521 | ecp521) kt=ec:P-521 ;;
        *) diag "NSS softokn cannot make $type keys"; return 1 ;;
    esac
    nss_tool keygen "pkcs11:token=$(nss_pct "$token")?module-name=$NSS_MODULE_NAME" \
        --type "$kt" --label "$name" --id "$id" --pin-file "$T/pin.txt"
    [ "$RUN_RC" -eq 0 ] || { _run_diag; return 1; }
    access=$(token_key_access "$token" "$id")
    case "$access" in
        *sensitive*"never extractable"*) ;;
        *) diag "key $name is not sensitive/non-extractable: '$access'"; return 1 ;;
    esac
    token_pubkey "$token" "$id" "$T/keys/$name.pub.pem" || return 1
}

# nss_pct STRING: percent-encoded for a pkcs11: URI path value.
nss_pct()
{
    local s=$1 out= c i
    for ((i = 0; i < ${#s}; i++)); do
        c=${s:i:1}
        case "$c" in
            [A-Za-z0-9._~-]) out+=$c ;;
            *) out+=$(printf '%%%02X' "'$c") ;;
        esac
    done
    printf '%s' "$out"
}

# key_uri: labels with spaces ("NSS Certificate DB") must be encoded.
key_uri()
{
    local name=$1 kind=${2:-private}
    printf 'pkcs11:token=%s;object=%s;type=%s' \
        "$(nss_pct "${KEY_TOKEN[$name]:-$TOKEN}")" "$(nss_pct "$name")" "$kind"
}

# Without openssl.cnf the provider has no init string: name the registered
# module, whose x-init-reserved has it.
key_selfcontained_uri()
{
    printf '%s?module-name=%s&pin-value=%s' "$(key_uri "$1")" \
        "$NSS_MODULE_NAME" "$PIN"
}

# NSS 3.87 softokn: no Ed25519 (no CKM_EC_EDWARDS_KEY_PAIR_GEN), curves
# P-256..P-521, OAEP with SHA-2.
token_supports()
{
    case "$1" in
        ed25519 | ed448) return 1 ;;
        *) return 0 ;;
    esac
}

# softokn does RSA-OAEP with SHA-2 (pkcs11-tool 0.23's OAEP parameters get
# CKR_MECHANISM_PARAM_INVALID from it, p11id's do not): no probe.
TOKEN_OAEP_SHA256=yes
