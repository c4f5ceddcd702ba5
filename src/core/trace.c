/* trace.c: trace lines to a file, off unless P11ID_DEBUG or log-file says. */
#include "core/trace.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <unistd.h>

static FILE *trace_fp;      /* NULL: tracing off */
static int trace_level = 1; /* lines above this level are dropped */
static pthread_mutex_t trace_lock = PTHREAD_MUTEX_INITIALIZER;

void p11id_trace_open(const char *path, int level)
{
    const char *env = getenv("P11ID_DEBUG");
    FILE *fp;

    if (env != NULL && *env != '\0')
        path = env;
    if (path == NULL || *path == '\0')
        return;
    fp = fopen(path, "ae");
    if (fp == NULL)
        return;
    setvbuf(fp, NULL, _IOLBF, 0);
    pthread_mutex_lock(&trace_lock);
    if (trace_fp != NULL)
        fclose(trace_fp);
    __atomic_store_n(&trace_level, (env != NULL && level < 2) ? 2 : level,
                     __ATOMIC_RELAXED);
    __atomic_store_n(&trace_fp, fp, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&trace_lock);
}

void p11id_trace_close(void)
{
    pthread_mutex_lock(&trace_lock);
    if (trace_fp != NULL)
        fclose(trace_fp);
    __atomic_store_n(&trace_fp, NULL, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&trace_lock);
}

int p11id_trace_enabled(int level)
{
    /* Read without the lock on every traced call site: atomics keep it
     * race-free; a line racing with close is dropped by p11id_trace_at. */
    return __atomic_load_n(&trace_fp, __ATOMIC_ACQUIRE) != NULL
           && level <= __atomic_load_n(&trace_level, __ATOMIC_RELAXED);
}

void p11id_trace_at(int level, const char *func, const char *fmt, ...)
{
    struct timeval tv;
    va_list ap;

    gettimeofday(&tv, NULL);
    pthread_mutex_lock(&trace_lock);
    if (trace_fp != NULL) {
        fprintf(trace_fp, "%ld.%06ld [%d] %s: ", (long)tv.tv_sec,
                (long)tv.tv_usec, (int)getpid(), func);
        va_start(ap, fmt);
        vfprintf(trace_fp, fmt, ap);
        va_end(ap);
        fputc('\n', trace_fp);
    }
    pthread_mutex_unlock(&trace_lock);
}
