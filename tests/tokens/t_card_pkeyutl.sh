#!/usr/bin/env bash
# t_card_pkeyutl.sh: tests/integration/t_pkeyutl.sh on the virtual CAC smart card
# (tests/tokens/drv_card.sh).
P11ID_TOKEN_KIND=card exec bash "${TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/t_pkeyutl.sh"
