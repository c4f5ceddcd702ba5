/* uri.h: RFC 7512 pkcs11: URIs, parsed with p11-kit's uri.h, plus the strict
 * checks and the matching p11id needs. */
#ifndef P11ID_CORE_URI_H
#define P11ID_CORE_URI_H

#include <stdbool.h>
#include <stddef.h>
#include <p11-kit/pkcs11.h>

typedef struct p11id_uri_st P11ID_URI;

/* Parses str. Every attribute of RFC 7512 is accepted (path: token,
 * manufacturer, model, serial, slot-description, slot-manufacturer, slot-id,
 * library-description, library-manufacturer, library-version, id, object,
 * type; query: pin-source, pin-value, module-name, module-path). Anything
 * else (an unknown attribute, a vendor "x-" attribute, a bad encoding, a bad
 * type value) raises P11ID_R_URI_UNKNOWN_ATTRIBUTE or P11ID_R_URI_INVALID
 * naming the attribute, and returns CKR_ARGUMENTS_BAD. Inputs longer than
 * 64 KiB are refused. On success *out is a new URI. */
CK_RV p11id_uri_parse(const char *str, P11ID_URI **out);
void p11id_uri_free(P11ID_URI *uri);

/* The original text with any pin-value replaced by "***" (safe to print).
 * Borrowed: lives as long as uri. */
const char *p11id_uri_get0_display(const P11ID_URI *uri);

/* Query attributes, NULL when absent. Borrowed. */
const char *p11id_uri_get0_module_path(const P11ID_URI *uri);
const char *p11id_uri_get0_module_name(const P11ID_URI *uri);
const char *p11id_uri_get0_pin_value(const P11ID_URI *uri);
const char *p11id_uri_get0_pin_source(const P11ID_URI *uri);

/* Matching: true when every attribute of that group that the URI names
 * equals the given info (space padding of the CK_*_INFO fields handled). */
bool p11id_uri_match_module(const P11ID_URI *uri, const CK_INFO *info);
bool p11id_uri_match_slot(const P11ID_URI *uri, CK_SLOT_ID slot,
                          const CK_SLOT_INFO *info);
bool p11id_uri_match_token(const P11ID_URI *uri, const CK_TOKEN_INFO *info);
/* The URI picks a slot itself: slot-id, slot-description or
 * slot-manufacturer. */
bool p11id_uri_names_slot(const P11ID_URI *uri);

/* Object attributes named by the URI. class is (CK_OBJECT_CLASS)-1 when
 * "type" is absent. id/label are NULL when absent (idlen 0). Borrowed. */
CK_OBJECT_CLASS p11id_uri_get_class(const P11ID_URI *uri);
const unsigned char *p11id_uri_get0_id(const P11ID_URI *uri, size_t *idlen);
const char *p11id_uri_get0_label(const P11ID_URI *uri);

/* The token attributes the URI names (token, manufacturer, model, serial)
 * as p11-kit keeps them: a field is all zero when the URI does not name it,
 * space-padded text when it does. Borrowed; NULL for a NULL uri. */
const CK_TOKEN_INFO *p11id_uri_get0_token_info(const P11ID_URI *uri);

/* True when the URI names any object attribute (id, object or type). */
bool p11id_uri_has_object_attrs(const P11ID_URI *uri);

/* Formats a copy-pasteable URI for an object on a token: token, manufacturer,
 * model and serial from ti (trimmed), then object (label, may be NULL), id
 * (may be NULL/0), type ("private", "public", "cert", "secret-key", "data" from
 * cls). Attribute values percent-encoded as RFC 7512 requires. Returns a new
 * string (free with free()), NULL on allocation failure. */
char *p11id_uri_format_object(const CK_TOKEN_INFO *ti, CK_OBJECT_CLASS cls,
                              const unsigned char *id, size_t idlen,
                              const char *label);

/* Same for a token alone ("pkcs11:token=...;manufacturer=...;..."). */
char *p11id_uri_format_token(const CK_TOKEN_INFO *ti);

/* Copies a space-padded PKCS#11 string field (len bytes) into out (size
 * len + 1) without the trailing spaces, NUL-terminated. */
void p11id_trim_copy(char *out, const unsigned char *field, size_t len);

#endif
