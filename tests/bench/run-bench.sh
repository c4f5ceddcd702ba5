#!/usr/bin/env bash
# tests/bench/run-bench.sh: the p11id benchmark (`make bench` runs it).
#
# Makes a private SoftHSM token set under a temp dir, then measures, in this
# order (docs/performance.md says what each number means):
#   sign     signatures/s per algorithm, 1 and 2 threads, through raw PKCS#11
#            on the token key and on a session copy of it (the limit), p11id,
#            the libp11 engine and a software key; BENCH_ROUNDS rounds, the
#            paths interleaved (and rotated) inside each round; two paths
#            that say where a gap is: copyp (the limit with p11id activated
#            in the process) and reuse (p11id, one context initialised once)
#   tls      mutual-TLS full handshakes/s: openssl s_server and nginx, server
#            and/or client key on the token vs key files, TLS 1.3 and 1.2,
#            RSA and EC; BENCH_TLS_ROUNDS rounds, interleaved
#   spy      PKCS#11 calls per signature and per handshake in steady state
#            (pkcs11-spy between p11id and SoftHSM; counts of a long run minus
#            counts of a warm-up-only run)
#   mem      resident size after 1,000 and after 100,000 signatures
#   load     URI to EVP_PKEY: first load in a process and again
#   profile  callgrind instructions per signature (where p11id spends them)
#            and a perf sample of the 2-thread p11id signing loop
# then tests/bench/report.py prints the table and writes the JSON file.
#
# Environment (make bench sets the first five):
#   TOP_SRCDIR TOP_BUILDDIR P11ID_PROVIDER_SO BENCH_BIN BENCH_OUT
#   BENCH_ROUNDS (5) BENCH_SECONDS (1) BENCH_WARMUP (0.1)
#   BENCH_TLS_ROUNDS (3) BENCH_TLS_SECONDS (1)
#   BENCH_SPY_SIGS (10000) BENCH_SPY_HANDSHAKES (1000)
#   BENCH_MEM_N1 (1000) BENCH_MEM_N2 (100000)
#   BENCH_ONLY   space-separated subset of: sign tls spy mem load profile
#                (profile = callgrind callgrind-tls perf, each also alone)
#   BENCH_KEEP=1 keep the temp dir (raw JSON lines, logs, profiles)
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${TOP_SRCDIR:=$(cd "$here/../.." && pwd)}"
: "${TOP_BUILDDIR:=$TOP_SRCDIR}"
: "${P11ID_PROVIDER_SO:=$TOP_BUILDDIR/src/provider/.libs/p11id.so}"
: "${BENCH_BIN:=$TOP_BUILDDIR/tests/bench/p11id-bench}"
: "${BENCH_OUT:=$TOP_BUILDDIR/tests/bench/results.json}"
: "${BENCH_ROUNDS:=5}" "${BENCH_SECONDS:=1}" "${BENCH_WARMUP:=0.1}"
: "${BENCH_TLS_ROUNDS:=3}" "${BENCH_TLS_SECONDS:=1}"
: "${BENCH_SPY_SIGS:=10000}" "${BENCH_SPY_HANDSHAKES:=1000}"
: "${BENCH_MEM_N1:=1000}" "${BENCH_MEM_N2:=100000}"
: "${BENCH_ONLY:=sign tls spy mem load profile}"
: "${SOFTHSM_MODULE:=/usr/lib/softhsm/libsofthsm2.so}"
: "${PKCS11_SPY_MODULE:=/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so}"
: "${LIBP11_ENGINE:=/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so}"
PIN=1234
SO_PIN=12345678

say() { printf 'bench: [%3ds] %s\n' "$((SECONDS - ${START_S:-0}))" "$*" >&2; }
die() { say "$*"; exit 1; }
want() { case " $BENCH_ONLY " in *" $1 "*) return 0 ;; esac; return 1; }
have() { command -v "$1" >/dev/null 2>&1; }

for c in openssl softhsm2-util pkcs11-tool python3 timeout; do
    have "$c" || die "needs $c (bash scripts/bench-deps.sh installs what the benchmark uses)"
done
[ -x "$BENCH_BIN" ] || die "no $BENCH_BIN: run make bench (or make tests/bench/p11id-bench)"
[ -f "$P11ID_PROVIDER_SO" ] || die "no provider $P11ID_PROVIDER_SO: run make"
[ -f "$SOFTHSM_MODULE" ] || die "no SoftHSM module $SOFTHSM_MODULE"

START=$(date +%s)
START_S=$SECONDS
B=$(mktemp -d "${TMPDIR:-/tmp}/p11id-bench.XXXXXX") || die "mktemp failed"
chmod 700 "$B"
PIDS=()
cleanup()
{
    local p i
    for p in "${PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null
    done
    for p in "${PIDS[@]}"; do
        for ((i = 0; i < 50; i++)); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        say "kept $B"
    else
        rm -rf -- "$B"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

unset OPENSSL_CONF OPENSSL_MODULES OPENSSL_ENGINES PKCS11SPY PKCS11SPY_OUTPUT P11ID_DEBUG
RAW=$B/results.jsonl
: >"$RAW"

# --- tokens, keys, certificates ---------------------------------------------------------

mkdir -p "$B/tokens" && chmod 700 "$B/tokens"
cat >"$B/softhsm2.conf" <<EOF
directories.tokendir = $B/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
EOF
export SOFTHSM2_CONF=$B/softhsm2.conf
printf '%s' "$PIN" >"$B/pin.txt"
chmod 600 "$B/pin.txt"

write_conf() # FILE MODULE-PATH: default provider and p11id
{
    cat >"$1" <<EOF
openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
[provider_sect]
default = default_sect
p11id = p11id_sect
[default_sect]
activate = 1
[p11id_sect]
module = $P11ID_PROVIDER_SO
pkcs11-module-path = $2
pin-source = file:$B/pin.txt
activate = 1
EOF
}
write_conf "$B/p11id.cnf" "$SOFTHSM_MODULE"
write_conf "$B/spy.cnf" "$PKCS11_SPY_MODULE"
printf '# default provider only\n' >"$B/default.cnf"
P11=$B/p11id.cnf
DEF=$B/default.cnf

# libp11 0.4.12 cannot enumerate a token that holds an Ed25519 key (every
# ENGINE_load_private_key on it fails), so Ed25519 lives on its own token.
# pkcs11-tool 0.23 matches --token-label as a prefix: neither label may
# begin with the other.
TOK=p11bench
TOKED=edtoken
for t in "$TOK" "$TOKED"; do
    softhsm2-util --init-token --free --label "$t" --so-pin "$SO_PIN" \
        --pin "$PIN" >"$B/init-$t.log" 2>&1 || die "cannot create token $t: $(tail -1 "$B/init-$t.log")"
done

KEYID=1
token_key() # TOKEN LABEL PKCS11-TOOL-KEY-TYPE
{
    local id
    id=$(printf '%02x' "$KEYID")
    KEYID=$((KEYID + 1))
    pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$1" --login --pin "$PIN" \
        --keypairgen --key-type "$3" --id "$id" --label "$2" >"$B/keygen-$2.log" 2>&1 \
        || die "cannot generate $2 on token $1: $(tail -2 "$B/keygen-$2.log")"
    # The public half, read through the provider.
    OPENSSL_CONF=$P11 openssl pkey -in "pkcs11:token=$1;object=$2;type=private" \
        -pubout -out "$B/tok-$2.pub.pem" 2>"$B/pub-$2.err" \
        || die "p11id cannot read the public key of $2: $(tail -2 "$B/pub-$2.err")"
}

soft_key() # NAME GENPKEY-ARGS...
{
    local name=$1
    shift
    OPENSSL_CONF=$DEF openssl genpkey "$@" -out "$B/soft-$name.key" 2>/dev/null \
        && OPENSSL_CONF=$DEF openssl pkey -in "$B/soft-$name.key" -pubout \
            -out "$B/soft-$name.pub.pem" || die "cannot make software key $name"
}

say "setting up tokens and keys in $B"
token_key "$TOK" rsa rsa:2048
token_key "$TOK" p256 EC:prime256v1
token_key "$TOK" p384 EC:secp384r1
token_key "$TOKED" ed25519 EC:edwards25519
for k in srv-rsa cli-rsa; do token_key "$TOK" "$k" rsa:2048; done
for k in srv-ec cli-ec; do token_key "$TOK" "$k" EC:prime256v1; done
soft_key rsa -algorithm RSA -pkeyopt rsa_keygen_bits:2048
soft_key p256 -algorithm EC -pkeyopt ec_paramgen_curve:P-256
soft_key p384 -algorithm EC -pkeyopt ec_paramgen_curve:P-384
soft_key ed25519 -algorithm ED25519
for k in srv-rsa cli-rsa; do soft_key "$k" -algorithm RSA -pkeyopt rsa_keygen_bits:2048; done
for k in srv-ec cli-ec; do soft_key "$k" -algorithm EC -pkeyopt ec_paramgen_curve:P-256; done

# A software CA issues every certificate (its key plays no part in the
# handshakes measured): token and file keys of servers and clients.
OPENSSL_CONF=$DEF openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$B/ca.key" -out "$B/ca.crt" -subj /CN=p11id-bench-ca -days 30 2>/dev/null \
    || die "cannot make the CA"
OPENSSL_CONF=$DEF openssl req -new -key "$B/ca.key" -subj /CN=dummy -out "$B/dummy.csr" \
    || die "cannot make a CSR"
printf '%s\n' 'basicConstraints = CA:FALSE' 'subjectAltName = DNS:localhost,IP:127.0.0.1' \
    >"$B/leaf.ext"
SERIAL=100
for k in srv-rsa cli-rsa srv-ec cli-ec; do
    for w in tok soft; do
        SERIAL=$((SERIAL + 1))
        OPENSSL_CONF=$DEF openssl x509 -req -in "$B/dummy.csr" -CA "$B/ca.crt" \
            -CAkey "$B/ca.key" -force_pubkey "$B/$w-$k.pub.pem" -subj "/CN=$w-$k" \
            -extfile "$B/leaf.ext" -set_serial "$SERIAL" -days 30 -out "$B/$w-$k.crt" \
            2>/dev/null || die "cannot issue the certificate of $w-$k"
    done
    # nginx takes a file: the key reference file the provider writes.
    OPENSSL_CONF=$P11 openssl pkey -in "pkcs11:token=$TOK;object=$k;type=private" \
        -out "$B/tok-$k.ref.pem" 2>/dev/null || die "cannot write the key reference of $k"
done

LIBP11=0
if [ -f "$LIBP11_ENGINE" ]; then
    LIBP11=1
else
    say "no libp11 engine ($LIBP11_ENGINE): the libp11 column stays empty"
fi

# --- measuring ----------------------------------------------------------------------------

# record SECTION ROUND EXTRA-JSON CMD...: runs CMD (one JSON line on stdout)
# and appends it to $RAW with the section, round and EXTRA fields; a failure
# is recorded with its last error line.
record()
{
    local section=$1 round=$2 extra=$3 out err rc
    shift 3
    out=$(timeout -k 5 120 "$@" 2>"$B/last.err")
    rc=$?
    if [ $rc -eq 0 ] && [ "${out:0:1}" = "{" ]; then
        printf '{"section":"%s","round":%s,%s%s\n' "$section" "$round" \
            "${extra:+$extra,}" "${out:1}" >>"$RAW"
        return 0
    fi
    err=$(grep -v '^ *$' "$B/last.err" | head -n 3 | tr -d '"\\' | tr '\n' ' ')
    printf '{"section":"%s","round":%s,%s"error":"exit %s: %s"}\n' "$section" "$round" \
        "${extra:+$extra,}" "$rc" "$err" >>"$RAW"
    say "  failed ($section ${extra//\"/}): exit $rc: $err"
    return 1
}

ALGS=(rsa pss p256 p384 ed25519)
label_of() { case "$1" in pss) echo rsa ;; *) echo "$1" ;; esac; }
token_of() { case "$1" in ed25519) echo "$TOKED" ;; *) echo "$TOK" ;; esac; }
uri_of() { printf 'pkcs11:token=%s;object=%s;type=private' "$(token_of "$1")" "$(label_of "$1")"; }

# sign_cmd PATH ALG: the command line of one signing measurement.
sign_args() # PATH ALG -> SIGN_ENV SIGN_ARGS
{
    local p=$1 a=$2 lab
    lab=$(label_of "$a")
    SIGN_ENV=$DEF
    SIGN_ARGS=(--path "$p" --alg "$a")
    case "$p" in
        raw | copy | copyp)
            # copyp: the limit again, in a process that has p11id activated
            # (unused): what p11id's presence costs the token's own work.
            [ "$p" = copyp ] && SIGN_ENV=$P11
            SIGN_ARGS+=(--module "$SOFTHSM_MODULE" --token "$(token_of "$a")"
                --label "$lab" --pin "$PIN" --pub "$B/tok-$lab.pub.pem") ;;
        p11id | reuse)
            # reuse: one signing context per thread, initialised once.
            SIGN_ENV=$P11
            SIGN_ARGS+=(--key "$(uri_of "$a")" --pub "$B/tok-$lab.pub.pem") ;;
        libp11)
            SIGN_ARGS+=(--key "$(uri_of "$a")" --module "$SOFTHSM_MODULE" --pin "$PIN"
                --pub "$B/tok-$lab.pub.pem") ;;
        soft)
            SIGN_ARGS+=(--key "$B/soft-$lab.key" --pub "$B/soft-$lab.pub.pem") ;;
    esac
}

paths_for() # ALG -> the paths measured for it
{
    if [ "$LIBP11" = 1 ] && [ "$1" != ed25519 ]; then
        echo raw copy copyp p11id reuse libp11 soft
    else
        echo raw copy copyp p11id reuse soft
    fi
}

if want sign; then
    say "signatures/s: $BENCH_ROUNDS rounds of ${BENCH_SECONDS}s per measurement"
    for ((r = 1; r <= BENCH_ROUNDS; r++)); do
        say "  sign round $r/$BENCH_ROUNDS"
        for a in "${ALGS[@]}"; do
            for th in 1 2; do
                read -r -a ps <<<"$(paths_for "$a")"
                n=${#ps[@]}
                for ((i = 0; i < n; i++)); do
                    p=${ps[$(((i + r - 1) % n))]}
                    sign_args "$p" "$a"
                    OPENSSL_CONF=$SIGN_ENV record sign "$r" "" "$BENCH_BIN" sign \
                        "${SIGN_ARGS[@]}" --threads "$th" --seconds "$BENCH_SECONDS" \
                        --warmup "$BENCH_WARMUP"
                done
            done
        done
    done
fi

# --- TLS ----------------------------------------------------------------------------------

free_port()
{
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

wait_port() # PORT PID: until something accepts on 127.0.0.1:PORT
{
    local i
    for ((i = 0; i < 300; i++)); do
        kill -0 "$2" 2>/dev/null || return 1
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

declare -A PORT=() SPIDS=()
# s_server: one process, connections one after another.
start_s_server() # NAME KT WHERE(tok|soft) [PKCS11SPY_OUTPUT NACCEPT]
{
    local name=$1 kt=$2 w=$3 key conf=$DEF port pid
    local -a extra=()
    port=$(free_port) || die "no free port"
    key=$B/soft-srv-$kt.key
    if [ "$w" = tok ]; then
        key="pkcs11:token=$TOK;object=srv-$kt;type=private"
        conf=$P11
    fi
    [ -n "${4:-}" ] && conf=$B/spy.cnf
    [ -n "${5:-}" ] && extra=(-naccept "$5")
    PKCS11SPY=$SOFTHSM_MODULE PKCS11SPY_OUTPUT=${4:-/dev/null} OPENSSL_CONF=$conf \
        openssl s_server -accept "127.0.0.1:$port" -rev -Verify 1 -verify_return_error \
        -CAfile "$B/ca.crt" -cert "$B/$w-srv-$kt.crt" -key "$key" -num_tickets 0 \
        -no_cache "${extra[@]}" >"$B/$name.out" 2>/dev/null &
    pid=$!
    PIDS+=("$pid")
    local i
    for ((i = 0; i < 300; i++)); do
        grep -q '^ACCEPT' "$B/$name.out" 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || die "s_server $name did not start"
        sleep 0.1
    done
    PORT[$name]=$port
    SPIDS[$name]=$pid
    LAST_PID=$pid
}

start_nginx() # NAME KT WHERE
{
    local name=$1 kt=$2 w=$3 d key conf=$DEF port pid
    d=$B/$name
    port=$(free_port) || die "no free port"
    mkdir -p "$d/logs" "$d/tmp"
    key=$B/soft-srv-$kt.key
    if [ "$w" = tok ]; then
        key=$B/tok-srv-$kt.ref.pem
        conf=$P11
    fi
    cat >"$d/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 2;
user root;
pid $d/nginx.pid;
error_log $d/logs/error.log warn;
env SOFTHSM2_CONF;
env OPENSSL_CONF;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    server {
        listen 127.0.0.1:$port ssl;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_certificate $B/$w-srv-$kt.crt;
        ssl_certificate_key $key;
        ssl_client_certificate $B/ca.crt;
        ssl_verify_client on;
        ssl_session_cache off;
        ssl_session_tickets off;
        location / { return 200 "ok\n"; }
    }
}
EOF
    # As root nginx's workers would run as nobody: "user root" keeps the
    # token files and the PIN file readable (docs/performance.md).
    OPENSSL_CONF=$conf nginx -p "$d" -c "$d/nginx.conf" -e "$d/logs/error.log" \
        >"$d/stdout" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait_port "$port" "$pid" || die "nginx $name did not start: $(tail -3 "$d/logs/error.log" 2>/dev/null)"
    PORT[$name]=$port
    # The master and its workers: their CPU time is the server's.
    local kids i
    for ((i = 0; i < 50; i++)); do
        kids=$(cat "/proc/$pid/task/$pid/children" 2>/dev/null)
        [ "$(wc -w <<<"$kids")" -ge 2 ] && break
        sleep 0.1
    done
    kids=$(echo $kids | tr ' ' ',')
    SPIDS[$name]=$pid${kids:+,$kids}
}

# tls_client_args KT WHERE(tok|soft) -> CLI_ENV CLI_ARGS
tls_client_args()
{
    CLI_ENV=$DEF
    CLI_ARGS=(--ca "$B/ca.crt" --cert "$B/$2-cli-$1.crt" --key "$B/soft-cli-$1.key")
    if [ "$2" = tok ]; then
        CLI_ENV=$P11
        CLI_ARGS=(--ca "$B/ca.crt" --cert "$B/tok-cli-$1.crt"
            --key "pkcs11:token=$TOK;object=cli-$1;type=private")
    fi
}

if want tls; then
    SERVERS=(s_server)
    if have nginx; then
        SERVERS+=(nginx)
    else
        say "no nginx: the nginx rows stay empty (bash scripts/bench-deps.sh installs it)"
    fi
    say "starting TLS servers"
    for kt in rsa ec; do
        for w in soft tok; do
            start_s_server "s_server-$kt-$w" "$kt" "$w"
            have nginx && start_nginx "nginx-$kt-$w" "$kt" "$w"
        done
    done
    CONFIGS=(files server client both)
    say "handshakes/s: $BENCH_TLS_ROUNDS rounds of ${BENCH_TLS_SECONDS}s per measurement"
    for ((r = 1; r <= BENCH_TLS_ROUNDS; r++)); do
        say "  tls round $r/$BENCH_TLS_ROUNDS"
        for kt in rsa ec; do
            for srv in "${SERVERS[@]}"; do
                threads=1
                proto=rev
                if [ "$srv" = nginx ]; then
                    threads=2
                    proto=http
                fi
                for v in 1.3 1.2; do
                    for ((i = 0; i < 4; i++)); do
                        cfg=${CONFIGS[$(((i + r - 1) % 4))]}
                        case $cfg in
                            files) sw=soft cw=soft ;;
                            server) sw=tok cw=soft ;;
                            client) sw=soft cw=tok ;;
                            both) sw=tok cw=tok ;;
                        esac
                        tls_client_args "$kt" "$cw"
                        OPENSSL_CONF=$CLI_ENV record tls "$r" \
                            "\"server\":\"$srv\",\"kt\":\"$kt\",\"config\":\"$cfg\"" \
                            "$BENCH_BIN" tls --port "${PORT[$srv-$kt-$sw]}" "${CLI_ARGS[@]}" \
                            --server-pids "${SPIDS[$srv-$kt-$sw]}" \
                            --tls "$v" --proto "$proto" --threads "$threads" \
                            --seconds "$BENCH_TLS_SECONDS" --warmup "$BENCH_WARMUP"
                    done
                done
            done
        done
    done
fi

# --- PKCS#11 call counts ---------------------------------------------------------------------

# spy_counts LOG: {"C_Sign":N,...} of a pkcs11-spy log.
spy_counts()
{
    if [ ! -s "$1" ]; then
        printf '{}'
        return
    fi
    grep -aoE '^[0-9]+: C_[A-Za-z]+' "$1" | awk '{ c[$2]++ }
        END { printf "{"; s = ""; for (k in c) { printf "%s\"%s\":%d", s, k, c[k]; s = "," }
              printf "}" }'
}

# spy_sign PATH ALG N: calls of a run of N signatures.
spy_sign()
{
    local p=$1 a=$2 n=$3 log=$B/spy-$1-$2-$3.log
    rm -f "$log"
    sign_args "$p" "$a"
    if [ "$p" = p11id ]; then
        SIGN_ENV=$B/spy.cnf
    else # libp11: the engine's MODULE_PATH is the spy
        SIGN_ARGS=("${SIGN_ARGS[@]/#$SOFTHSM_MODULE/$PKCS11_SPY_MODULE}")
    fi
    if PKCS11SPY=$SOFTHSM_MODULE PKCS11SPY_OUTPUT=$log OPENSSL_CONF=$SIGN_ENV \
        timeout -k 5 300 "$BENCH_BIN" sign "${SIGN_ARGS[@]}" --count "$n" >/dev/null 2>"$B/last.err"; then
        printf '{"section":"spy","what":"sign","path":"%s","alg":"%s","n":%d,"calls":%s}\n' \
            "$p" "$a" "$n" "$(spy_counts "$log")" >>"$RAW"
    else
        say "  spy run $p/$a/$n failed: $(head -2 "$B/last.err" | tr '\n' ' ')"
    fi
    rm -f "$log"
}

# spy_tls KT TLS N: s_server (server key on the token) and the client (key on
# the token), each through its own spy, for N handshakes.
spy_tls()
{
    local kt=$1 v=$2 n=$3 slog=$B/spy-srv-$1-$2-$3.log clog=$B/spy-cli-$1-$2-$3.log spid
    rm -f "$slog" "$clog"
    start_s_server "spy-s_server-$kt" "$kt" tok "$slog" "$n"
    spid=$LAST_PID
    tls_client_args "$kt" tok
    if PKCS11SPY=$SOFTHSM_MODULE PKCS11SPY_OUTPUT=$clog OPENSSL_CONF=$B/spy.cnf \
        timeout -k 5 300 "$BENCH_BIN" tls --port "${PORT[spy-s_server-$kt]}" "${CLI_ARGS[@]}" \
        --tls "$v" --count "$n" >/dev/null 2>"$B/last.err"; then
        local i
        for ((i = 0; i < 100; i++)); do
            kill -0 "$spid" 2>/dev/null || break
            sleep 0.1
        done
        wait "$spid" 2>/dev/null
        printf '{"section":"spy","what":"tls","side":"server","kt":"%s","tls":"%s","n":%d,"calls":%s}\n' \
            "$kt" "$v" "$n" "$(spy_counts "$slog")" >>"$RAW"
        printf '{"section":"spy","what":"tls","side":"client","kt":"%s","tls":"%s","n":%d,"calls":%s}\n' \
            "$kt" "$v" "$n" "$(spy_counts "$clog")" >>"$RAW"
    else
        say "  spy handshakes $kt/$v/$n failed: $(head -2 "$B/last.err" | tr '\n' ' ')"
        kill "$spid" 2>/dev/null
        wait "$spid" 2>/dev/null
    fi
    rm -f "$slog" "$clog"
}

if want spy; then
    if [ -f "$PKCS11_SPY_MODULE" ]; then
        W=200
        say "PKCS#11 calls: $BENCH_SPY_SIGS signatures after $W, through pkcs11-spy"
        for a in "${ALGS[@]}"; do
            spy_sign p11id "$a" "$W"
            spy_sign p11id "$a" "$((W + BENCH_SPY_SIGS))"
        done
        if [ "$LIBP11" = 1 ]; then
            for a in p256; do
                spy_sign libp11 "$a" "$W"
                spy_sign libp11 "$a" "$((W + BENCH_SPY_SIGS))"
            done
        fi
        say "PKCS#11 calls: $BENCH_SPY_HANDSHAKES handshakes after 20 (both keys on the token)"
        for kt in rsa ec; do
            for v in 1.3 1.2; do
                spy_tls "$kt" "$v" 20
                spy_tls "$kt" "$v" "$((20 + BENCH_SPY_HANDSHAKES))"
            done
        done
    else
        say "no pkcs11-spy ($PKCS11_SPY_MODULE): no call counts"
    fi
fi

# --- memory and key loading -------------------------------------------------------------------

if want mem; then
    say "memory: resident size after $BENCH_MEM_N1 and $BENCH_MEM_N2 signatures"
    for p in p11id copy; do
        sign_args "$p" p256
        OPENSSL_CONF=$SIGN_ENV record mem 1 "" "$BENCH_BIN" mem "${SIGN_ARGS[@]}" \
            --n1 "$BENCH_MEM_N1" --n2 "$BENCH_MEM_N2"
    done
    # RSA is slow on SoftHSM: a twentieth of the count, for the RSA-only code.
    n2=$((BENCH_MEM_N2 / 20))
    [ "$n2" -gt "$BENCH_MEM_N1" ] || n2=$((BENCH_MEM_N1 * 2))
    sign_args p11id pss
    OPENSSL_CONF=$SIGN_ENV record mem 1 "" "$BENCH_BIN" mem "${SIGN_ARGS[@]}" \
        --n1 "$BENCH_MEM_N1" --n2 "$n2"
fi

if want load; then
    say "key load: URI to EVP_PKEY"
    for r in 1 2 3; do
        for a in p256 rsa; do
            OPENSSL_CONF=$P11 record load "$r" "\"alg\":\"$a\"" "$BENCH_BIN" load \
                --path p11id --key "$(uri_of "$a")"
            [ "$LIBP11" = 1 ] && OPENSSL_CONF=$DEF record load "$r" "\"alg\":\"$a\"" \
                "$BENCH_BIN" load --path libp11 --engine --module "$SOFTHSM_MODULE" \
                --pin "$PIN" --key "$(uri_of "$a")"
            OPENSSL_CONF=$DEF record load "$r" "\"alg\":\"$a\"" "$BENCH_BIN" load \
                --path soft --key "$B/soft-$(label_of "$a").key"
        done
    done
fi

# --- profiles -----------------------------------------------------------------------------------

if want profile || want callgrind || want callgrind-tls || want perf; then
    if want profile || want callgrind || want callgrind-tls; then
        have valgrind || say "no valgrind: no instruction profile"
    fi
    if have valgrind && { want profile || want callgrind; }; then
        say "profile: callgrind, instructions per signature"
        for a in "${ALGS[@]}"; do
            case $a in p256) n=300 ;; ed25519) n=200 ;; *) n=30 ;; esac
            # The signing loop of p11id, of raw PKCS#11 on a session copy of
            # the key (what p11id signs with by default: the token does the
            # same work, so the difference is what p11id and the EVP layer
            # add) and of the software key.
            ok=1
            for p in p11id copy soft; do
                sign_args "$p" "$a"
                OPENSSL_CONF=$SIGN_ENV timeout -k 5 300 valgrind --tool=callgrind \
                    --callgrind-out-file="$B/cg-$p-$a.out" --collect-atstart=no \
                    --toggle-collect=bench_count_loop "$BENCH_BIN" sign "${SIGN_ARGS[@]}" \
                    --count "$n" >/dev/null 2>"$B/cg.err" \
                    || { ok=0; say "  callgrind $p/$a failed: $(tail -2 "$B/cg.err" | tr '\n' ' ')"; }
            done
            if [ $ok = 1 ]; then
                for p in p11id soft; do
                    cgargs=("$B/cg-$p-$a.out" "$n" --top 30)
                    [ "$p" = p11id ] && cgargs+=(--base "$B/cg-copy-$a.out" "$n")
                    python3 "$here/callgrind.py" "${cgargs[@]}" >"$B/cg-$p-$a.json" \
                        && printf '{"section":"callgrind","path":"%s","alg":"%s","file":"%s"}\n' \
                            "$p" "$a" "$B/cg-$p-$a.json" >>"$RAW"
                done
            fi
            # The token's own work with p11id merely loaded in the process
            # (SoftHSM decodes keys with OpenSSL's decoders, which then
            # include p11id's): raw PKCS#11 under p11id's configuration.
            case $a in
                p256 | ed25519)
                    sign_args copy "$a"
                    if OPENSSL_CONF=$P11 timeout -k 5 300 valgrind --tool=callgrind \
                        --callgrind-out-file="$B/cg-rawp-$a.out" --collect-atstart=no \
                        --toggle-collect=bench_count_loop "$BENCH_BIN" sign "${SIGN_ARGS[@]}" \
                        --count "$n" >/dev/null 2>"$B/cg.err"; then
                        python3 "$here/callgrind.py" "$B/cg-rawp-$a.out" "$n" --top 10 \
                            --base "$B/cg-copy-$a.out" "$n" >"$B/cg-rawp-$a.json" \
                            && printf '{"section":"callgrind","path":"raw-p11id-loaded","alg":"%s","file":"%s"}\n' \
                                "$a" "$B/cg-rawp-$a.json" >>"$RAW"
                    fi ;;
            esac
            [ "${BENCH_KEEP:-0}" = 1 ] || rm -f "$B"/cg-*-"$a".out
        done
    fi
    if have valgrind && { want profile || want callgrind-tls; }; then
        # Per handshake: the client's loop of full TLS 1.3 handshakes with its
        # key on the token vs in a file, against s_server with a key file.
        say "profile: callgrind, instructions per handshake (client side)"
        for kt in ec rsa; do
            start_s_server "prof-s_server-$kt" "$kt" soft
            ok=1
            # softp: the key file, with p11id loaded all the same (what
            # p11id costs a process that has it activated for other keys)
            for w in tok soft softp; do
                tls_client_args "$kt" "${w%p}"
                [ "$w" = softp ] && CLI_ENV=$P11
                OPENSSL_CONF=$CLI_ENV timeout -k 5 300 valgrind --tool=callgrind \
                    --callgrind-out-file="$B/cg-tls-$w-$kt.out" --collect-atstart=no \
                    --toggle-collect=bench_tls_count_loop "$BENCH_BIN" tls \
                    --port "${PORT[prof-s_server-$kt]}" "${CLI_ARGS[@]}" --tls 1.3 \
                    --count 41 >/dev/null 2>"$B/cg.err" \
                    || { ok=0; say "  callgrind tls $w/$kt failed: $(tail -2 "$B/cg.err" | tr '\n' ' ')"; }
            done
            if [ $ok = 1 ] && python3 "$here/callgrind.py" "$B/cg-tls-tok-$kt.out" 40 \
                --root tls_once --top 30 --base "$B/cg-tls-softp-$kt.out" 40 \
                >"$B/cg-tls-$kt.json" \
                && python3 "$here/callgrind.py" "$B/cg-tls-softp-$kt.out" 40 \
                    --root tls_once --top 30 --base "$B/cg-tls-soft-$kt.out" 40 \
                    >"$B/cg-tls-loaded-$kt.json"; then
                printf '{"section":"callgrind-tls","kt":"%s","tls":"1.3","file":"%s","loaded":"%s"}\n' \
                    "$kt" "$B/cg-tls-$kt.json" "$B/cg-tls-loaded-$kt.json" >>"$RAW"
            fi
            [ "${BENCH_KEEP:-0}" = 1 ] || rm -f "$B"/cg-tls-*-"$kt".out
        done
    fi
    if ! { want profile || want perf; }; then
        :
    elif have perf && perf record -e cpu-clock -o "$B/perf.test" -- true >/dev/null 2>&1; then
        say "profile: perf, 2 threads signing for 2 s"
        for pa in p11id:p256 raw:p256 copy:p256 p11id:ed25519 copy:ed25519; do
            p=${pa%%:*} a=${pa#*:}
            sign_args "$p" "$a"
            data=$B/perf-$p-$a.data
            if OPENSSL_CONF=$SIGN_ENV perf record -q -e cpu-clock -F 2000 -g -o "$data" -- \
                "$BENCH_BIN" sign "${SIGN_ARGS[@]}" --threads 2 --seconds 2 --warmup 0.2 \
                >/dev/null 2>"$B/perf.err"; then
                perf report -i "$data" --stdio --no-children --sort dso,sym -g none \
                    --percent-limit 0.2 >"$B/perf-$p-$a.txt" 2>/dev/null
                perf report -i "$data" --stdio --no-children --sort dso -g none \
                    >"$B/perf-$p-$a.dso.txt" 2>/dev/null
                printf '{"section":"perf","path":"%s","alg":"%s","threads":2,"sym":"%s","dso":"%s"}\n' \
                    "$p" "$a" "$B/perf-$p-$a.txt" "$B/perf-$p-$a.dso.txt" >>"$RAW"
            else
                say "  perf $p/$a failed: $(tail -2 "$B/perf.err" | tr '\n' ' ')"
            fi
            rm -f "$data"
        done
    else
        say "no usable perf: no sampled profile"
    fi
fi

# --- the table and the JSON file -----------------------------------------------------------------

END=$(date +%s)
python3 "$here/report.py" --raw "$RAW" --out "$BENCH_OUT" --seconds "$((END - START))" \
    --meta "rounds=$BENCH_ROUNDS" "seconds=$BENCH_SECONDS" "warmup=$BENCH_WARMUP" \
    "tls_rounds=$BENCH_TLS_ROUNDS" "tls_seconds=$BENCH_TLS_SECONDS" \
    "spy_signatures=$BENCH_SPY_SIGS" "spy_handshakes=$BENCH_SPY_HANDSHAKES" \
    "mem_n1=$BENCH_MEM_N1" "mem_n2=$BENCH_MEM_N2" "provider=$P11ID_PROVIDER_SO" \
    "softhsm=$(dpkg-query -W -f='${Version}' softhsm2 2>/dev/null || echo unknown)" \
    "libp11=$(dpkg-query -W -f='${Version}' libengine-pkcs11-openssl 2>/dev/null || echo unknown)" \
    "nginx=$(nginx -v 2>&1 | sed 's/.*nginx\///')" \
    "openssl=$(openssl version | cut -d' ' -f2)" "cpus=$(nproc)" \
    "commit=$(git -C "$TOP_SRCDIR" rev-parse --short HEAD 2>/dev/null || echo none)$(git -C "$TOP_SRCDIR" diff --quiet HEAD -- src include 2>/dev/null || echo +changes)"
