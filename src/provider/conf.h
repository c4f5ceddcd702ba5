/* conf.h: the provider's settings ([p11id_sect] of openssl.cnf) checked
 * and turned into values, without OpenSSL's core types, so a unit test or a
 * fuzzer can call it. */
#ifndef P11ID_PROVIDER_CONF_H
#define P11ID_PROVIDER_CONF_H

#include <stdbool.h>

/* The settings as OpenSSL hands them over: NULL when absent. */
typedef struct p11id_conf_in_st {
    char *module_path;  /* pkcs11-module-path */
    char *module_name;  /* pkcs11-module-name */
    char *init_args;    /* pkcs11-module-init-args */
    char *pin_source;   /* pin-source */
    char *load;         /* load-behavior */
    char *log_file;     /* log-file */
    char *log_level;    /* log-level */
    char *session_copy; /* session-copy */
} P11ID_CONF_IN;

/* The settings checked. Strings are owned copies, NULL when absent or
 * empty. */
typedef struct p11id_conf_st {
    char *module_path, *module_name, *init_args, *pin_source, *log_file;
    int log_level;        /* 1 when absent */
    bool load_early;      /* load-behavior = early */
    bool no_session_copy; /* session-copy = no */
    char error[256];      /* why the settings are refused, "" when not */
} P11ID_CONF;

/* Fills out from in. Returns 1, or 0 with out->error saying what is wrong
 * (never quoting pin-source, which may be a PIN typed in the wrong place);
 * out holds what was read either way and is freed by p11id_conf_clear. */
int p11id_conf_parse(const P11ID_CONF_IN *in, P11ID_CONF *out);
void p11id_conf_clear(P11ID_CONF *conf);

#endif
