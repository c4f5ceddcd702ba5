#!/usr/bin/env bash
# scripts/build.sh [--asan]: install dependencies, generate the build system,
# configure (in the source tree) and build. --asan builds with
# AddressSanitizer/UBSan (configure --enable-asan); switching between the two
# reconfigures and rebuilds from clean. Extra configure arguments:
# P11ID_CONFIGURE_ARGS. Parallel jobs: JOBS (default 2).
set -eu
cd "$(dirname "$0")/.."

asan=no
for a in "$@"; do
    case "$a" in
        --asan) asan=yes ;;
        -h | --help)
            sed -n '2,7s/^# \{0,1\}//p' "$0"
            exit 0 ;;
        *)
            echo "build.sh: unknown option $a (try --help)" >&2
            exit 2 ;;
    esac
done

bash scripts/deps.sh

if [ ! -x configure ] || [ configure.ac -nt configure ] \
    || [ ! -f build-aux/tap-driver.sh ]; then
    echo "build.sh: autoreconf -fi"
    autoreconf -fi
fi

args=(--enable-strict)
[ "$asan" = yes ] && args+=(--enable-asan)
# shellcheck disable=SC2206
[ -n "${P11ID_CONFIGURE_ARGS:-}" ] && args+=(${P11ID_CONFIGURE_ARGS})

# Reconfigure only when the arguments differ from the last configure run.
want="${args[*]:-}"
have=
[ -f config.status ] && have=$(./config.status --config 2>/dev/null | tr -d "'")
if [ ! -f Makefile ] || [ ! -f config.status ] || [ "$have" != "$want" ]; then
    if [ -f Makefile ]; then
        echo "build.sh: configure arguments change ('$have' -> '$want'): clean rebuild"
        make clean >/dev/null 2>&1 || true
    fi
    echo "build.sh: ./configure ${want}"
    ./configure "${args[@]}"
fi

make -j"${JOBS:-2}"
