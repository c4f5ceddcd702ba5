#!/usr/bin/env bash
# t_remote_exec.sh: sign/verify and mutual TLS with the keys on a SoftHSM token
# reached through p11-kit remoting over the exec transport (tests/tokens/drv_remote.sh).
P11ID_REMOTE_TRANSPORT=exec exec bash "${TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/tokens/t_remote_smoke.sh" "$@"
