/* pin.c: reading PINs from files and environment variables. */
#include "core/pin.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include <p11id/p11id.h>
#include "core/err.h"

/* Reads the first line of a file into buf. */
static CK_RV read_pin_file(const char *path, char *buf, size_t max,
                           size_t *len)
{
    char tmp[P11ID_PIN_MAX + 2];
    ssize_t got;
    size_t n;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        p11id_raise(P11ID_R_PIN_SOURCE_INVALID, "cannot read PIN file %s: %s",
                    path, strerror(errno));
        return CKR_ARGUMENTS_BAD;
    }
    got = read(fd, tmp, sizeof(tmp) - 1);
    close(fd);
    if (got < 0) {
        p11id_raise(P11ID_R_PIN_SOURCE_INVALID, "cannot read PIN file %s: %s",
                    path, strerror(errno));
        return CKR_ARGUMENTS_BAD;
    }
    tmp[got] = '\0'; /* strcspn and strlen below stop here at the latest */
    n = strcspn(tmp, "\r\n");
    if (memchr(tmp, '\0', n) != NULL)
        n = strlen(tmp);
    if (n == 0 || n > max || n > P11ID_PIN_MAX) {
        OPENSSL_cleanse(tmp, sizeof(tmp));
        p11id_raise(P11ID_R_PIN_SOURCE_INVALID,
                    n == 0 ? "PIN file %s is empty"
                           : "PIN file %s: the PIN is longer than %d bytes",
                    path, P11ID_PIN_MAX);
        return CKR_ARGUMENTS_BAD;
    }
    memcpy(buf, tmp, n);
    *len = n;
    OPENSSL_cleanse(tmp, sizeof(tmp));
    return CKR_OK;
}

CK_RV p11id_pin_read_source(const char *spec, bool plain_path, char *buf,
                            size_t max, size_t *len)
{
    const char *val;
    size_t n;

    if (strncmp(spec, "file:", 5) == 0)
        return read_pin_file(spec + 5, buf, max, len);
    if (strncmp(spec, "env:", 4) == 0) {
        val = getenv(spec + 4);
        if (val == NULL || *val == '\0') {
            p11id_raise(P11ID_R_PIN_SOURCE_INVALID,
                        "PIN source env:%s: the variable is not set or "
                        "empty", spec + 4);
            return CKR_ARGUMENTS_BAD;
        }
        n = strlen(val);
        if (n > max) {
            p11id_raise(P11ID_R_PIN_SOURCE_INVALID,
                        "PIN source env:%s: the PIN is too long", spec + 4);
            return CKR_ARGUMENTS_BAD;
        }
        memcpy(buf, val, n);
        *len = n;
        return CKR_OK;
    }
    if (plain_path)
        return read_pin_file(spec, buf, max, len);
    p11id_raise(P11ID_R_PIN_SOURCE_INVALID,
                "the PIN source is not understood (its value is not shown): "
                "use file:PATH or env:NAME");
    return CKR_ARGUMENTS_BAD;
}
