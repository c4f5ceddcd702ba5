/* ledger.h: placeholder */
