/* INCRBYFLOAT's arithmetic, exactly as Redis 7 does it (util.c string2ld and ld2string in
 * LD_STR_HUMAN mode, t_string.c incrbyfloatCommand): parse both operands with strtold, add
 * in long double, refuse NaN and infinities, print with "%.17Lf" and trim trailing zeros.
 * Rust has no long double, and the printed digits depend on it ("10.5" + "0.1" prints
 * "10.6" only because the sum is computed and rounded in 80-bit precision). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LONG_DOUBLE_CHARS (5 * 1024)

static int string2ld(const char *s, size_t slen, long double *dp) {
    char buf[MAX_LONG_DOUBLE_CHARS];
    long double value;
    char *eptr;

    if (slen == 0 || slen >= sizeof(buf)) return 0;
    memcpy(buf, s, slen);
    buf[slen] = '\0';

    errno = 0;
    value = strtold(buf, &eptr);
    if (isspace((unsigned char)buf[0]) || eptr[0] != '\0' || (size_t)(eptr - buf) != slen ||
        (errno == ERANGE && (value == HUGE_VAL || value == -HUGE_VAL || fpclassify(value) == FP_ZERO)) ||
        errno == EINVAL || isnan(value))
        return 0;

    if (dp) *dp = value;
    return 1;
}

static size_t ld2string_human(char *buf, size_t len, long double value) {
    int l = snprintf(buf, len, "%.17Lf", value);
    if (l < 0 || (size_t)l + 1 > len) return 0;
    if (strchr(buf, '.') != NULL) {
        char *p = buf + l - 1;
        while (*p == '0') {
            p--;
            l--;
        }
        if (*p == '.') l--;
    }
    if (l == 2 && buf[0] == '-' && buf[1] == '0') {
        buf[0] = '0';
        l = 1;
    }
    return (size_t)l;
}

/* Returns 0 and the new value's text in out/out_len, or: 1 when the current value is not
 * a float, 2 when the increment is not, 3 when the sum is NaN or infinite. `cur` may be
 * NULL (missing key: 0). `out` must hold MAX_LONG_DOUBLE_CHARS bytes. */
int corekv_incrbyfloat(const char *cur, size_t cur_len, const char *incr, size_t incr_len,
                       char *out, size_t *out_len) {
    long double value = 0, by;
    if (cur != NULL && !string2ld(cur, cur_len, &value)) return 1;
    if (!string2ld(incr, incr_len, &by)) return 2;
    value += by;
    if (isnan(value) || isinf(value)) return 3;
    *out_len = ld2string_human(out, MAX_LONG_DOUBLE_CHARS, value);
    return 0;
}

/* getTimeoutFromObjectOrReply in seconds, as Redis 7.0 does it: the argument parsed as a
 * long double, times 1000, rounded up to whole milliseconds. Returns 0 with the
 * milliseconds in *ms, 1 when it is not a float, 2 when it is negative. Redis casts the
 * product to long long without a range check; on x86-64 an out-of-range value (inf,
 * 1e20) becomes LLONG_MIN, i.e. "negative", which is spelled out here. */
int corekv_timeout_ms(const char *s, size_t slen, long long *ms) {
    long double v;
    if (!string2ld(s, slen, &v)) return 1;
    long double t = ceill(v * 1000.0L);
    if (!(t >= -9223372036854775808.0L && t < 9223372036854775808.0L)) return 2;
    long long tval = (long long)t;
    if (tval < 0) return 2;
    *ms = tval;
    return 0;
}

/* A double argument as Redis 7.0's getDoubleFromObject reads it (string2d): strtod, no
 * leading space, the whole string, not NaN, not out of range (denormals are fine).
 * Returns 1 with the value in *out, else 0. */
int corekv_strtod(const char *s, size_t slen, double *out) {
    char buf[MAX_LONG_DOUBLE_CHARS];
    char *eptr;
    if (slen == 0 || slen >= sizeof(buf)) return 0;
    memcpy(buf, s, slen);
    buf[slen] = '\0';
    errno = 0;
    double value = strtod(buf, &eptr);
    if (isspace((unsigned char)buf[0]) || eptr[0] != '\0' || (size_t)(eptr - buf) != slen ||
        (errno == ERANGE && (value == HUGE_VAL || value == -HUGE_VAL || fpclassify(value) == FP_ZERO)) ||
        isnan(value))
        return 0;
    *out = value;
    return 1;
}

/* A finite double as Redis 7.0 replies it: "%.17g". Writes at most 32 bytes; returns
 * the length. */
int corekv_fmt_double(double d, char *out) {
    return snprintf(out, 32, "%.17g", d);
}

/* A score range bound as Redis 7.0's zslParseRange reads it: plain strtod (leading
 * space, overflow to inf and "" as 0 are accepted), the whole string, not NaN. */
int corekv_strtod_loose(const char *s, size_t slen, double *out) {
    char buf[MAX_LONG_DOUBLE_CHARS];
    char *eptr;
    if (slen >= sizeof(buf)) return 0;
    memcpy(buf, s, slen);
    buf[slen] = '\0';
    double value = strtod(buf, &eptr);
    if (eptr[0] != '\0' || (size_t)(eptr - buf) != slen || isnan(value)) return 0;
    *out = value;
    return 1;
}

/* A value SORT sorts by, as Redis 7.0's sortCommandGeneric reads it: strtod on the
 * NUL-terminated string `s` (so it ends at an embedded NUL), leading space and "" (as 0)
 * accepted, nothing after the number, no range error, not NaN. */
int corekv_strtod_sort(const char *s, double *out) {
    char *eptr;
    errno = 0;
    double value = strtod(s, &eptr);
    if (eptr[0] != '\0' || errno == ERANGE || isnan(value)) return 0;
    *out = value;
    return 1;
}

/* A double as C's "%.*g" prints it with `precision` digits (1 to 17). Writes at most 32
 * bytes; returns the length. */
int corekv_fmt_g(double d, int precision, char *out) {
    return snprintf(out, 32, "%.*g", precision, d);
}

/* strtod over the NUL-terminated `s`: the value in *out and how many bytes it read (0
 * when none form a number). */
size_t corekv_strtod_prefix(const char *s, double *out) {
    char *end;
    *out = strtod(s, &end);
    return (size_t)(end - s);
}
