# tests/tokens/drv_tpm2.sh: the tests' token is tpm2-pkcs11 on a software TPM.
# Sourced by tests/lib/common.sh when P11ID_TOKEN_KIND=tpm2; redefines what
# differs from SoftHSM (see the end of common.sh).
#
# Per test script, under $T/tpm2:
#   swtpm (TPM 2.0, state in tpm2/state, unix socket tpm2/tpm.sock, control
#     socket tpm2/tpm.sock.ctrl as the swtpm TCTI expects), started with
#     not-need-init,startup-clear;
#   a private D-Bus bus (tpm2/bus) and tpm2-abrmd on it: the resource manager
#     a real system has in /dev/tpmrm0. Without one, every process that ends
#     without C_Finalize (openssl does not finalize modules at exit) leaves
#     its sessions and objects in the TPM, which holds three of each, and
#     tpm2_ptool cannot create a token at all;
#   the tpm2-pkcs11 store (sqlite) in tpm2/store, made by tpm2_ptool init and
#     addtoken. Keys are generated through the module with pkcs11-tool, as on
#     SoftHSM.
# The daemons are stopped by pid at exit (T_PIDS). The module reads
# TPM2_PKCS11_TCTI and TPM2_PKCS11_STORE from the environment; they and
# DBUS_SESSION_BUS_ADDRESS are exported for every process of the test.
#
# Setup takes about 3-6 s (tpm2_ptool is python and runs tpm2 tools), RSA 3072
# key generation up to a few seconds (prime search in the TPM).
# The TPM locks its PIN-sealed objects after 3 wrong PINs (for ~17 min per
# failure): a test tries at most one wrong PIN per TPM.
# shellcheck shell=bash disable=SC2034

TPM2_MODULE=/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so
SOFTHSM_MODULE=$TPM2_MODULE
TPM2_DIR=
TPM2_PID_NEXT=1   # primary object id of tpm2_ptool init

if [ ! -f "$TPM2_MODULE" ]; then
    printf '1..0 # SKIP no tpm2-pkcs11 module (%s; Debian: libtpm2-pkcs11-1)\n' \
        "$TPM2_MODULE"
    T_DONE=1
    exit 0
fi
require_cmd swtpm tpm2-abrmd dbus-daemon tpm2_ptool tpm2_getrandom

# tpm2_run CMD...: run (common.sh) for the TPM's own tools and daemons:
# OpenSSL without p11id (its config would load p11id, and with it this very
# module, into the TPM stack's processes; an ASan-built p11id.so also stops
# uninstrumented daemons), and without the ASan runtime preloaded.
tpm2_run()
{
    local ASAN_PRELOAD=
    OPENSSL_CONF=$T/default-only.cnf run "$@"
}

# _tpm2_daemon NAME CMD...: a daemon of the test, stopped at exit. A watchdog
# (timeout) ends it if the test script itself is killed.
_tpm2_daemon()
{
    local name=$1
    shift
    OPENSSL_CONF=$T/default-only.cnf \
        timeout -k 5 "${TPM2_DAEMON_TIMEOUT:-1800}" "$@" \
        </dev/null >"$TPM2_DIR/$name.out" 2>"$TPM2_DIR/$name.err" &
    T_PIDS+=("$!")
    TPM2_LAST_PID=$!
}

# _tpm2_wait_socket PATH PID: up to 5 s for a socket to appear.
_tpm2_wait_socket()
{
    local i
    for ((i = 0; i < 100; i++)); do
        [ -S "$1" ] && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# _tpm2_wait_answer TCTI PID: up to 10 s for the TPM behind TCTI to answer
# TPM2_GetRandom; fails early if PID (the daemon being waited for) exits.
_tpm2_wait_answer()
{
    local i
    for ((i = 0; i < 200; i++)); do
        OPENSSL_CONF=$T/default-only.cnf TPM2TOOLS_TCTI=$1 tpm2_getrandom 1 >/dev/null \
            2>"$TPM2_DIR/getrandom.err" && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# tpm2_start: swtpm, a private bus and tpm2-abrmd, and the store, once per
# test script. Exports the environment the module and the tools read.
tpm2_start()
{
    local t0
    [ -n "$TPM2_DIR" ] && return 0
    t0=$(date +%s%N)
    TPM2_DIR=$T/tpm2
    mkdir -p "$TPM2_DIR/state" "$TPM2_DIR/store" || return 1
    chmod 700 "$TPM2_DIR"
    _tpm2_daemon swtpm swtpm socket --tpm2 --tpmstate "dir=$TPM2_DIR/state" \
        --server "type=unixio,path=$TPM2_DIR/tpm.sock" \
        --ctrl "type=unixio,path=$TPM2_DIR/tpm.sock.ctrl" \
        --flags not-need-init,startup-clear
    _tpm2_wait_socket "$TPM2_DIR/tpm.sock" "$TPM2_LAST_PID" \
        || { diag "swtpm did not start"; diag_file "$TPM2_DIR/swtpm.err"; return 1; }
    # The socket exists once bound, maybe before swtpm listens: wait until
    # it answers a command, or tpm2-abrmd gives up at once.
    _tpm2_wait_answer "swtpm:path=$TPM2_DIR/tpm.sock" "$TPM2_LAST_PID" \
        || { diag "swtpm does not answer"; diag_file "$TPM2_DIR/swtpm.err"
             diag_file "$TPM2_DIR/getrandom.err"; return 1; }
    cat >"$TPM2_DIR/bus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<!-- the private bus of one p11id test: tpm2-abrmd and its clients only -->
<busconfig>
  <type>session</type>
  <listen>unix:path=$TPM2_DIR/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
EOF
    _tpm2_daemon dbus dbus-daemon --config-file="$TPM2_DIR/bus.conf" \
        --nofork --nopidfile
    _tpm2_wait_socket "$TPM2_DIR/bus" "$TPM2_LAST_PID" \
        || { diag "dbus-daemon did not start"; diag_file "$TPM2_DIR/dbus.err"; return 1; }
    DBUS_SESSION_BUS_ADDRESS=unix:path=$TPM2_DIR/bus
    export DBUS_SESSION_BUS_ADDRESS
    _tpm2_daemon abrmd tpm2-abrmd --session --allow-root --flush-all \
        --tcti="swtpm:path=$TPM2_DIR/tpm.sock"
    TPM2_PKCS11_TCTI="tabrmd:bus_type=session"
    TPM2TOOLS_TCTI=$TPM2_PKCS11_TCTI
    TPM2_PKCS11_STORE=$TPM2_DIR/store
    export TPM2_PKCS11_TCTI TPM2TOOLS_TCTI TPM2_PKCS11_STORE
    _tpm2_wait_answer "$TPM2TOOLS_TCTI" "$TPM2_LAST_PID" \
        || { diag "tpm2-abrmd does not answer"; diag_file "$TPM2_DIR/abrmd.err"
             diag_file "$TPM2_DIR/getrandom.err"; return 1; }
    tpm2_run tpm2_ptool init --path "$TPM2_PKCS11_STORE"
    [ "$RUN_RC" -eq 0 ] || { _run_diag; return 1; }
    diag "tpm2: swtpm, tpm2-abrmd and the store up in $((($(date +%s%N) - t0) / 1000000)) ms"
}

# token_init LABEL [PIN] [SO_PIN]: a fresh tpm2-pkcs11 token (tpm2_ptool
# addtoken under the primary object made by tpm2_ptool init).
token_init()
{
    local label=$1 pin=${2:-$PIN} sopin=${3:-$SO_PIN} t0
    tpm2_start || return 1
    t0=$(date +%s%N)
    tpm2_run tpm2_ptool addtoken --pid="$TPM2_PID_NEXT" --label="$label" \
        --sopin="$sopin" --userpin="$pin" --path "$TPM2_PKCS11_STORE"
    [ "$RUN_RC" -eq 0 ] || { _run_diag; return 1; }
    diag "tpm2: token $label made in $((($(date +%s%N) - t0) / 1000000)) ms"
}

# What tpm2-pkcs11 1.9 on swtpm 0.7 (libtpms) lacks; see docs/tokens-tpm2.md.
token_supports()
{
    case "$1" in
        rsa2048 | rsa3072 | ec256 | ec384) return 0 ;;
        # no such TPM key types
        ed25519 | ed448 | rsa4096) return 1 ;;
        # 1.9 encodes the 133-byte P-521 CKA_EC_POINT with a short-form DER
        # length (04 85 04...) and fails its own C_SignInit on it
        ec521) return 1 ;;
        # no CKM_ECDH1_DERIVE
        ecdh) return 1 ;;
        # C_CopyObject: CKR_FUNCTION_NOT_SUPPORTED
        session-copy) return 1 ;;
        # the TPM's PSS salt is the digest length
        pss-saltlen-max) return 1 ;;
        # With libp11's engine loaded, tss2-esys cannot make the RSA key of
        # its salted session (EVP_PKEY_fromdata: "operation not supported
        # for this keytype"): C_Login fails with CKR_GENERAL_ERROR.
        libp11-engine) return 1 ;;
        *) return 0 ;;
    esac
}
