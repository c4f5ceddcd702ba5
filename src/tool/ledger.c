/* ledger.c: placeholder */
#include "tool/ledger.h"
