#!/usr/bin/env bash
# t_nginx_worker_env.sh: nginx empties the environment of its workers. A
# token module that reads its settings from the environment when a worker
# initialises it again after fork (SoftHSM with library.reset_on_fork = true
# reads SOFTHSM2_CONF) must still work in every worker: with `env
# SOFTHSM2_CONF;` (or `env SOFTHSM2_CONF=/path;`) it does; without, the
# provider either copes by itself or its error names the directive to add.
# With SoftHSM's default (reset_on_fork = false) a worker keeps the state it
# inherited and needs no variable.
set -u
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/lib/apps.sh
. "$(dirname "$0")/../lib/apps.sh"
require_cmd nginx curl openssl pkcs11-tool softhsm2-util python3
apps_setup
apps_pki ec256 ec256

WORKERS=4
N=40

# scenario NAME RESET_ON_FORK ENV_DIRECTIVE: nginx with 4 workers running as
# $NGX_USER (default root); N requests on new connections. Sets OK200
# (requests answered 200), CURL_RC, SERVED (workers that served one), WPIDS,
# and leaves $T/NAME/logs/error.log, written at nginx's default level
# (error): what an administrator sees.
NGX_USER=root
scenario()
{
    local name=$1 reset=$2 envline=$3 d=$T/$1 port
    softhsm_reset_on_fork "$reset"
    nginx_prefix "$d"
    port=$(free_port) || bail_out "no free port"
    {
        printf 'worker_processes %s;\nuser %s;\n%s\n' "$WORKERS" "$NGX_USER" "$envline"
        printf 'error_log %s/logs/error.log;\n' "$d"
        printf 'events { worker_connections 64; }\nhttp {\n'
        nginx_http_paths "$d"
        cat <<EOF
    log_format w '\$pid \$status \$ssl_client_verify';
    access_log $d/logs/access.log w;
    server {
        listen 127.0.0.1:$port ssl reuseport;
        ssl_certificate        $SRV_CRT;
        ssl_certificate_key    $SRV_REF;
        ssl_client_certificate $CA_CRT;
        ssl_verify_client      on;
        ssl_session_cache      off;
        ssl_session_tickets    off;
        location / { default_type text/plain; return 200 "worker=\$pid\n"; }
    }
}
EOF
    } >"$d/nginx.conf"
    : >"$TRACE"
    OK200=0
    SERVED=0
    WPIDS=()
    if ! NGX_DECOY=1 nginx_start "$d" "$WORKERS" 120; then
        return 1
    fi
    mapfile -t WPIDS < <(nginx_workers "$NGX_MASTER")
    run curl -sS --max-time 60 --cacert "$CA_CRT" --cert "$CLI_CRT" \
        --key "$CLI_REF" --no-sessionid -H 'Connection: close' \
        -w 'status=%{http_code}\n' "https://127.0.0.1:$port/[1-$N]"
    CURL_RC=$RUN_RC
    cp "$RUN_OUT" "$d/curl.out"
    cp "$RUN_ERR" "$d/curl.err"
    OK200=$(grep -c '^status=200$' "$d/curl.out")
    local p
    for p in "${WPIDS[@]}"; do
        awk -v p="$p" '$1 == p && $2 == 200 { f = 1 } END { exit !f }' \
            "$d/logs/access.log" && SERVED=$((SERVED + 1))
    done
    nginx_signal "$d" quit
    bg_wait "$NGX_BG" 30
    NGX_MASTER=
    return 0
}

# --- SoftHSM's default: the child keeps its parent's SoftHSM -------------------------
if scenario keep false ''; then
    pass "reset_on_fork false, no env directive: nginx starts"
    is "$OK200" "$N" "reset_on_fork false, no env directive: all $N requests 200"
    is "$SERVED" "$WORKERS" "reset_on_fork false, no env directive: every worker served"
else
    fail "reset_on_fork false, no env directive: nginx starts"
    skip_n 2 "nginx did not start" "reset_on_fork false"
fi

# --- a child that starts the module afresh, with env SOFTHSM2_CONF; --------------------
if scenario envkept true 'env SOFTHSM2_CONF;'; then
    pass "env SOFTHSM2_CONF;: nginx starts"
    is "$OK200" "$N" "env SOFTHSM2_CONF;: all $N requests 200"
    is "$SERVED" "$WORKERS" "env SOFTHSM2_CONF;: every worker served"
    n=$(grep -c 'fork detected: re-initialising' "$TRACE")
    if [ "$n" -ge "$WORKERS" ]; then
        pass "env SOFTHSM2_CONF;: every worker re-initialised the module ($n)"
    else
        fail "env SOFTHSM2_CONF;: every worker re-initialised the module" \
            "$n 'fork detected' lines"
        diag_file "$TRACE"
    fi
else
    fail "env SOFTHSM2_CONF;: nginx starts"
    skip_n 3 "nginx did not start" "env SOFTHSM2_CONF;"
fi

# --- ... with env SOFTHSM2_CONF=/path; ---------------------------------------------------
if scenario envset true "env SOFTHSM2_CONF=$SOFTHSM2_CONF;"; then
    pass "env SOFTHSM2_CONF=path;: nginx starts"
    is "$OK200" "$N" "env SOFTHSM2_CONF=path;: all $N requests 200"
    is "$SERVED" "$WORKERS" "env SOFTHSM2_CONF=path;: every worker served"
else
    fail "env SOFTHSM2_CONF=path;: nginx starts"
    skip_n 2 "nginx did not start" "env SOFTHSM2_CONF=path;"
fi

# --- ... without any env directive ------------------------------------------------------
# The master (which has the variable) loads the key; each worker, without it,
# starts SoftHSM afresh from the default configuration (here a decoy with no
# token). Wanted: every worker serves anyway (the provider gives the module
# what it had in the master), or the error names the directive to add.
if scenario envgone true ''; then
    pass "no env directive: nginx starts (the master has the variable)"
    E=$T/envgone/logs/error.log
    first=$(grep -m1 -E 'p11id|SSL_do_handshake' "$E")
    [ -n "$first" ] && diag "first worker error: $first"
    if [ "$OK200" = "$N" ] && [ "$SERVED" = "$WORKERS" ]; then
        pass "no env directive: the provider copes: all $N requests 200, every worker served"
        pass "no env directive: no error to explain"
    else
        if [ "$CURL_RC" -lt 124 ]; then
            pass "no env directive: requests fail ($OK200 of $N answered 200) without a hang"
        else
            fail "no env directive: requests fail without a hang" "curl exit $CURL_RC"
        fi
        grep -q 'env SOFTHSM2_CONF;' "$E"
        point_ok $? "no env directive: the worker's error names 'env SOFTHSM2_CONF;'"
    fi
    file_unlike "$T/nginx-envgone.err" "$CRASH_RE" "no env directive: nothing crashed"
else
    fail "no env directive: nginx starts (the master has the variable)"
    skip_n 3 "nginx did not start" "no env directive"
fi

# --- workers as another user ------------------------------------------------------------
# The master (root) loads the key; the workers (www-data) initialise SoftHSM
# again and need its token directory.
WUSER=www-data
if id "$WUSER" >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
    chmod 711 "$T"
    chmod 644 "$SOFTHSM2_CONF"
    NGX_USER=$WUSER
    if scenario noaccess true 'env SOFTHSM2_CONF;'; then
        E=$T/noaccess/logs/error.log
        if [ "$OK200" = 0 ] && [ "$CURL_RC" -lt 124 ]; then
            pass "workers as $WUSER without access to the token's files: requests fail, no hang"
        else
            fail "workers as $WUSER without access to the token's files: requests fail, no hang" \
                "$OK200 of $N answered 200, curl exit $CURL_RC"
        fi
        # nginx 1.22 logs a handshake error at "info" (hidden by default) when
        # the first error's reason code is one of its "client" SSL reasons;
        # it does not look at the library: p11id's 101 (module init failed)
        # is SSL_R_NO_SUITABLE_KEY_SHARE to it.
        grep -q 'p11id' "$E"
        point_ok $? "workers without access to the token: the p11id error shows at nginx's default log level"
        grep -q 'p11id.*\(permission\|access\|user\)' "$E"
        point_ok $? "workers without access to the token: the error says the worker's user may lack access"
    else
        fail "workers as $WUSER without access: nginx starts"
        skip_n 2 "nginx did not start" "workers without access"
    fi
    chown -R "$WUSER:" "$T/tokens"
    if scenario access true 'env SOFTHSM2_CONF;'; then
        is "$OK200/$SERVED" "$N/$WORKERS" \
            "workers as $WUSER, token's files theirs, PIN file root's: all requests 200, every worker served"
    else
        fail "workers as $WUSER with access: nginx starts"
    fi
    chown -R root: "$T/tokens"
    NGX_USER=root
else
    skip_n 4 "no user $WUSER or not root" "workers as another user"
fi

pin_nowhere "the PIN is in no file but the PIN file"
done_testing
