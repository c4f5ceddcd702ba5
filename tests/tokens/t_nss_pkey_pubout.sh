#!/usr/bin/env bash
# t_nss_pkey_pubout.sh: tests/integration/t_pkey_pubout.sh on an NSS softokn database (tests/tokens/drv_nss.sh).
P11ID_TOKEN_KIND=nss exec bash "${TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/t_pkey_pubout.sh" "$@"
