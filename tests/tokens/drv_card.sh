# tests/tokens/drv_card.sh: token driver for P11ID_TOKEN_KIND=card, sourced
# by tests/lib/common.sh. The token is a smart card seen through OpenSC's
# PKCS#11 module and pcscd, as on a desktop with a card reader:
#
#   OpenSC opensc-pkcs11.so -> libpcsclite -> pcscd -> vpcd (vsmartcard's
#   reader driver) -> TCP -> tests/tokens/vcard_bridge -> libcacard, which
#   emulates a CAC card over the keys and certificates of an NSS database.
#
# Everything lives under $T/card. pcscd runs in a private mount and network
# namespace (unshare -m -n): its socket directory /run/pcscd is fixed at
# build time, so /run is bind-mounted from $T/card/run there, and vpcd's TCP
# port (35963) is private. The bridge joins that network namespace
# (nsenter). Clients reach pcscd through PCSCLITE_CSOCK_NAME; nothing of the
# machine's own pcscd, reader configuration or /run is used or changed.
#
# A CAC card is read-only and RSA-only: key_gen adds a key and a self-signed
# certificate to the NSS database (certutil) and puts the card in the reader
# again with that key on it, as the card's issuer would. OpenSC names the
# keys after their CAC slot ("CAC ID Certificate", "CAC Cert 4"...), so
# key_uri maps a test's key name to that label. The token label is the CN of
# the card's first certificate, made by token_init.
#
# card_pull / card_insert take the card out of the reader and put it back.
# shellcheck shell=bash disable=SC2034

SOFTHSM_MODULE=/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so
CARD_VPCD_DRIVER=/usr/lib/pcsc/drivers/serial/libifdvpcd.so
CARD_BRIDGE=${CARD_BRIDGE:-$TOP_BUILDDIR/tests/tokens/vcard_bridge}
CARD=            # $T/card, made by token_init
CARD_NETNS=      # /proc/PID/ns/net of pcscd
CARD_BRIDGE_PID= # BG_PID of the running bridge
CARD_NICKS=()    # NSS nicknames of the card's certificates, in card order
CARD_FREE_ID=    # the ID certificate's key, until a key_gen takes it
declare -A KEY_LABEL=()  # key name -> CKA_LABEL OpenSC gives it

# Tests must not slow down on NSS's password-based key derivation.
export NSS_MIN_MP_PBE_ITERATION_COUNT=1 NSS_MAX_MP_PBE_ITERATION_COUNT=1

_card_skip()
{
    printf '1..0 # SKIP card token: %s\n' "$1"
    T_DONE=1
    exit 0
}

_card_check()
{
    local c
    for c in pcscd unshare nsenter ip certutil pkcs11-tool pgrep; do
        command -v "$c" >/dev/null 2>&1 \
            || _card_skip "no $c (scripts/deps.sh installs it)"
    done
    [ -f "$SOFTHSM_MODULE" ] || _card_skip "no OpenSC module $SOFTHSM_MODULE"
    [ -f "$CARD_VPCD_DRIVER" ] \
        || _card_skip "no vpcd reader driver $CARD_VPCD_DRIVER (vsmartcard-vpcd)"
    [ -x "$CARD_BRIDGE" ] \
        || _card_skip "no $CARD_BRIDGE (built by make check with libcacard-dev)"
    [ "$(id -u)" -eq 0 ] \
        || _card_skip "pcscd's private namespace needs root (unshare -m -n)"
}
_card_check

token_supports()
{
    case "$1" in
        rsa2048 | rsa3072 | oaep-sha256 | csr) return 0 ;;
        *) return 1 ;;  # EC, Ed25519, keygen-tool, import, ecdh, session-copy, rw
    esac
}

# The daemons live as long as the test may (bg_start's timeout is per command).
CARD_DAEMON_TIMEOUT=900

_card_start_pcscd()
{
    local i pid
    mkdir -p "$CARD/run/pcscd" "$CARD/reader.conf.d" || return 1
    cat >"$CARD/reader.conf.d/vpcd" <<EOF
# vsmartcard's virtual reader: waits for a virtual card on TCP port 35963 in
# pcscd's private network namespace.
FRIENDLYNAME "p11id test reader"
DEVICENAME   /dev/null:0x8C7B
LIBPATH      $CARD_VPCD_DRIVER
CHANNELID    0x8C7B
EOF
    # pcscd is not instrumented: no ASan runtime preloaded into it.
    ASAN_PRELOAD='' T_TIMEOUT=$CARD_DAEMON_TIMEOUT bg_start card-pcscd \
        unshare -m -n sh -c 'ip link set lo up && mount --bind "$1" /run \
            && exec pcscd --foreground --config "$2"' sh \
        "$CARD/run" "$CARD/reader.conf.d"
    for ((i = 0; i < 100; i++)); do
        [ -S "$CARD/run/pcscd/pcscd.comm" ] && break
        kill -0 "$BG_PID" 2>/dev/null || break
        sleep 0.05
    done
    pid=$(pgrep -P "$BG_PID" -x pcscd)
    if [ ! -S "$CARD/run/pcscd/pcscd.comm" ] || [ -z "$pid" ]; then
        diag "pcscd did not start"
        diag_file "$T/card-pcscd.out"
        diag_file "$T/card-pcscd.err"
        return 1
    fi
    CARD_NETNS=/proc/$pid/ns/net
    export PCSCLITE_CSOCK_NAME="$CARD/run/pcscd/pcscd.comm"
}

# _card_visible N: wait until OpenSC sees the card with N certificates.
_card_visible()
{
    local n=$1 i got
    for ((i = 0; i < 100; i++)); do
        run pkcs11-tool --module "$SOFTHSM_MODULE" --list-objects --type cert
        got=$(grep -c '^Certificate Object' "$RUN_OUT")
        [ "$RUN_RC" -eq 0 ] && [ "$got" -eq "$n" ] && return 0
        sleep 0.1
    done
    diag "OpenSC does not see the card with $n certificates (sees $got)"
    _run_diag
    diag_file "$T/card-bridge.err"
    return 1
}

# _card_start_bridge: (re)start the virtual card with every key so far.
_card_start_bridge()
{
    if [ -n "$CARD_BRIDGE_PID" ]; then
        bg_stop "$CARD_BRIDGE_PID"
        CARD_BRIDGE_PID=
    fi
    touch "$CARD/present"
    T_TIMEOUT=$CARD_DAEMON_TIMEOUT bg_start card-bridge \
        nsenter --net="$CARD_NETNS" "$CARD_BRIDGE" --db "$CARD/nssdb" \
        --port 35963 --present "$CARD/present" "${CARD_NICKS[@]}"
    CARD_BRIDGE_PID=$BG_PID
    if ! wait_for_line "$T/card-bridge.out" '^inserted' "$BG_PID" 20; then
        diag "the virtual card did not connect to vpcd"
        diag_file "$T/card-bridge.err"
        return 1
    fi
    _card_visible "${#CARD_NICKS[@]}"
}

# _card_new_cert NICK CN BITS: an RSA key and a self-signed certificate.
_card_new_cert()
{
    run certutil -S -d "sql:$CARD/nssdb" -f "$CARD/nss.pw" -z "$CARD/noise" \
        -n "$1" -s "CN=$2" -x -t u,u,u -k rsa -g "$3" -v 12
    [ "$RUN_RC" -eq 0 ] || { _run_diag; return 1; }
}

# token_init LABEL [PIN]: a CAC card whose first (ID) certificate has CN
# LABEL (OpenSC's token label) and whose PIN is PIN, in the test's reader.
token_init()
{
    local label=$1 pin=${2:-$PIN}
    if [ -n "$CARD" ]; then
        diag "card token: one card per test (asked for a second: $label)"
        return 1
    fi
    CARD=$T/card
    mkdir -p "$CARD/nssdb" || return 1
    chmod 700 "$CARD"
    printf '%s\n' "$pin" >"$CARD/nss.pw"
    head -c 64 /dev/urandom >"$CARD/noise"
    cat >"$CARD/opensc.conf" <<EOF
# OpenSC for one p11id test: no file cache (the card changes between
# insertions under the same serial), nothing written to \$HOME.
app default {
    framework pkcs15 { use_file_caching = no; }
}
EOF
    export OPENSC_CONF="$CARD/opensc.conf"
    run certutil -N -d "sql:$CARD/nssdb" -f "$CARD/nss.pw"
    [ "$RUN_RC" -eq 0 ] || { _run_diag; return 1; }
    _card_new_cert card-id "$label" 2048 || return 1
    CARD_NICKS=(card-id)
    CARD_FREE_ID=0001
    _card_start_pcscd || return 1
    _card_start_bridge
}

# _card_label ID: the CKA_LABEL OpenSC shows for the private key ID.
_card_label()
{
    p11tool --login --pin "$PIN" --list-objects --type privkey
    awk -v id="$1" '
        /^[^ ]/ { inkey = ($0 ~ /^Private Key Object/); label = "" }
        inkey && $1 == "label:" { sub(/^ *label: */, ""); label = $0 }
        inkey && $1 == "ID:" && $2 == id { print label; exit }
    ' "$RUN_OUT"
}

# key_gen NAME TYPE [TOKEN]: the card's ID key for the first RSA-2048 key;
# after that, a new key on the card (the card is reinserted with it).
key_gen()
{
    local name=$1 type=$2 bits id
    case "$type" in
        rsa2048) bits=2048 ;;
        rsa3072) bits=3072 ;;
        *) diag "card token: no $type keys (CAC cards are RSA only)"; return 1 ;;
    esac
    if [ -n "$CARD_FREE_ID" ] && [ "$bits" = 2048 ]; then
        id=$CARD_FREE_ID
        CARD_FREE_ID=
    else
        _card_new_cert "$name" "$name" "$bits" || return 1
        CARD_NICKS+=("$name")
        _card_start_bridge || return 1
        id=$(printf '%04x' "${#CARD_NICKS[@]}")
    fi
    KEY_ID[$name]=$id
    KEY_TYPE[$name]=$type
    KEY_TOKEN[$name]=${3:-$TOKEN}
    KEY_LABEL[$name]=$(_card_label "$id")
    [ -n "${KEY_LABEL[$name]}" ] || { diag "no private key $id on the card"; return 1; }
    token_pubkey "${KEY_TOKEN[$name]}" "$id" "$T/keys/$name.pub.pem"
}

_card_uri_enc()
{
    local s=$1
    s=${s//%/%25}
    s=${s// /%20}
    s=${s//;/%3B}
    printf '%s' "$s"
}

key_uri()
{
    local name=$1 kind=${2:-private}
    printf 'pkcs11:token=%s;object=%s;type=%s' \
        "$(_card_uri_enc "${KEY_TOKEN[$name]:-$TOKEN}")" \
        "$(_card_uri_enc "${KEY_LABEL[$name]:-$name}")" "$kind"
}

# card_pull / card_insert: the card leaves the reader / comes back (logged
# out, as a real card). card_insert waits until OpenSC sees it again.
# _card_await WORD N: the bridge has printed WORD more than N times.
_card_await()
{
    local i
    for ((i = 0; i < 200; i++)); do
        [ "$(grep -c "^$1" "$T/card-bridge.out")" -gt "$2" ] && return 0
        sleep 0.05
    done
    diag "the bridge did not report '$1'"
    diag_file "$T/card-bridge.err"
    return 1
}

# card_pull waits until pcscd has seen the card go (it polls the reader):
# an operation under way at the very moment of the pull gets whatever the
# module makes of a broken transmission (OpenSC: CKR_GENERAL_ERROR or
# CKR_FUNCTION_FAILED), not CKR_DEVICE_REMOVED.
card_pull()
{
    local n i
    n=$(grep -c '^pulled' "$T/card-bridge.out")
    rm -f "$CARD/present"
    _card_await pulled "$n" || return 1
    for ((i = 0; i < 100; i++)); do
        run pkcs11-tool --module "$SOFTHSM_MODULE" --list-slots
        grep -q 'token label' "$RUN_OUT" || return 0
        sleep 0.05
    done
    diag "OpenSC still sees the card after it was pulled"
    return 1
}

card_insert()
{
    local n
    n=$(grep -c '^inserted' "$T/card-bridge.out")
    touch "$CARD/present"
    _card_await inserted "$n" && _card_visible "${#CARD_NICKS[@]}"
}
