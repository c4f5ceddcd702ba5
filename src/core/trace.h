/* trace.h: optional trace lines, off by default, to the file named by
 * P11ID_DEBUG or the provider's log-file. Never PINs, never key bytes. */
#ifndef P11ID_CORE_TRACE_H
#define P11ID_CORE_TRACE_H

/* Opens the trace file: path NULL means $P11ID_DEBUG, if set. level 0..3. */
void p11id_trace_open(const char *path, int level);
void p11id_trace_close(void);
int p11id_trace_enabled(int level);
void p11id_trace_at(int level, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define p11id_trace(level, ...)                                                \
    do {                                                                       \
        if (p11id_trace_enabled(level))                                        \
            p11id_trace_at((level), __func__, __VA_ARGS__);                    \
    } while (0)

#endif
