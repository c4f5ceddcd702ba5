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
/* The algorithm name of the key reference decoder and its key manager. */
#define P11ID_KEYREF_NAME "P11ID-KEYREF"

/* Error reasons. Our own reasons, never raw CK_RV values: vendor CKRs do not
 * fit OpenSSL's reason field; the CKR name and hex go in the error data. */
#define P11ID_R_MODULE_LOAD_FAILED 2000
#define P11ID_R_MODULE_INIT_FAILED 2001
#define P11ID_R_URI_INVALID 2002
#define P11ID_R_URI_UNKNOWN_ATTRIBUTE 2003
#define P11ID_R_NO_TOKEN 2004
#define P11ID_R_NO_OBJECT 2005
#define P11ID_R_AMBIGUOUS_URI 2006
#define P11ID_R_LOGIN_FAILED 2007
#define P11ID_R_PIN_INCORRECT 2008
#define P11ID_R_PIN_LOCKED 2009
#define P11ID_R_PIN_FINAL_TRY 2010
#define P11ID_R_PIN_UNAVAILABLE 2011
#define P11ID_R_PIN_ALREADY_REJECTED 2012
#define P11ID_R_TOKEN_CALL_FAILED 2013
#define P11ID_R_SIGN_FAILED 2014
#define P11ID_R_DECRYPT_FAILED 2015
#define P11ID_R_DERIVE_FAILED 2016
#define P11ID_R_SESSION_FAILED 2017
#define P11ID_R_CONFIG_INVALID 2018
#define P11ID_R_KEYFILE_INVALID 2019
#define P11ID_R_UNSUPPORTED 2020
#define P11ID_R_PUBLIC_KEY_UNAVAILABLE 2021
#define P11ID_R_BAD_PARAMETER 2022
#define P11ID_R_OPERATION_NOT_INITIALIZED 2023
#define P11ID_R_NO_PRIVATE_KEY 2024
#define P11ID_R_OUT_OF_MEMORY 2025
#define P11ID_R_PIN_SOURCE_INVALID 2026
#define P11ID_R_BUFFER_TOO_SMALL 2027

#endif
