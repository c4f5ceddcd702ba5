/* err.c: the core's error sink and the helpers that raise through it. */
#include "core/err.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/rv.h"

static void default_raise(void *arg, int reason, const char *file, int line,
                          const char *func, const char *msg)
{
    fprintf(stderr, "p11id: %s\n", msg);
}

static P11ID_ERR_SINK sink = { default_raise, NULL, NULL, NULL, NULL };
static pthread_rwlock_t sink_lock = PTHREAD_RWLOCK_INITIALIZER;

void p11id_err_set_sink(const P11ID_ERR_SINK *s)
{
    static const P11ID_ERR_SINK dflt = { default_raise, NULL, NULL, NULL,
                                         NULL };

    pthread_rwlock_wrlock(&sink_lock);
    sink = (s != NULL && s->raise != NULL) ? *s : dflt;
    pthread_rwlock_unlock(&sink_lock);
}

void *p11id_err_get0_sink_arg(void)
{
    void *arg;

    pthread_rwlock_rdlock(&sink_lock);
    arg = sink.arg;
    pthread_rwlock_unlock(&sink_lock);
    return arg;
}

static P11ID_ERR_SINK current_sink(void)
{
    P11ID_ERR_SINK s;

    pthread_rwlock_rdlock(&sink_lock);
    s = sink;
    pthread_rwlock_unlock(&sink_lock);
    return s;
}

void p11id_raise_at(const char *file, int line, const char *func, int reason,
                    const char *fmt, ...)
{
    P11ID_ERR_SINK s = current_sink();
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    s.raise(s.arg, reason, file, line, func, msg);
}

void p11id_raise_ckr_at(const char *file, int line, const char *func,
                        int reason, const char *call, CK_RV rv)
{
    p11id_raise_at(file, line, func, reason, "%s: %s (0x%08lX): %s", call,
                   p11id_rv_name(rv), (unsigned long)rv, p11id_rv_text(rv));
}

void p11id_err_set_mark(void)
{
    P11ID_ERR_SINK s = current_sink();

    if (s.set_mark != NULL)
        s.set_mark(s.arg);
}

void p11id_err_pop_to_mark(void)
{
    P11ID_ERR_SINK s = current_sink();

    if (s.pop_to_mark != NULL)
        s.pop_to_mark(s.arg);
}

void p11id_err_clear_mark(void)
{
    P11ID_ERR_SINK s = current_sink();

    if (s.clear_mark != NULL)
        s.clear_mark(s.arg);
}
