/* config.c: the provider's settings from its section of openssl.cnf, as
 * strings, checked (see conf.h). */
#include "provider/conf.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11id/p11id.h>

static char *conf_dup(const char *v)
{
    return (v != NULL && *v != '\0') ? strdup(v) : NULL;
}

/* atoi's reading (leading number, 0 when none) without its undefined
 * behaviour on overflow: out-of-range numbers are clamped. */
static int conf_int(const char *s)
{
    long v;

    v = strtol(s, NULL, 10);
    if (v > INT_MAX)
        return INT_MAX;
    if (v < INT_MIN)
        return INT_MIN;
    return (int)v;
}

static bool is_one_of(const char *s, const char *a, const char *b,
                      const char *c)
{
    return strcmp(s, a) == 0 || strcmp(s, b) == 0 || strcmp(s, c) == 0;
}

int p11id_conf_parse(const P11ID_CONF_IN *in, P11ID_CONF *out)
{
    memset(out, 0, sizeof(*out));
    out->module_path = conf_dup(in->module_path);
    out->module_name = conf_dup(in->module_name);
    out->init_args = conf_dup(in->init_args);
    out->pin_source = conf_dup(in->pin_source);
    out->log_file = conf_dup(in->log_file);
    out->log_level = in->log_level != NULL ? conf_int(in->log_level) : 1;
    if (in->load != NULL && strcmp(in->load, "early") == 0) {
        out->load_early = true;
    } else if (in->load != NULL && *in->load != '\0'
               && strcmp(in->load, "lazy") != 0) {
        snprintf(out->error, sizeof(out->error),
                 "%s = %s: use \"early\" or \"lazy\"", P11ID_CFG_LOAD,
                 in->load);
        return 0;
    }
    if (in->session_copy != NULL
        && is_one_of(in->session_copy, "no", "0", "off"))
        out->no_session_copy = true;
    else if (in->session_copy != NULL
             && !is_one_of(in->session_copy, "yes", "1", "on")) {
        snprintf(out->error, sizeof(out->error),
                 "%s = %s: use \"yes\" or \"no\"", P11ID_CFG_SESSION_COPY,
                 in->session_copy);
        return 0;
    }
    if (out->pin_source != NULL && strncmp(out->pin_source, "file:", 5) != 0
        && strncmp(out->pin_source, "env:", 4) != 0) {
        snprintf(out->error, sizeof(out->error),
                 "%s must be file:PATH or env:NAME (the value is not shown: "
                 "it may be a PIN)",
                 P11ID_CFG_PIN_SOURCE);
        return 0;
    }
    return 1;
}

void p11id_conf_clear(P11ID_CONF *conf)
{
    free(conf->module_path);
    free(conf->module_name);
    free(conf->init_args);
    free(conf->pin_source);
    free(conf->log_file);
    memset(conf, 0, sizeof(*conf));
}
