# tests/faults/faults_lib.sh: the fault module (tests/faultmod) in the shell
# tests: its configuration file, its call counts, and the signing driver
# (tests/faults/faultdrv). Source it after common.sh; do not run it.
#
#   fm_setup                     # $FM_CONF, $T/fault.cnf: p11id on faultmod
#   fm_set 'invalidate-sessions' # the faults from now on (one per argument)
#   fm_count C_Login             # calls so far, summed over all processes
#   drv_start KEY-URI PUB.pem    # the driver, with OPENSSL_CONF=$T/fault.cnf
#   drv_cmd 'sign 3'             # one command; its answer in DRV_LINE
#
# Variables set here for the scripts that source this file:
# shellcheck disable=SC2034

FAULTMOD=${FAULTMOD:-$TOP_BUILDDIR/tests/faultmod/.libs/faultmod.so}
FAULTDRV=${FAULTDRV:-$TOP_BUILDDIR/tests/faults/faultdrv}
FM_GEN=0

# fm_setup: the fault module's configuration $FM_CONF (no faults, stats
# per process in $T/stats/, log in $T/faultmod.log), exported as
# P11ID_FAULTMOD_CONF, and $T/fault.cnf: the provider with faultmod as its
# module (trace in $T/p11id.trace).
fm_setup()
{
    FM_CONF=$T/faultmod.conf
    FM_STATS=$T/stats
    mkdir -p "$FM_STATS"
    export P11ID_FAULTMOD_CONF=$FM_CONF
    fm_set
    write_openssl_conf "$T/fault.cnf" "pkcs11-module-path=$FAULTMOD" \
        "log-file=$T/p11id.trace" log-level=2
}

# fm_set [LINE...]: replaces the configuration with the module, stats and
# log lines and the LINEs given. The file is replaced (rename) and gets an
# mtime of its own, so every process sees the change at its next call.
fm_set()
{
    local tmp=$FM_CONF.tmp
    FM_GEN=$((FM_GEN + 1))
    {
        printf '# faultmod configuration, generation %d\n' "$FM_GEN"
        printf 'module %s\n' "$SOFTHSM_MODULE"
        printf 'stats %s/stats.%%p\n' "$FM_STATS"
        printf 'log %s/faultmod.log\n' "$T"
        [ $# -gt 0 ] && printf '%s\n' "$@"
    } >"$tmp"
    touch -d "@$((1700000000 + FM_GEN))" "$tmp"
    mv -f "$tmp" "$FM_CONF"
}

# fm_count FUNC [PID]: the calls of FUNC counted by the fault module, in
# process PID or summed over every process that used it.
fm_count()
{
    local files=("$FM_STATS"/stats.*)
    [ -n "${2:-}" ] && files=("$FM_STATS/stats.$2")
    awk -v f="$1" '$1 == f { s += $2 } END { print s + 0 }' \
        "${files[@]}" 2>/dev/null || echo 0
}

# fm_count_rv FUNC CKR_NAME [PID]: the calls of FUNC that answered CKR_NAME.
fm_count_rv()
{
    fm_count "$1=$2" "${3:-}"
}

# fm_stats_files: how many processes wrote call counts.
fm_stats_files()
{
    find "$FM_STATS" -name 'stats.*' ! -name '*.tmp*' | wc -l
}

# --- the driver -----------------------------------------------------------------

# drv_start KEY-URI PUB.pem: faultdrv in the background as a coprocess,
# provider on faultmod; waits for its "ready". FDRV_PID is its pid (bash
# unsets the coprocess's own DRV_PID when it ends).
drv_start()
{
    local line
    coproc DRV {
        exec env OPENSSL_CONF="$T/fault.cnf" timeout -k 5 300 "$FAULTDRV" \
            "$1" "$2" 2>"$T/faultdrv.err"
    }
    FDRV_PID=$DRV_PID
    T_PIDS+=("$FDRV_PID")
    IFS= read -t 30 -r line <&"${DRV[0]}"
    [ "$line" = ready ]
}

# drv_send CMD: sends a command without waiting for its answer.
drv_send()
{
    printf '%s\n' "$1" >&"${DRV[1]}"
}

# drv_read [SECONDS]: reads the next answer into DRV_LINE ("" on timeout).
drv_read()
{
    DRV_LINE=
    IFS= read -t "${1:-60}" -r DRV_LINE <&"${DRV[0]}" || DRV_LINE=
}

# drv_cmd CMD [SECONDS]: one command and its answer (DRV_LINE).
drv_cmd()
{
    drv_send "$1"
    drv_read "${2:-60}"
}

# drv_field NAME: a field of the last answer (ok, fail, bad, err).
drv_field()
{
    case "$1" in
        err) printf '%s' "${DRV_LINE#* err=}" ;;
        *) sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$DRV_LINE" ;;
    esac
}

# drv_expect OK FAIL DESC: one point: the last answer counted OK signatures
# that verified, FAIL clean failures and no bad signature.
drv_expect()
{
    local ok fail bad
    ok=$(drv_field ok)
    fail=$(drv_field fail)
    bad=$(drv_field bad)
    if [ "$ok" = "$1" ] && [ "$fail" = "$2" ] && [ "$bad" = 0 ]; then
        pass "$3"
    else
        fail "$3" "want ok=$1 fail=$2 bad=0; got: ${DRV_LINE:-(no answer)}"
        diag_file "$T/faultdrv.err" 5
        diag_file "$T/faultmod.log" 5
    fi
}

# drv_stop: quit; the exit status in DRV_RC.
drv_stop()
{
    drv_send quit 2>/dev/null
    bg_wait "$FDRV_PID" 20
    DRV_RC=$BG_RC
}
