/* keyref.h: the key reference file: a PEM file naming a key by URI (read by
 * the provider's decoder, written by its encoder and by the tool). */
#ifndef P11ID_CORE_KEYREF_H
#define P11ID_CORE_KEYREF_H

#include <stddef.h>

/* Finds the key reference block in a PEM text. Returns 1 and a new URI
 * string (OPENSSL_free) on success; -1 when the text holds no key reference
 * block (no error raised: not ours); 0 on a malformed one (error raised
 * naming what is wrong). */
int p11id_keyref_parse_pem(const unsigned char *buf, size_t len, char **uri);

/* The DER inside the key reference block: 1 and a new buffer
 * (OPENSSL_free), -1 when there is no such block, 0 (error raised) when it
 * is not valid PEM. */
int p11id_keyref_pem_to_der(const unsigned char *buf, size_t len,
                            unsigned char **der, size_t *derlen);

/* Same for DER input. Input that does not look like a key reference at all
 * is -1 (not ours, no error); input that names "PKCS#11 Provider URI" or
 * holds a "pkcs11:" string but is malformed is 0 with an error raised. */
int p11id_keyref_parse_der(const unsigned char *der, size_t len, char **uri);

/* Encodes a URI as a key reference PEM text. Returns a new NUL-terminated
 * string (OPENSSL_free) and its length, or NULL. */
char *p11id_keyref_to_pem(const char *uri, size_t *len);

#endif
