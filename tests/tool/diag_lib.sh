# tests/tool/diag_lib.sh: helpers of the tests of p11id check, probe, config
# and pin. Source it after tests/lib/common.sh; do not run it.
#
# Variables set here for the scripts that source this file:
# shellcheck disable=SC2034

: "${P11ID_TOOL:=$TOP_BUILDDIR/src/tool/p11id}"

# diag_setup: t_setup, then the tool's module. The tool runs with OpenSSL's
# default provider only in its configuration ($T/default-only.cnf): it loads
# p11id itself ($P11ID_PROVIDER_SO) and hands it the PIN it was given, so
# the test sees what a user without an openssl.cnf sees.
diag_setup()
{
    require_file "$P11ID_TOOL" "the p11id tool"
    t_setup
    P11ID_MODULE=$SOFTHSM_MODULE
    export P11ID_MODULE
}

# tool ARGS...: the p11id tool under run (timeout, no terminal).
tool()
{
    OPENSSL_CONF="$T/default-only.cnf" run "$P11ID_TOOL" "$@"
}

# tool_rc WANT DESC: the last run exited WANT and did not crash.
tool_rc()
{
    if [ "$RUN_RC" -eq "$1" ] && ! run_crashed; then
        pass "$2"
        return 0
    fi
    fail "$2" "want exit status $1"
    _run_diag
    return 1
}

# days_from_now N: an openssl ca date N days from now (negative: past).
days_from_now()
{
    date -u -d "$1 days" +%Y%m%d%H%M%SZ
}

# cert_dated CA.crt CAKEYREF CSR KIND OUT START END: a certificate with the
# validity START..END (openssl ca dates: openssl x509 -req cannot backdate).
cert_dated()
{
    local ca=$1 cakey=$2 csr=$3 kind=$4 out=$5 start=$6 end=$7 db
    db=$(mktemp -d "$T/cadb.XXXXXX")
    : >"$db/index.txt"
    SERIAL=$((SERIAL + 1))
    printf '%04X\n' "$SERIAL" >"$db/serial"
    cat >"$db/ca.cnf" <<EOF
[ca]
default_ca = ca_sect
[ca_sect]
database = $db/index.txt
new_certs_dir = $db
serial = $db/serial
default_md = sha256
policy = pol
unique_subject = no
[pol]
organizationalUnitName = optional
commonName = supplied
EOF
    ext_file "$kind" "$out.ext" || return 1
    ossl ca -batch -config "$db/ca.cnf" -cert "$ca" -keyfile "$cakey" \
        -in "$csr" -out "$out" -notext -startdate "$start" -enddate "$end" \
        -extfile "$out.ext"
    [ "$RUN_RC" -eq 0 ] || { _run_diag; return 1; }
}

# json_get FILE EXPR: a value from a JSON file, EXPR in Python on `d`
# (e.g. 'd["ok"]'); prints it, or "ERROR: ..." when the file is no JSON.
json_get()
{
    python3 - "$1" "$2" <<'EOF'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
    v = eval(sys.argv[2], {"d": d})
    print(json.dumps(v) if not isinstance(v, str) else v)
except Exception as e:
    print("ERROR: %s" % e)
EOF
}

# check_status FILE ID: the status of one check in `p11id check --json`.
check_status()
{
    json_get "$1" "[c['status'] for c in d['checks'] if c['check'] == '$2'][0]"
}
