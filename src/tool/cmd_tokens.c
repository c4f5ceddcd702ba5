/* cmd_tokens.c: p11id tokens: modules, slots and tokens, each token with its
 * pkcs11: URI, flags and PIN retry state. */
#include <stdlib.h>
#include <string.h>

#include "core/manage.h"
#include "core/rv.h"
#include "tool/tool.h"

const char cmd_tokens_help[] =
    "usage: p11id tokens [URI] [--mechanisms] [--json]\n"
    "\n"
    "Lists the PKCS#11 modules (--module, $P11ID_MODULE or p11-kit's\n"
    "registered ones) and their tokens: label, manufacturer, model, serial,\n"
    "flags, PIN state and the token's pkcs11: URI. URI narrows the list.\n"
    "\n"
    "  --mechanisms   also the mechanisms each token offers\n";

static const struct {
    CK_FLAGS flag;
    const char *name;
} token_flags[] = {
    { CKF_LOGIN_REQUIRED, "login-required" },
    { CKF_WRITE_PROTECTED, "read-only" },
    { CKF_PROTECTED_AUTHENTICATION_PATH, "pin-pad" },
    { CKF_USER_PIN_INITIALIZED, "user-pin-set" },
    { CKF_USER_PIN_COUNT_LOW, "user-pin-count-low" },
    { CKF_USER_PIN_FINAL_TRY, "user-pin-final-try" },
    { CKF_USER_PIN_LOCKED, "user-pin-locked" },
    { CKF_USER_PIN_TO_BE_CHANGED, "user-pin-to-be-changed" },
    { CKF_SO_PIN_LOCKED, "so-pin-locked" },
};

/* Space-separated flag names into buf. */
static const char *flags_text(CK_FLAGS f, char *buf, size_t len)
{
    size_t i, used = 0;

    buf[0] = '\0';
    for (i = 0; i < sizeof(token_flags) / sizeof(token_flags[0]); i++)
        if ((f & token_flags[i].flag) != 0 && used < len)
            used += (size_t)snprintf(buf + used, len - used, "%s%s",
                                     used > 0 ? " " : "", token_flags[i].name);
    return buf;
}

static const char *pin_state(CK_FLAGS f)
{
    if (f & CKF_USER_PIN_LOCKED)
        return "locked";
    if (f & CKF_USER_PIN_FINAL_TRY)
        return "final-try";
    if (f & CKF_USER_PIN_COUNT_LOW)
        return "count-low";
    return (f & CKF_USER_PIN_INITIALIZED) ? "ok" : "not-set";
}

static void print_token(TOOL *t, P11ID_TOKEN *tok, int mechs, int *first)
{
    const CK_TOKEN_INFO *ti;
    char label[33], manuf[33], model[17], serial[17], flags[256];
    CK_MECHANISM_TYPE *list = NULL;
    CK_ULONG n = 0, i;
    char *uri;

    p11id_token_refresh(tok);
    ti = p11id_token_get0_info(tok);
    p11id_trim_copy(label, ti->label, sizeof(ti->label));
    p11id_trim_copy(manuf, ti->manufacturerID, sizeof(ti->manufacturerID));
    p11id_trim_copy(model, ti->model, sizeof(ti->model));
    p11id_trim_copy(serial, ti->serialNumber, sizeof(ti->serialNumber));
    uri = p11id_uri_format_token(ti);
    flags_text(ti->flags, flags, sizeof(flags));
    if (mechs)
        p11id_token_mechanisms(tok, &list, &n);
    if (t->json) {
        printf("%s    {\"uri\": ", *first ? "" : ",\n");
        tool_json_str(stdout, uri);
        printf(", \"label\": ");
        tool_json_str(stdout, label);
        printf(", \"manufacturer\": ");
        tool_json_str(stdout, manuf);
        printf(", \"model\": ");
        tool_json_str(stdout, model);
        printf(", \"serial\": ");
        tool_json_str(stdout, serial);
        printf(", \"slot\": %lu, \"flags\": ",
               (unsigned long)p11id_token_get_slot(tok));
        tool_json_str(stdout, flags);
        printf(", \"pin\": ");
        tool_json_str(stdout, pin_state(ti->flags));
        if (mechs) {
            printf(", \"mechanisms\": [");
            for (i = 0; i < n; i++) {
                printf("%s", i > 0 ? ", " : "");
                tool_json_str(stdout, p11id_mech_name(list[i]));
            }
            printf("]");
        }
        printf("}");
    } else {
        printf("  token \"%s\" (slot %lu)\n    uri:          %s\n"
               "    manufacturer: %s\n    model:        %s\n"
               "    serial:       %s\n    flags:        %s\n"
               "    user PIN:     %s\n",
               label, (unsigned long)p11id_token_get_slot(tok), uri, manuf,
               model, serial, flags, pin_state(ti->flags));
        if (mechs) {
            printf("    mechanisms:  ");
            for (i = 0; i < n; i++)
                printf(" %s", p11id_mech_name(list[i]));
            printf("\n");
        }
    }
    *first = 0;
    free(list);
    free(uri);
}

/* Slots with a token that is not initialised: listed, never used. */
static void print_uninit(TOOL *t, P11ID_MODULE *mod, const P11ID_URI *uri)
{
    CK_SLOT_ID *slots = NULL;
    size_t n = 0, i;

    if (p11id_module_uninit_slots(mod, uri, &slots, &n) != CKR_OK || t->json)
        n = 0;
    for (i = 0; i < n; i++)
        printf("  slot %lu: token not initialised (ignored)\n",
               (unsigned long)slots[i]);
    free(slots);
}

int cmd_tokens_main(TOOL *t, int argc, char **argv)
{
    static const struct option opts[] = {
        { "mechanisms", no_argument, NULL, 'm' },
        TOOL_COMMON_OPTIONS
    };
    P11ID_MODULE **mods = NULL;
    P11ID_TOKEN **toks = NULL;
    P11ID_URI *uri = NULL;
    size_t nmods = 0, ntoks = 0, i, j;
    int mechs = 0, c, first = 1, rc = EXIT_FAIL;
    const CK_INFO *mi;
    char desc[33], manuf[33];

    while ((c = getopt_long(argc, argv, "m", opts, NULL)) != -1) {
        if (c == 'm')
            mechs = 1;
        else if (c < TOOL_OPT_BASE || !tool_common_option(t, c, optarg))
            return tool_usage(t, "unknown option");
    }
    if (optind < argc - 1)
        return tool_usage(t, "at most one URI");
    if (tool_core(t) == NULL
        || p11id_uri_parse(optind < argc ? argv[optind] : "pkcs11:", &uri)
               != CKR_OK
        || p11id_ctx_modules_for_uri(t->core, uri, &mods, &nmods) != CKR_OK)
        goto done;
    if (t->json)
        printf("{\"modules\": [\n");
    for (i = 0; i < nmods; i++) {
        mi = p11id_module_get0_info(mods[i]);
        p11id_trim_copy(desc, mi->libraryDescription,
                        sizeof(mi->libraryDescription));
        p11id_trim_copy(manuf, mi->manufacturerID, sizeof(mi->manufacturerID));
        if (t->json) {
            printf("%s  {\"path\": ", i > 0 ? ",\n" : "");
            tool_json_str(stdout, p11id_module_get0_path(mods[i]));
            printf(", \"description\": ");
            tool_json_str(stdout, desc);
            printf(", \"manufacturer\": ");
            tool_json_str(stdout, manuf);
            printf(", \"tokens\": [\n");
        } else {
            printf("module %s\n  %s (%s), version %u.%u\n",
                   p11id_module_get0_path(mods[i]), desc, manuf,
                   mi->libraryVersion.major, mi->libraryVersion.minor);
        }
        first = 1;
        if (p11id_module_tokens(mods[i], uri, &toks, &ntoks) == CKR_OK) {
            for (j = 0; j < ntoks; j++)
                print_token(t, toks[j], mechs, &first);
            if (ntoks == 0 && !t->json)
                printf("  (no initialised token)\n");
        }
        free(toks);
        toks = NULL;
        print_uninit(t, mods[i], uri);
        if (t->json)
            printf("\n  ]}");
    }
    if (t->json)
        printf("\n]}\n");
    rc = EXIT_OK;
done:
    free(mods);
    p11id_uri_free(uri);
    return rc;
}
