#!/usr/bin/env bash
# t_card_tls_mtls.sh: tests/apps/t_tls_mtls.sh on the virtual CAC smart card
# (tests/tokens/drv_card.sh).
P11ID_TOKEN_KIND=card exec bash "${TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/apps/t_tls_mtls.sh"
