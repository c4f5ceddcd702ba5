/* p11id.h: names shared by the provider, the tool and the tests: config keys,
 * parameter names and error reasons. Each is defined here once. */
#ifndef P11ID_P11ID_H
#define P11ID_P11ID_H

#define P11ID_PROVIDER_NAME "p11id"
#define P11ID_PROPERTIES "provider=p11id"

/* Keys of the provider's section in openssl.cnf ([p11id_sect]). */
#define P11ID_CFG_MODULE_PATH "pkcs11-module-path"
#define P11ID_CFG_MODULE_NAME "pkcs11-module-name"
#define P11ID_CFG_INIT_ARGS "pkcs11-module-init-args"
#define P11ID_CFG_PIN_SOURCE "pin-source"
#define P11ID_CFG_LOAD "load-behavior"
#define P11ID_CFG_LOG_FILE "log-file"
#define P11ID_CFG_LOG_LEVEL "log-level"
#define P11ID_CFG_SESSION_COPY "session-copy"

/* Environment variable naming a trace file (overrides log-file). */
#define P11ID_ENV_DEBUG "P11ID_DEBUG"

/* PEM label and description of the key reference file (shared with the other
 * widely deployed PKCS#11 provider so files work with both). */
#define P11ID_KEYREF_PEM_LABEL "PKCS#11 PROVIDER URI"
#define P11ID_KEYREF_DESC "PKCS#11 Provider URI v1.0"
#define P11ID_KEYREF_STRUCTURE "pkcs11"

/* Error reasons. Our own reasons, never raw CK_RV values: vendor CKRs do not
 * fit OpenSSL's reason field; the CKR name and hex go in the error data. */
#define P11ID_R_MODULE_LOAD_FAILED 100
#define P11ID_R_MODULE_INIT_FAILED 101
#define P11ID_R_URI_INVALID 102
#define P11ID_R_URI_UNKNOWN_ATTRIBUTE 103
#define P11ID_R_NO_TOKEN 104
#define P11ID_R_NO_OBJECT 105
#define P11ID_R_AMBIGUOUS_URI 106
#define P11ID_R_LOGIN_FAILED 107
#define P11ID_R_PIN_INCORRECT 108
#define P11ID_R_PIN_LOCKED 109
#define P11ID_R_PIN_FINAL_TRY 110
#define P11ID_R_PIN_UNAVAILABLE 111
#define P11ID_R_PIN_ALREADY_REJECTED 112
#define P11ID_R_TOKEN_CALL_FAILED 113
#define P11ID_R_SIGN_FAILED 114
#define P11ID_R_DECRYPT_FAILED 115
#define P11ID_R_DERIVE_FAILED 116
#define P11ID_R_SESSION_FAILED 117
#define P11ID_R_CONFIG_INVALID 118
#define P11ID_R_KEYFILE_INVALID 119
#define P11ID_R_UNSUPPORTED 120
#define P11ID_R_PUBLIC_KEY_UNAVAILABLE 121
#define P11ID_R_BAD_PARAMETER 122
#define P11ID_R_OPERATION_NOT_INITIALIZED 123
#define P11ID_R_NO_PRIVATE_KEY 124
#define P11ID_R_OUT_OF_MEMORY 125
#define P11ID_R_PIN_SOURCE_INVALID 126
#define P11ID_R_BUFFER_TOO_SMALL 127

#endif
