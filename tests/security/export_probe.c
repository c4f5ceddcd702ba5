/* export_probe.c: tries every way an OpenSSL application can ask for the
 * private half of a key, on a token key loaded through the p11id provider,
 * and reports what it got. Used by t_keys_never_leave.sh.
 *
 *   export_probe KEY-URI
 *
 * One line per attempt: "NAME: refused", "NAME: reference" (a key reference
 * came out, no key material) or "NAME: LEAK ..." (private material came
 * out). Exits 0 when nothing leaked, 1 on a leak, 2 when the key does not
 * load. */
#include <stdio.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/store.h>
#include <openssl/x509.h>
#include "../lib/storekey.h"

static int leaks;

static void report(const char *name, int leaked, const char *what)
{
    printf("%s: %s%s\n", name, leaked ? "LEAK " : "", what);
    leaks += leaked;
    ERR_clear_error();
}

static EVP_PKEY *load(const char *uri)
{
    return test_store_key(uri, NULL, NULL, OSSL_STORE_INFO_PKEY);
}

/* Private parameter names of every key type OpenSSL knows. */
static const char *const priv_names[] = {
    OSSL_PKEY_PARAM_PRIV_KEY,   OSSL_PKEY_PARAM_RSA_D,
    OSSL_PKEY_PARAM_RSA_FACTOR1, OSSL_PKEY_PARAM_RSA_FACTOR2,
    OSSL_PKEY_PARAM_RSA_EXPONENT1, OSSL_PKEY_PARAM_RSA_COEFFICIENT1,
    NULL
};

static void probe_todata(EVP_PKEY *pk)
{
    OSSL_PARAM *params = NULL;
    const OSSL_PARAM *p;
    int i, found = 0;

    if (EVP_PKEY_todata(pk, EVP_PKEY_KEYPAIR, &params) != 1) {
        report("EVP_PKEY_todata(KEYPAIR)", 0, "refused");
        return;
    }
    for (i = 0; priv_names[i] != NULL; i++) {
        p = OSSL_PARAM_locate_const(params, priv_names[i]);
        if (p != NULL && p->data_size > 0) {
            found++;
            printf("  todata holds %s\n", priv_names[i]);
        }
    }
    report("EVP_PKEY_todata(KEYPAIR)", found > 0,
           found > 0 ? "private parameters" : "public parameters only");
    OSSL_PARAM_free(params);
}

static void probe_params(EVP_PKEY *pk)
{
    unsigned char buf[1024];
    BIGNUM *bn = NULL;
    size_t len = 0;
    int i, found = 0;

    for (i = 0; priv_names[i] != NULL; i++) {
        if (EVP_PKEY_get_bn_param(pk, priv_names[i], &bn) == 1) {
            found++;
            printf("  get_bn_param %s answered\n", priv_names[i]);
        }
        BN_free(bn);
        bn = NULL;
        len = 0;
        if (EVP_PKEY_get_octet_string_param(pk, priv_names[i], buf,
                                            sizeof(buf), &len) == 1
            && len > 0) {
            found++;
            printf("  get_octet_string_param %s answered\n", priv_names[i]);
        }
    }
    report("EVP_PKEY_get_*_param(private)", found > 0,
           found > 0 ? "private parameters" : "refused");
    len = sizeof(buf);
    if (EVP_PKEY_get_raw_private_key(pk, buf, &len) == 1 && len > 0)
        report("EVP_PKEY_get_raw_private_key", 1, "raw private key");
    else
        report("EVP_PKEY_get_raw_private_key", 0, "refused");
}

/* What a serialisation holds: a private key the default provider can read
 * back is a leak; a key reference is fine. */
static void judge_pem(const char *name, BIO *mem)
{
    char *data = NULL;
    long n = BIO_get_mem_data(mem, &data);
    BIO *in;
    EVP_PKEY *back;

    if (n <= 0) {
        report(name, 0, "refused (nothing written)");
        return;
    }
    if (memmem(data, (size_t)n, "PRIVATE KEY-----", 16) != NULL
        && memmem(data, (size_t)n, "PKCS#11 PROVIDER URI", 20) == NULL) {
        in = BIO_new_mem_buf(data, (int)n);
        back = PEM_read_bio_PrivateKey_ex(in, NULL, NULL, NULL, NULL,
                                          "provider=default");
        report(name, back != NULL, back != NULL ? "a private key" : "refused");
        EVP_PKEY_free(back);
        BIO_free(in);
        return;
    }
    report(name, 0,
           memmem(data, (size_t)n, "PKCS#11 PROVIDER URI", 20) != NULL
               ? "reference"
               : "refused (no private key)");
}

static void probe_pem(EVP_PKEY *pk)
{
    BIO *mem = BIO_new(BIO_s_mem());

    if (PEM_write_bio_PrivateKey(mem, pk, NULL, NULL, 0, NULL, NULL) != 1)
        report("PEM_write_bio_PrivateKey", 0, "refused");
    else
        judge_pem("PEM_write_bio_PrivateKey", mem);
    BIO_free(mem);
    mem = BIO_new(BIO_s_mem());
    if (PEM_write_bio_PrivateKey_traditional(mem, pk, NULL, NULL, 0, NULL,
                                             NULL)
        != 1)
        report("PEM_write_bio_PrivateKey_traditional", 0, "refused");
    else
        judge_pem("PEM_write_bio_PrivateKey_traditional", mem);
    BIO_free(mem);
}

static void probe_der(EVP_PKEY *pk)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    int len = i2d_PrivateKey(pk, &der);
    EVP_PKEY *back;
    PKCS8_PRIV_KEY_INFO *p8;

    if (len <= 0) {
        report("i2d_PrivateKey", 0, "refused");
    } else {
        p = der;
        back = d2i_AutoPrivateKey(NULL, &p, len);
        report("i2d_PrivateKey", back != NULL,
               back != NULL ? "a private key" : "no private key in the DER");
        EVP_PKEY_free(back);
    }
    OPENSSL_free(der);
    p8 = EVP_PKEY2PKCS8(pk);
    report("EVP_PKEY2PKCS8", p8 != NULL,
           p8 != NULL ? "a PKCS#8 structure" : "refused");
    PKCS8_PRIV_KEY_INFO_free(p8);
}

/* Moving the key into the default provider asks for every private part. */
static void probe_dup(EVP_PKEY *pk)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(
        NULL, EVP_PKEY_get0_type_name(pk), "provider=default");
    OSSL_PARAM *params = NULL;
    EVP_PKEY *copy = NULL;
    unsigned char buf[1024];
    size_t len = sizeof(buf);
    BIGNUM *bn = NULL;
    int got = 0;

    if (ctx != NULL && EVP_PKEY_todata(pk, EVP_PKEY_KEYPAIR, &params) == 1
        && EVP_PKEY_fromdata_init(ctx) == 1
        && EVP_PKEY_fromdata(ctx, &copy, EVP_PKEY_KEYPAIR, params) == 1) {
        got = EVP_PKEY_get_bn_param(copy, OSSL_PKEY_PARAM_PRIV_KEY, &bn) == 1
              || EVP_PKEY_get_bn_param(copy, OSSL_PKEY_PARAM_RSA_D, &bn) == 1
              || (EVP_PKEY_get_raw_private_key(copy, buf, &len) == 1
                  && len > 0);
    }
    report("copy into the default provider", got,
           got ? "a software private key" : "no private key");
    BN_free(bn);
    EVP_PKEY_free(copy);
    OSSL_PARAM_free(params);
    EVP_PKEY_CTX_free(ctx);
}

int main(int argc, char **argv)
{
    EVP_PKEY *pk;

    if (argc != 2) {
        fprintf(stderr, "usage: %s KEY-URI\n", argv[0]);
        return 2;
    }
    pk = load(argv[1]);
    if (pk == NULL) {
        ERR_print_errors_fp(stderr);
        return 2;
    }
    printf("key type %s\n", EVP_PKEY_get0_type_name(pk));
    probe_todata(pk);
    probe_params(pk);
    probe_pem(pk);
    probe_der(pk);
    probe_dup(pk);
    EVP_PKEY_free(pk);
    printf("leaks %d\n", leaks);
    return leaks == 0 ? 0 : 1;
}
