# tests/tool/ca_lib.sh: helpers of the csr, ca and renew tests. Source it
# after tests/lib/common.sh; do not run it.
#
#   . "$(dirname "$0")/../lib/common.sh"
#   . "$(dirname "$0")/ca_lib.sh"
#   ca_lib_require                 # skips when the tool is not built
#   t_setup
#   ca_lib_setup                   # P11ID_MODULE, $TOK, $T/req.cnf
#
# Variables set here for the scripts that source this file:
# shellcheck disable=SC2034

# ca_lib_require: the whole script is skipped when the tool is not built.
ca_lib_require()
{
    require_cmd openssl pkcs11-tool softhsm2-util sqlite3 python3
    if [ ! -x "${P11ID_TOOL:-}" ]; then
        printf '1..0 # SKIP p11id tool not built (P11ID_TOOL)\n'
        exit 0
    fi
}

# ca_lib_setup: after t_setup. The tool finds SoftHSM through P11ID_MODULE;
# software CSRs (the hostile ones) use $T/req.cnf. A CA made with
# "ca init $TOK ... -o $CA" has its key at $CAKEY and its ledger at $LEDGER.
ca_lib_setup()
{
    export P11ID_MODULE=$SOFTHSM_MODULE
    TOK="pkcs11:token=$TOKEN"
    CA=$T/ca.crt
    LEDGER=$T/ca.crt.ledger
    CAKEY="pkcs11:token=$TOKEN;object=ca;type=private"
    printf '%s\n' '[req]' 'distinguished_name = dn' 'prompt = no' \
        '[dn]' 'CN = unused' >"$T/req.cnf"
}

# ca_sign NAME PROFILE [ca sign options]: the CA signs $T/NAME.csr into
# $T/NAME.crt for 5 days (the result in RUN_RC, RUN_OUT, RUN_ERR).
ca_sign()
{
    local name=$1 profile=$2
    shift 2
    tool ca sign --ca "$CAKEY" --ca-cert "$CA" "$T/$name.csr" \
        --profile "$profile" --days 5 -o "$T/$name.crt" "$@"
}

# tool ARGS...: p11id with the test token's PIN file (never the PIN itself).
tool()
{
    run "$P11ID_TOOL" "$@" --pin-file "$T/pin.txt"
}

# tool_ok DESC ARGS...: p11id exits 0.
tool_ok()
{
    local d=$1
    shift
    tool "$@"
    run_ok "$d"
}

# tool_refuses DESC RC ERE ARGS...: p11id exits RC (cleanly) and says
# something matching ERE on standard error.
tool_refuses()
{
    local d=$1 rc=$2 re=$3
    shift 3
    tool "$@"
    if [ "$RUN_RC" -eq "$rc" ] && ! run_crashed \
        && grep -Eqi -- "$re" "$RUN_ERR"; then
        pass "$d"
        return 0
    fi
    fail "$d" "expected exit $rc and a message matching /$re/"
    _run_diag
    return 1
}

# no_file PATH DESC: nothing was written at PATH.
no_file()
{
    if [ -e "$1" ]; then
        fail "$2" "$1 exists"
    else
        pass "$2"
    fi
}

# cert_text FILE: "openssl x509 -text" of FILE into FILE.txt (software).
cert_text()
{
    ossl_sw x509 -in "$1" -noout -text
    cp "$RUN_OUT" "$1.txt"
}

# cert_serial FILE: the serial in upper-case hex, as p11id prints it.
cert_serial()
{
    OPENSSL_CONF="$T/default-only.cnf" openssl x509 -in "$1" -noout -serial \
        2>/dev/null | sed 's/^serial=//'
}

# ledger_rows LEDGER [STATE]: how many certificates the ledger holds.
ledger_rows()
{
    if [ -n "${2:-}" ]; then
        sqlite3 "$1" "SELECT count(*) FROM certs WHERE state = '$2'"
    else
        sqlite3 "$1" "SELECT count(*) FROM certs"
    fi
}

# ledger_has LEDGER SERIAL: the serial is in the ledger.
ledger_has()
{
    [ "$(sqlite3 "$1" "SELECT count(*) FROM certs WHERE serial = '$2'")" = 1 ]
}

# soft_csr OUT SUBJECT [openssl req args...]: a CSR with a new software EC
# key (OUT.key), for requests the token tool would never make.
soft_csr()
{
    local out=$1 subj=$2
    shift 2
    ossl_sw req -new -config "$T/req.cnf" -newkey ec \
        -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$out.key" \
        -subj "$subj" -out "$out" "$@"
    [ "$RUN_RC" -eq 0 ] || { _run_diag; return 1; }
}

# token_objects TYPE LABEL: how many objects of TYPE (cert, privkey,
# pubkey) labelled LABEL the test token holds (pkcs11-tool, not p11id).
token_objects()
{
    p11tool --token-label "$TOKEN" --login --pin "$PIN" --list-objects \
        --type "$1"
    grep -c "label: *$2\$" "$RUN_OUT"
}
