/* pin.h: where PINs come from, and how they are held and wiped. */
#ifndef P11ID_CORE_PIN_H
#define P11ID_CORE_PIN_H

#include <stdbool.h>
#include <stddef.h>
#include <p11-kit/pkcs11.h>

#define P11ID_PIN_MAX 256

/* Asks the application for a PIN (the passphrase callback of OSSL_STORE).
 * Returns 1 and writes at most max bytes to buf and their count to *len, or
 * 0 when no PIN was given. prompt names the token. */
typedef int (*P11ID_PIN_CB)(char *buf, size_t max, size_t *len,
                            const char *prompt, void *arg);

/* Reads a PIN from a source: "file:PATH" or "env:NAME"; when plain_path is
 * true a bare path is a file too (the URI's pin-source). The first line of a
 * file, without its line end. Raises P11ID_R_PIN_SOURCE_INVALID naming the
 * file or variable (never the PIN) on failure. */
CK_RV p11id_pin_read_source(const char *spec, bool plain_path, char *buf,
                            size_t max, size_t *len);

#endif
