/* x509util.c: placeholder */
#include "tool/x509util.h"
