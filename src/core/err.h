/* err.h: the core's error sink. The core raises errors here; its user (the
 * provider or the tool) installs a sink that turns them into OpenSSL errors or
 * printed lines, so the core stays free of provider types. */
#ifndef P11ID_CORE_ERR_H
#define P11ID_CORE_ERR_H

#include <p11-kit/pkcs11.h>

typedef struct p11id_err_sink_st {
    /* Raise one error: reason is a P11ID_R_* code, msg the facts. */
    void (*raise)(void *arg, int reason, const char *file, int line,
                  const char *func, const char *msg);
    void (*set_mark)(void *arg);   /* may be NULL */
    void (*pop_to_mark)(void *arg); /* may be NULL */
    void (*clear_mark)(void *arg); /* may be NULL: forget the last mark */
    void *arg;                     /* passed to every callback */
} P11ID_ERR_SINK;

/* Installs the process-wide sink (copied). NULL restores the default sink,
 * which prints "p11id: <msg>" to stderr. */
void p11id_err_set_sink(const P11ID_ERR_SINK *sink);
/* The installed sink's arg (NULL for the default sink). */
void *p11id_err_get0_sink_arg(void);

/* Raise an error with a printf-style message. */
void p11id_raise_at(const char *file, int line, const char *func, int reason,
                    const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
#define p11id_raise(reason, ...)                                               \
    p11id_raise_at(__FILE__, __LINE__, __func__, (reason), __VA_ARGS__)

/* Raise an error for a failed PKCS#11 call: "C_Sign: CKR_X (0x..): text". */
void p11id_raise_ckr_at(const char *file, int line, const char *func,
                        int reason, const char *call, CK_RV rv);
#define p11id_raise_ckr(reason, call, rv)                                      \
    p11id_raise_ckr_at(__FILE__, __LINE__, __func__, (reason), (call), (rv))

/* Bracket speculative work: errors raised after the mark are dropped by
 * pop_to_mark, kept (and the mark forgotten) by clear_mark. */
void p11id_err_set_mark(void);
void p11id_err_pop_to_mark(void);
void p11id_err_clear_mark(void);

#endif
