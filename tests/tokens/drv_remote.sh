# tests/tokens/drv_remote.sh: token driver for p11-kit remoting, sourced by
# tests/lib/common.sh when P11ID_TOKEN_KIND=remote. The tokens are SoftHSM
# tokens under $T (as for the default driver), exported by p11-kit; p11id
# reaches them through one of three transports (P11ID_REMOTE_TRANSPORT):
#
#   unix  (default) `p11-kit server` serves SoftHSM on a unix socket under
#         $T; p11id loads p11-kit-client.so with
#         P11_KIT_SERVER_ADDRESS=unix:path=SOCKET.
#   exec  a module registered with p11-kit as "softhsm-remote" with
#         `remote: |p11-kit remote /usr/lib/softhsm/libsofthsm2.so`: each
#         process that loads it runs its own `p11-kit remote` child and talks
#         PKCS#11 over its stdin/stdout. p11id names it by module-name
#         (pkcs11-module-name); pkcs11-tool goes through p11-kit-proxy.so. The
#         registration lives in a private mount namespace (as for NSS).
#   tcp   two network namespaces joined by a veth pair: `p11-kit server` and
#         a socat TCP listener (TCP_NODELAY) in one, a socat unix-socket
#         listener in the other forwarding over TCP; p11-kit-client.so
#         connects to that unix socket. Root only (ip netns).
#         P11ID_REMOTE_NODELAY=0 leaves TCP_NODELAY off (for the benchmark).
# shellcheck disable=SC2034

: "${P11ID_REMOTE_TRANSPORT:=unix}"
export P11ID_REMOTE_TRANSPORT
P11KIT_CLIENT=${P11KIT_CLIENT:-/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so}
P11KIT_PROXY=${P11KIT_PROXY:-/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so}
REMOTE_SOFTHSM=/usr/lib/softhsm/libsofthsm2.so
REMOTE_MODULE_NAME=softhsm-remote
REMOTE_STARTED=        # the server side runs

remote_skip()
{
    printf '1..0 # SKIP %s\n' "$1"
    exit 0
}

command -v p11-kit >/dev/null 2>&1 || remote_skip "no p11-kit command (Debian: p11-kit)"
[ -f "$P11KIT_CLIENT" ] || remote_skip "no $P11KIT_CLIENT (Debian: p11-kit-modules)"

case "$P11ID_REMOTE_TRANSPORT" in
    unix | tcp)
        SOFTHSM_MODULE=$P11KIT_CLIENT
        if [ "$P11ID_REMOTE_TRANSPORT" = tcp ]; then
            [ "$(id -u)" -eq 0 ] || remote_skip "network namespaces need root"
            command -v ip >/dev/null 2>&1 || remote_skip "no ip (Debian: iproute2)"
            command -v socat >/dev/null 2>&1 || remote_skip "no socat (Debian: socat)"
        fi
        ;;
    exec)
        # Same private-namespace dance as drv_nss.sh: the registration must be
        # the only one p11-kit sees.
        if [ -z "${P11ID_REMOTE_MODDIR:-}" ]; then
            _ru=(unshare -m)
            [ "$(id -u)" -eq 0 ] || _ru=(unshare -r -m)
            "${_ru[@]}" true 2>/dev/null \
                || remote_skip "cannot make a private mount namespace (${_ru[*]})"
            _rd=$(mktemp -d "${TMPDIR:-/tmp}/p11id-remote-modules.XXXXXX") || exit 1
            mkdir -p "$_rd/modules" "$_rd/etc-pkcs11/modules"
            P11ID_REMOTE_MODDIR=$_rd/modules "${_ru[@]}" bash -c '
                mount --bind "$P11ID_REMOTE_MODDIR" /usr/share/p11-kit/modules || exit 99
                if [ -d /etc/pkcs11 ]; then
                    mount --bind "${P11ID_REMOTE_MODDIR%/modules}/etc-pkcs11" /etc/pkcs11 || exit 99
                fi
                export P11ID_REMOTE_MODDIR
                exec bash "$@"' bash "$0" "$@"
            _rc=$?
            rm -rf -- "$_rd"
            [ "$_rc" -eq 99 ] && echo "Bail out! cannot bind-mount the private p11-kit module directory"
            exit "$_rc"
        fi
        export HOME=${P11ID_REMOTE_MODDIR%/modules}
        SOFTHSM_MODULE=$REMOTE_SOFTHSM   # not loaded by p11id: see write_openssl_conf
        ;;
    *)
        echo "Bail out! P11ID_REMOTE_TRANSPORT=$P11ID_REMOTE_TRANSPORT: use unix, exec or tcp"
        exit 1
        ;;
esac

# The common functions, kept under other names.
eval "_common_write_openssl_conf() $(declare -f write_openssl_conf | tail -n +2)"
eval "_common_token_init() $(declare -f token_init | tail -n +2)"
eval "_common_key_selfcontained_uri() $(declare -f key_selfcontained_uri | tail -n +2)"

# remote_bg NAME CMD...: a server-side process for the whole test (no
# timeout, unlike bg_start), stopped at exit by t_cleanup.
remote_bg()
{
    local name=$1
    shift
    # The server side is the token's host: SoftHSM there has no use for
    # p11id (an ASan build of it cannot load without the ASan runtime).
    OPENSSL_CONF=$T/default-only.cnf \
        "$@" </dev/null >"$T/$name.out" 2>"$T/$name.err" &
    REMOTE_PID=$!
    T_PIDS+=("$REMOTE_PID")
}

# remote_wait_socket PATH PID: until the socket exists (20 s).
remote_wait_socket()
{
    local i
    for ((i = 0; i < 200; i++)); do
        [ -S "$1" ] && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# The p11-kit server exporting every SoftHSM token of $SOFTHSM2_CONF (each
# connection gets a fresh `p11-kit remote`, so tokens made later are seen).
remote_start_server()
{
    local sock=$1
    shift
    remote_bg p11kit-server "$@" p11-kit server -f -n "$sock" \
        --provider "$REMOTE_SOFTHSM" 'pkcs11:'
    remote_wait_socket "$sock" "$REMOTE_PID" \
        || { diag_file "$T/p11kit-server.err"; return 1; }
}

# The veth pair and the two socat legs (tcp transport).
remote_netns_cleanup()
{
    ip netns del "$REMOTE_NS_SRV" 2>/dev/null
    ip netns del "$REMOTE_NS_CLI" 2>/dev/null
}

remote_start_tcp()
{
    local net=$(( ($$ % 250) + 1 )) port=5599 nodelay=,nodelay
    [ "${P11ID_REMOTE_NODELAY:-1}" = 0 ] && nodelay=
    REMOTE_NS_SRV=p11id-$$-srv
    REMOTE_NS_CLI=p11id-$$-cli
    REMOTE_SRV_IP=10.231.$net.1
    ip netns add "$REMOTE_NS_SRV" && ip netns add "$REMOTE_NS_CLI" || return 1
    trap 't_cleanup; remote_netns_cleanup' EXIT
    ip link add "p11s$$" type veth peer name "p11c$$" || return 1
    ip link set "p11s$$" netns "$REMOTE_NS_SRV" && ip link set "p11c$$" netns "$REMOTE_NS_CLI" || return 1
    ip -n "$REMOTE_NS_SRV" addr add "$REMOTE_SRV_IP/30" dev "p11s$$" || return 1
    ip -n "$REMOTE_NS_CLI" addr add "10.231.$net.2/30" dev "p11c$$" || return 1
    ip -n "$REMOTE_NS_SRV" link set "p11s$$" up && ip -n "$REMOTE_NS_CLI" link set "p11c$$" up || return 1
    ip -n "$REMOTE_NS_SRV" link set lo up && ip -n "$REMOTE_NS_CLI" link set lo up || return 1
    remote_start_server "$T/server.sock" ip netns exec "$REMOTE_NS_SRV" || return 1
    remote_bg socat-srv ip netns exec "$REMOTE_NS_SRV" socat -d -d \
        "TCP-LISTEN:$port,bind=$REMOTE_SRV_IP,reuseaddr,fork$nodelay" \
        "UNIX-CONNECT:$T/server.sock"
    remote_bg socat-cli ip netns exec "$REMOTE_NS_CLI" socat \
        "UNIX-LISTEN:$T/client.sock,fork,mode=600" \
        "TCP:$REMOTE_SRV_IP:$port$nodelay"
    remote_wait_socket "$T/client.sock" "$REMOTE_PID" \
        || { diag_file "$T/socat-cli.err"; return 1; }
    export P11_KIT_SERVER_ADDRESS="unix:path=$T/client.sock"
}

# token_init LABEL [PIN] [SO_PIN]: a SoftHSM token under $T; the first one
# also brings up the transport.
token_init()
{
    _common_token_init "$@" || return 1
    [ -n "$REMOTE_STARTED" ] && return 0
    case "$P11ID_REMOTE_TRANSPORT" in
        unix)
            remote_start_server "$T/server.sock" || return 1
            export P11_KIT_SERVER_ADDRESS="unix:path=$T/server.sock"
            ;;
        tcp)
            remote_start_tcp || { diag "cannot set up the namespaces, veth and socat legs"; return 1; }
            ;;
        exec)
            printf '# p11id test: SoftHSM through p11-kit remote (exec)\nremote: |p11-kit remote %s\n' \
                "$REMOTE_SOFTHSM" >"$P11ID_REMOTE_MODDIR/$REMOTE_MODULE_NAME.module"
            ;;
    esac
    REMOTE_STARTED=1
}

# exec: the provider names the registered module; the others load
# p11-kit-client.so as the module path.
write_openssl_conf()
{
    local file=$1
    shift
    if [ "$P11ID_REMOTE_TRANSPORT" = exec ]; then
        _common_write_openssl_conf "$file" "pkcs11-module-path=" \
            "pkcs11-module-name=$REMOTE_MODULE_NAME" "$@"
    else
        _common_write_openssl_conf "$file" "$@"
    fi
}

p11tool()
{
    # pkcs11-tool is set-up here, not under test: without the ASan runtime,
    # which reports a heap overflow inside pkcs11-tool + p11-kit-client.so
    # (OpenSC 0.23, p11-kit 0.24) on key generation, neither of them p11id;
    # and without p11id in its OpenSSL configuration.
    local ASAN_PRELOAD=
    if [ "$P11ID_REMOTE_TRANSPORT" = exec ]; then
        OPENSSL_CONF=$T/default-only.cnf \
            run pkcs11-tool --module "$P11KIT_PROXY" "$@"
    else
        OPENSSL_CONF=$T/default-only.cnf \
            run pkcs11-tool --module "$P11KIT_CLIENT" "$@"
    fi
}

key_selfcontained_uri()
{
    if [ "$P11ID_REMOTE_TRANSPORT" = exec ]; then
        printf '%s?module-name=%s&pin-value=%s' "$(key_uri "$1")" \
            "$REMOTE_MODULE_NAME" "$PIN"
    else
        _common_key_selfcontained_uri "$@"
    fi
}

# The token is SoftHSM, but p11-kit 0.24's RPC passes only the mechanisms
# whose parameters it can marshal: no EdDSA (nor Edwards key generation),
# no ECDH1-DERIVE, no SHAn-RSA-PKCS-PSS. RSA PKCS#1/PSS/OAEP and ECDSA pass.
token_supports()
{
    case "$1" in
        ed25519 | ed448 | ecdh) return 1 ;;
        *) return 0 ;;
    esac
}
