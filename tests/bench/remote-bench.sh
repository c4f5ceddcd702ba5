#!/usr/bin/env bash
# tests/bench/remote-bench.sh: signatures/s through p11id with the key on a
# SoftHSM token reached locally and through p11-kit remoting, one run, as
# ratios to the local token:
#   local       libsofthsm2.so loaded by p11id
#   unix        p11-kit server on a unix socket, p11-kit-client.so
#   exec        a p11-kit registration `remote: |p11-kit remote libsofthsm2.so`
#               (private mount namespace; p11id by pkcs11-module-name)
#   tcp         p11-kit server and a socat TCP listener in one network
#               namespace, a socat unix-to-TCP leg in another, joined by a
#               veth pair; TCP_NODELAY on both legs (root only)
#   tcp-delay   the same without TCP_NODELAY (what a plain TCP leg costs)
# Same key, same process type (tests/bench/p11id-bench sign --path p11id,
# one thread): EVP_DigestSign as libssl does it per handshake.
#
# Environment: TOP_BUILDDIR (default: this checkout), BENCH_BIN
# (tests/bench/p11id-bench, built with `make tests/bench/p11id-bench`),
# BENCH_ALG (p256 | rsa, default p256), BENCH_SECONDS (2), BENCH_ONLY (a
# subset of the rows above), BENCH_KEEP=1 (keep the temp dir).
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${TOP_BUILDDIR:=$(cd "$here/../.." && pwd)}"
: "${BENCH_BIN:=$TOP_BUILDDIR/tests/bench/p11id-bench}"
: "${BENCH_ALG:=p256}" "${BENCH_SECONDS:=2}"
: "${BENCH_ONLY:=local unix exec tcp tcp-delay}"
PROV=$TOP_BUILDDIR/src/provider/.libs/p11id.so
SOFTHSM=/usr/lib/softhsm/libsofthsm2.so
CLIENT=/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so

die() { echo "remote-bench: $*" >&2; exit 1; }
[ -x "$BENCH_BIN" ] || die "no $BENCH_BIN (make tests/bench/p11id-bench)"
[ -f "$PROV" ] || die "no $PROV (build first)"

# The exec row needs a private p11-kit registration: run again in a private
# mount namespace with our own module directory.
if [ -z "${RB_MODDIR:-}" ]; then
    RB_TMP=$(mktemp -d "${TMPDIR:-/tmp}/p11id-remote-bench.XXXXXX") || exit 1
    mkdir -p "$RB_TMP/modules" "$RB_TMP/etc-pkcs11"
    ns=(unshare -m)
    [ "$(id -u)" -eq 0 ] || ns=(unshare -r -m)
    if "${ns[@]}" true 2>/dev/null; then
        RB_TMP=$RB_TMP RB_MODDIR=$RB_TMP/modules "${ns[@]}" bash -c '
            mount --bind "$RB_MODDIR" /usr/share/p11-kit/modules || exit 1
            [ -d /etc/pkcs11 ] && { mount --bind "$RB_TMP/etc-pkcs11" /etc/pkcs11 || exit 1; }
            export RB_TMP RB_MODDIR
            exec bash "$0"' "$0"
        rc=$?
    else
        echo "remote-bench: no private mount namespace: the exec row is left out" >&2
        RB_TMP=$RB_TMP RB_MODDIR=none bash "$0"
        rc=$?
    fi
    [ "${BENCH_KEEP:-0}" = 1 ] && echo "kept $RB_TMP" || rm -rf -- "$RB_TMP"
    exit "$rc"
fi

W=$RB_TMP
PIDS=()
NS_SRV=p11id-rb$$-srv
NS_CLI=p11id-rb$$-cli
cleanup()
{
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    ip netns del "$NS_SRV" 2>/dev/null
    ip netns del "$NS_CLI" 2>/dev/null
}
trap cleanup EXIT

# --- one token, one key ------------------------------------------------------
mkdir -p "$W/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
    "$W" >"$W/softhsm2.conf"
export SOFTHSM2_CONF=$W/softhsm2.conf
printf '1234' >"$W/pin"
softhsm2-util --init-token --free --label bench --so-pin 12345678 --pin 1234 \
    >/dev/null || die "softhsm2-util failed"
case "$BENCH_ALG" in
    p256) kt=EC:prime256v1 ;;
    rsa) kt=rsa:2048 ;;
    *) die "BENCH_ALG: p256 or rsa" ;;
esac
pkcs11-tool --module "$SOFTHSM" --token-label bench --login --pin 1234 \
    --keypairgen --key-type "$kt" --id 01 --label k >/dev/null 2>&1 \
    || die "pkcs11-tool --keypairgen failed"
KEY='pkcs11:token=bench;object=k;type=private'

# conf NAME KEY=VALUE...: an OpenSSL config activating p11id with settings.
conf()
{
    local f=$W/$1.cnf kv
    shift
    {
        printf 'openssl_conf = oi\n[oi]\nproviders = ps\n[ps]\ndefault = ds\np11id = p11s\n'
        printf '[ds]\nactivate = 1\n[p11s]\nmodule = %s\npin-source = file:%s/pin\n' "$PROV" "$W"
        for kv in "$@"; do printf '%s = %s\n' "${kv%%=*}" "${kv#*=}"; done
        printf 'activate = 1\n'
    } >"$f"
    printf '%s' "$f"
}

wait_sock() { local i; for ((i = 0; i < 100; i++)); do [ -S "$1" ] && return 0; sleep 0.1; done; return 1; }

LOCAL_CNF=$(conf local "pkcs11-module-path=$SOFTHSM")
OPENSSL_CONF=$LOCAL_CNF openssl pkey -pubin -in "${KEY%private}public" -out "$W/pub.pem" \
    || die "cannot read the public key"

# measure ROW CONF [ENV=VALUE...]: one p11id-bench run; the rate or "-".
declare -A RATE=()
measure()
{
    local row=$1 cnf=$2 line
    shift 2
    line=$(env "$@" OPENSSL_CONF="$cnf" timeout 120 "$BENCH_BIN" sign --path p11id \
        --alg "$BENCH_ALG" --key "$KEY" --pub "$W/pub.pem" --seconds "$BENCH_SECONDS" \
        2>"$W/$row.err")
    RATE[$row]=$(printf '%s' "$line" | sed -n 's/.*"rate":\([0-9.]*\).*/\1/p')
    [ -n "${RATE[$row]}" ] || { RATE[$row]=-; sed 's/^/  /' "$W/$row.err" | tail -n 3 >&2; }
}

want() { case " $BENCH_ONLY " in *" $1 "*) return 0 ;; esac; return 1; }

want local && measure local "$LOCAL_CNF"

if want unix; then
    p11-kit server -f -n "$W/unix.sock" --provider "$SOFTHSM" 'pkcs11:' >/dev/null 2>"$W/unix-server.err" &
    PIDS+=($!)
    wait_sock "$W/unix.sock" || die "p11-kit server did not start"
    measure unix "$(conf unix "pkcs11-module-path=$CLIENT")" \
        "P11_KIT_SERVER_ADDRESS=unix:path=$W/unix.sock"
fi

if want exec; then
    if [ "$RB_MODDIR" != none ]; then
        printf 'remote: |p11-kit remote %s\n' "$SOFTHSM" >"$RB_MODDIR/softhsm-remote.module"
        measure exec "$(conf exec pkcs11-module-name=softhsm-remote)"
    else
        RATE[exec]=-
    fi
fi

# tcp_legs NODELAY(,nodelay or empty) PORT SOCK: server-side socat and the
# client-side unix listener.
if want tcp || want tcp-delay; then
    if [ "$(id -u)" -ne 0 ] || ! command -v socat >/dev/null || ! command -v ip >/dev/null; then
        echo "remote-bench: tcp rows need root, ip and socat: left out" >&2
        RATE[tcp]=-; RATE[tcp-delay]=-
    else
        ip netns add "$NS_SRV" && ip netns add "$NS_CLI" \
            && ip link add "rbs$$" type veth peer name "rbc$$" \
            && ip link set "rbs$$" netns "$NS_SRV" && ip link set "rbc$$" netns "$NS_CLI" \
            && ip -n "$NS_SRV" addr add 10.232.1.1/30 dev "rbs$$" \
            && ip -n "$NS_CLI" addr add 10.232.1.2/30 dev "rbc$$" \
            && ip -n "$NS_SRV" link set "rbs$$" up && ip -n "$NS_CLI" link set "rbc$$" up \
            || die "cannot set up the network namespaces"
        ip netns exec "$NS_SRV" p11-kit server -f -n "$W/tcp-server.sock" --provider "$SOFTHSM" \
            'pkcs11:' >/dev/null 2>"$W/tcp-server.err" &
        PIDS+=($!)
        wait_sock "$W/tcp-server.sock" || die "p11-kit server (tcp) did not start"
        for row in tcp tcp-delay; do
            want "$row" || continue
            nd=,nodelay port=5601
            [ "$row" = tcp-delay ] && nd= port=5602
            ip netns exec "$NS_SRV" socat "TCP-LISTEN:$port,bind=10.232.1.1,reuseaddr,fork$nd" \
                "UNIX-CONNECT:$W/tcp-server.sock" 2>"$W/$row-socat-srv.err" &
            PIDS+=($!)
            ip netns exec "$NS_CLI" socat "UNIX-LISTEN:$W/$row.sock,fork" \
                "TCP:10.232.1.1:$port$nd" 2>"$W/$row-socat-cli.err" &
            PIDS+=($!)
            wait_sock "$W/$row.sock" || die "socat ($row) did not start"
            measure "$row" "$(conf "$row" "pkcs11-module-path=$CLIENT")" \
                "P11_KIT_SERVER_ADDRESS=unix:path=$W/$row.sock"
        done
    fi
fi

# --- the table -------------------------------------------------------------------
printf '\nsignatures/s through p11id, %s, one thread, %s s each (one run)\n\n' \
    "$([ "$BENCH_ALG" = p256 ] && echo 'ECDSA P-256 SHA-256' || echo 'RSA-2048 PKCS#1 v1.5 SHA-256')" \
    "$BENCH_SECONDS"
printf '| %-10s | %12s | %10s |\n' transport 'signatures/s' 'vs local'
printf '|%s|%s|%s|\n' ------------ -------------- ------------
for row in local unix exec tcp tcp-delay; do
    want "$row" || continue
    r=${RATE[$row]:--}
    ratio=-
    if [ "$r" != - ] && [ "${RATE[local]:--}" != - ]; then
        ratio=$(awk -v a="$r" -v b="${RATE[local]}" 'BEGIN { printf "%.3f", a / b }')
    fi
    printf '| %-10s | %12s | %10s |\n' "$row" "$r" "$ratio"
done
