/* cmd_keygen.c: p11id keygen: a key pair generated on the token, sensitive
 * and never extractable, with a public-key object and one CKA_ID. */
#include <stdlib.h>
#include <string.h>
#include <openssl/objects.h>
#include <openssl/rand.h>

#include "core/manage.h"
#include "tool/tool.h"

const char cmd_keygen_help[] =
    "usage: p11id keygen TOKEN-URI --type TYPE --label LABEL [--id HEX]\n"
    "\n"
    "Generates a key pair on the token: the private key is CKA_SENSITIVE,\n"
    "not CKA_EXTRACTABLE and private; the public key is stored beside it\n"
    "with the same CKA_ID (random 8 bytes unless --id). Prints the key's\n"
    "pkcs11: URI.\n"
    "\n"
    "  --type TYPE    rsa:2048, rsa:3072, rsa:4096, ec:P-256, ec:P-384,\n"
    "                 ec:P-521, ed25519\n"
    "  --label LABEL  CKA_LABEL of both objects; must be new on the token\n"
    "  --id HEX       CKA_ID, e.g. 01 or 0a1b2c\n";

typedef struct keytype_st {
    const char *name;         /* as on the command line */
    P11ID_GEN_KIND kind;
    CK_ULONG bits;            /* RSA */
    const char *oid;          /* EC and Edwards curves */
} KEYTYPE;

static const KEYTYPE keytypes[] = {
    { "rsa:2048", P11ID_GEN_RSA, 2048, NULL },
    { "rsa:3072", P11ID_GEN_RSA, 3072, NULL },
    { "rsa:4096", P11ID_GEN_RSA, 4096, NULL },
    { "ec:P-256", P11ID_GEN_EC, 0, "1.2.840.10045.3.1.7" },
    { "ec:P-384", P11ID_GEN_EC, 0, "1.3.132.0.34" },
    { "ec:P-521", P11ID_GEN_EC, 0, "1.3.132.0.35" },
    { "ed25519", P11ID_GEN_EDWARDS, 0, "1.3.101.112" },
};

static const KEYTYPE *find_type(const char *name)
{
    size_t i;

    for (i = 0; i < sizeof(keytypes) / sizeof(keytypes[0]); i++)
        if (strcasecmp(keytypes[i].name, name) == 0)
            return &keytypes[i];
    return NULL;
}

/* The length of a blank-padded PKCS#11 string field. */
static size_t tool_field_len(const CK_UTF8CHAR *f, size_t len)
{
    while (len > 0 && f[len - 1] == ' ')
        len--;
    return len;
}

/* Refuses a label a key on the token already has: URIs by label must stay
 * unambiguous. */
static int label_is_new(TOOL *t, P11ID_TOKEN *tok, const char *label)
{
    P11ID_OBJECT **objs = NULL;
    size_t n = 0, i;
    char *uri;
    int ok;

    uri = p11id_uri_format_object(p11id_token_get0_info(tok),
                                  P11ID_CLASS_ANY, NULL, 0, label);
    if (uri == NULL || !tool_find_all(t, uri, P11ID_CLASS_ANY, &objs, &n)) {
        free(uri);
        return 0;
    }
    ok = 1;
    for (i = 0; i < n; i++)
        if (p11id_object_get_class(objs[i]) == CKO_PRIVATE_KEY
            || p11id_object_get_class(objs[i]) == CKO_PUBLIC_KEY) {
            tool_err(t, "token \"%s\" already has a key labelled \"%s\": %s",
                     p11id_token_get0_label(tok), label,
                     p11id_object_get0_uri(objs[i]));
            ok = 0;
            break;
        }
    p11id_objects_free(objs, n);
    free(uri);
    return ok;
}

/* Some tokens do not make the key the template asked for (a software token
 * that keeps keys exportable, a card that ignores CKA_SENSITIVE): read the
 * key's attributes back and say plainly which ones differ. The key is kept
 * (it was made); p11id check flags it too. */
static void warn_unprotected(TOOL *t, P11ID_TOKEN *tok, P11ID_OBJECT *priv)
{
    const CK_TOKEN_INFO *ti = p11id_token_get0_info(tok);
    char what[160] = "";
    size_t used = 0;

    if (p11id_object_get_flag(priv, CKA_EXTRACTABLE))
        used += (size_t)snprintf(what + used, sizeof(what) - used,
                                 "CKA_EXTRACTABLE is true (asked false)");
    if (!p11id_object_get_flag(priv, CKA_SENSITIVE) && used < sizeof(what))
        used += (size_t)snprintf(what + used, sizeof(what) - used,
                                 "%sCKA_SENSITIVE is false (asked true)",
                                 used > 0 ? ", " : "");
    if (!p11id_object_get_flag(priv, CKA_PRIVATE) && used < sizeof(what))
        snprintf(what + used, sizeof(what) - used,
                 "%sCKA_PRIVATE is false (asked true)", used > 0 ? ", " : "");
    if (what[0] == '\0')
        return;
    tool_err(t, "warning: token \"%s\" (%.*s %.*s) did not protect the new "
                "key as asked: %s; the private key can leave the token "
                "(p11id check flags it)",
             p11id_token_get0_label(tok),
             (int)tool_field_len(ti->manufacturerID,
                                 sizeof(ti->manufacturerID)),
             (const char *)ti->manufacturerID,
             (int)tool_field_len(ti->model, sizeof(ti->model)),
             (const char *)ti->model, what);
}

P11ID_OBJECT *tool_keygen(TOOL *t, P11ID_TOKEN *tok, const char *type,
                          const char *label, const char *idhex)
{
    const KEYTYPE *kt = find_type(type);
    P11ID_KEYGEN_REQ req;
    P11ID_OBJECT *priv = NULL;
    ASN1_OBJECT *oid = NULL;
    unsigned char *params = NULL, *id = NULL, *p;
    size_t idlen = 8;
    int plen = 0;
    CK_RV rv;

    if (kt == NULL) {
        tool_err(t, "unknown key type \"%s\" (rsa:2048, rsa:3072, rsa:4096, "
                    "ec:P-256, ec:P-384, ec:P-521, ed25519)", type);
        return NULL;
    }
    if (label == NULL || *label == '\0' || strlen(label) > 128) {
        tool_err(t, "a --label of 1 to 128 characters is needed");
        return NULL;
    }
    if (!tool_login(t, tok) || !label_is_new(t, tok, label))
        return NULL;
    if (idhex != NULL) {
        if (!tool_parse_hex(idhex, &id, &idlen)) {
            tool_err(t, "--id %s is not hex bytes (e.g. 01 or 0a1b)", idhex);
            return NULL;
        }
    } else if ((id = OPENSSL_malloc(idlen)) == NULL
               || RAND_bytes(id, (int)idlen) != 1) {
        tool_err(t, "cannot make a random CKA_ID");
        goto done;
    }
    memset(&req, 0, sizeof(req));
    req.kind = kt->kind;
    req.rsa_bits = kt->bits;
    if (kt->oid != NULL) {
        oid = OBJ_txt2obj(kt->oid, 1);
        plen = oid != NULL ? i2d_ASN1_OBJECT(oid, NULL) : 0;
        params = plen > 0 ? OPENSSL_malloc((size_t)plen) : NULL;
        p = params;
        if (params == NULL || i2d_ASN1_OBJECT(oid, &p) != plen) {
            tool_err(t, "cannot encode the curve of %s", type);
            goto done;
        }
        req.ec_params = params;
        req.ec_params_len = (size_t)plen;
    }
    req.label = label;
    req.id = id;
    req.idlen = idlen;
    rv = p11id_generate_keypair(tok, &req, &priv);
    if (rv != CKR_OK && rv != CKR_TOKEN_WRITE_PROTECTED)
        tool_err(t, "token \"%s\" could not generate a %s key (does it have "
                    "the mechanism? p11id tokens --mechanisms)",
                 p11id_token_get0_label(tok), type);
    else if (rv == CKR_OK)
        warn_unprotected(t, tok, priv);
done:
    ASN1_OBJECT_free(oid);
    OPENSSL_free(params);
    OPENSSL_free(id);
    return priv;
}

int cmd_keygen_main(TOOL *t, int argc, char **argv)
{
    static const struct option opts[] = {
        { "type", required_argument, NULL, 't' },
        { "label", required_argument, NULL, 'l' },
        { "id", required_argument, NULL, 'i' },
        TOOL_COMMON_OPTIONS
    };
    const char *type = NULL, *label = NULL, *id = NULL;
    P11ID_TOKEN *tok;
    P11ID_OBJECT *key;
    int c;

    while ((c = getopt_long(argc, argv, "t:l:i:", opts, NULL)) != -1) {
        if (c == 't')
            type = optarg;
        else if (c == 'l')
            label = optarg;
        else if (c == 'i')
            id = optarg;
        else if (c < TOOL_OPT_BASE || !tool_common_option(t, c, optarg))
            return tool_usage(t, "unknown option");
    }
    if (optind != argc - 1)
        return tool_usage(t, "give one TOKEN-URI");
    if (type == NULL || label == NULL)
        return tool_usage(t, "--type and --label are needed");
    if (find_type(type) == NULL)
        return tool_usage(t, "unknown key type \"%s\" (rsa:2048, rsa:3072, "
                             "rsa:4096, ec:P-256, ec:P-384, ec:P-521, "
                             "ed25519)", type);
    tok = tool_token(t, argv[optind]);
    if (tok == NULL)
        return EXIT_FAIL;
    key = tool_keygen(t, tok, type, label, id);
    if (key == NULL)
        return tool_fail_code(t);
    if (t->json) {
        printf("{\"uri\": ");
        tool_json_str(stdout, p11id_object_get0_uri(key));
        printf(", \"type\": ");
        tool_json_str(stdout, type);
        printf("}\n");
    } else {
        printf("%s\n", p11id_object_get0_uri(key));
    }
    p11id_object_free(key);
    return EXIT_OK;
}
