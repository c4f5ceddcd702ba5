#!/usr/bin/env bash
# t_remote_keys.sh: tests/tool/t_tool_keys.sh on a SoftHSM token exported by p11-kit server
# over a unix socket, used through p11-kit-client.so (tests/tokens/drv_remote.sh).
P11ID_TOKEN_KIND=remote P11ID_REMOTE_TRANSPORT=unix \
    exec bash "${TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/tool/t_tool_keys.sh" "$@"
