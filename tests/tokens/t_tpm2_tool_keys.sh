#!/usr/bin/env bash
# t_tpm2_tool_keys.sh: tests/tool/t_tool_keys.sh on tpm2-pkcs11 over a software TPM
# (tests/tokens/drv_tpm2.sh).
: "${TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
P11ID_TOKEN_KIND=tpm2 exec bash "$TOP_SRCDIR/tests/tool/t_tool_keys.sh"
