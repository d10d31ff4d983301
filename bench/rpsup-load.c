/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* rpsup-load: a connection-rate load generator for services run by rpsupd.
 *
 * One thread, one epoll. It keeps --concurrency stream connections (TCP or AF_UNIX) in flight. Each
 * attempt connects without blocking, sends the request once, reads the reply until EOF and only then
 * closes, so the server never sees a reset from us. Every attempt ends as exactly one of: ok, refused,
 * reset, timeout, eof or other. Replies of the form "generation=G pid=P worker=W" (bare, or as the body of
 * an HTTP/1.0 response when the request starts with "GET ") are tallied per generation, pid and worker,
 * and the time from connect() to the complete reply goes into a log-linear latency histogram.
 *
 * With --keepalive N a connection sends up to N requests ("ping\n" unless --request is given), one at a
 * time, and expects one reply line for each without the connection being closed. After the N-th reply we
 * half-close and read until the server's EOF. A server that closes earlier (rpsup-example-worker closes
 * after its first reply) ends the connection normally: EOF after at least one reply is ok, and the
 * replies that did come are counted in "replies", the per-key counts and the latency histogram (one
 * sample per reply: the first from connect(), later ones from sending their request).
 *
 * With --source ADDR,ADDR,... each attempt binds its socket to the next of these local addresses in turn
 * (IP_BIND_ADDRESS_NO_PORT: the port is still chosen at connect()). On loopback, one client address gives
 * only about 32k distinct 4-tuples towards one port, so a hash over the 4-tuple (SO_REUSEPORT's, or a
 * steering program's) sees few distinct flows; several 127.0.0.x sources give it as many as real clients
 * would. */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fd-util.h"
#include "json-util.h"
#include "log.h"
#include "macro.h"
#include "parse-util.h"
#include "socket-address.h"
#include "string-util.h"
#include "time-util.h"

#define CONCURRENCY_MAX 65536U
#define FDS_RESERVED 16U
#define REPLY_MAX 1024U
#define KEYS_MAX 4096U
#define KEYS_TABLE_BITS 13U
#define KEYS_TABLE_SIZE (1U << KEYS_TABLE_BITS) /* twice KEYS_MAX: probing always ends */
#define ERRNOS_MAX 32U
#define SOURCES_MAX 256U
#define EVENTS_MAX 256
#define HUMAN_KEYS_MAX 16U
#define STOP_FILE_CHECK_USEC (100 * USEC_PER_MSEC)
#define TAG_SIGNAL UINT64_MAX

/* Latency histogram: below 2 * HIST_SUB microseconds one bucket per value, above that HIST_SUB linear
 * buckets per power of two (relative error under 1/HIST_SUB), clamped at HIST_MAX_USEC. */
#define HIST_SUB_BITS 6U
#define HIST_SUB (1U << HIST_SUB_BITS)
#define HIST_TOP_BITS 26U /* 2^26 us > HIST_MAX_USEC */
#define HIST_MAX_USEC (60 * USEC_PER_SEC)
#define HIST_BUCKETS (2 * HIST_SUB + (HIST_TOP_BITS - HIST_SUB_BITS - 1) * HIST_SUB)

typedef enum Outcome {
        OUTCOME_OK,
        OUTCOME_REFUSED,
        OUTCOME_RESET,
        OUTCOME_TIMEOUT,
        OUTCOME_EOF,
        OUTCOME_OTHER,
        _OUTCOME_MAX,
} Outcome;

typedef enum SlotState {
        SLOT_FREE,
        SLOT_CONNECTING,
        SLOT_SENDING,
        SLOT_READING,
        SLOT_DRAINING, /* keep-alive: every request answered, we half-closed, waiting for EOF */
} SlotState;

typedef struct Slot {
        int fd;
        uint32_t seq; /* bumped per attempt: epoll events of an earlier attempt carry an old one */
        SlotState state;
        bool readable; /* an input edge came that we have not read up to EAGAIN yet (EPOLLET) */
        int32_t prev, next; /* deadline list while in flight, free list (next only) while free */
        usec_t started;     /* connect() */
        usec_t request_at;  /* keep-alive: when the current request was started */
        usec_t replied;     /* when the reply was complete, 0 while it is not */
        usec_t deadline;
        size_t sent;        /* bytes of the current request written */
        unsigned requests;  /* requests completely written */
        unsigned replies;
        size_t n;
        char buf[REPLY_MAX];
} Slot;

typedef struct CountMap {
        uint64_t keys[KEYS_TABLE_SIZE];
        uint64_t counts[KEYS_TABLE_SIZE]; /* 0: unused entry */
        unsigned n;
        uint64_t dropped; /* replies whose key found no room any more */
} CountMap;

typedef struct KeyCount {
        uint64_t key;
        uint64_t count;
} KeyCount;

typedef struct ErrnoCount {
        int error;
        uint64_t count;
} ErrnoCount;

/* Where to connect, or a source address to bind: an address as common/socket-address.h parses it. */
typedef SocketAddress Target;

typedef struct Load {
        Slot *slots;
        unsigned n_slots;
        int32_t free_head;
        /* Every deadline is "some time not after now" + arg_timeout and is appended when set, so the list is
         * sorted by deadline and its head is always the nearest one. */
        int32_t deadline_head, deadline_tail;
        unsigned n_inflight;
        int epoll_fd;

        usec_t start, end;
        bool stopping;
        const char *stop_reason;
        unsigned n_signals;
        bool launch_pending;
        usec_t next_stop_file_check;
        usec_t next_interval, last_interval;
        uint64_t last_interval_ok, last_interval_failed;

        unsigned next_source;
        uint64_t attempts, finished;
        uint64_t outcomes[_OUTCOME_MAX];
        uint64_t replies, unparsed;
        int other_errno;
        ErrnoCount connect_errors[ERRNOS_MAX];
        unsigned n_connect_errors;

        uint64_t hist[HIST_BUCKETS];
        uint64_t hist_count, hist_sum;
        usec_t hist_min, hist_max;

        CountMap generations, pids, workers;
} Load;

static const char *const outcome_names[_OUTCOME_MAX] = {
        [OUTCOME_OK] = "ok",         [OUTCOME_REFUSED] = "refused", [OUTCOME_RESET] = "reset",
        [OUTCOME_TIMEOUT] = "timeout", [OUTCOME_EOF] = "eof",       [OUTCOME_OTHER] = "other",
};

static const char *arg_connect;
static Target arg_target;
static unsigned arg_concurrency = 32;
static usec_t arg_duration = USEC_INFINITY;
static uint64_t arg_connections; /* 0: no limit */
static unsigned arg_rate;        /* 0: as fast as possible */
static usec_t arg_timeout = 5 * USEC_PER_SEC;
static unsigned arg_keepalive;
static char *arg_request;
static size_t arg_request_len;
static bool arg_http;
static const char *arg_stop_file;
static bool arg_json;
static usec_t arg_interval;
static Target arg_sources[SOURCES_MAX];
static unsigned arg_n_sources;

/* ---- small helpers ---- */

static const char *errno_name(int error, char buf[static 24]) {
        const char *s = strerrorname_np(error);

        if (s)
                return s;
        snprintf(buf, 24, "errno-%d", error);
        return buf;
}

/* A number shown with `decimals` digits after the point, not with all of a double's digits. */
static json_object *json_double(double v, int decimals) {
        char buf[64];

        snprintf(buf, sizeof(buf), "%.*f", decimals, v);
        return json_object_new_double_s(v, buf);
}

static void print_json(FILE *f, json_object *o) {
        fprintf(f, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* C escapes: \n \r \t \e \a \b \f \v \0 \\ \" \' \xHH. */
static int unescape(const char *s, char **ret, size_t *ret_len) {
        _cleanup_free_ char *buf = malloc(strlen(s) + 1);
        size_t n = 0;

        if (!buf)
                return -ENOMEM;

        for (const char *p = s; *p; p++) {
                int hi, lo;

                if (*p != '\\') {
                        buf[n++] = *p;
                        continue;
                }
                switch (*++p) {
                case 'n':
                        buf[n++] = '\n';
                        break;
                case 'r':
                        buf[n++] = '\r';
                        break;
                case 't':
                        buf[n++] = '\t';
                        break;
                case 'e':
                        buf[n++] = '\033';
                        break;
                case 'a':
                        buf[n++] = '\a';
                        break;
                case 'b':
                        buf[n++] = '\b';
                        break;
                case 'f':
                        buf[n++] = '\f';
                        break;
                case 'v':
                        buf[n++] = '\v';
                        break;
                case '0':
                        buf[n++] = 0;
                        break;
                case '\\':
                case '"':
                case '\'':
                        buf[n++] = *p;
                        break;
                case 'x':
                        hi = unhexchar(p[1]);
                        lo = hi >= 0 ? unhexchar(p[2]) : -EINVAL;
                        if (lo < 0)
                                return -EINVAL;
                        buf[n++] = (char) (hi << 4 | lo);
                        p += 2;
                        break;
                default: /* unknown escape, or a trailing backslash */
                        return -EINVAL;
                }
        }
        buf[n] = 0;
        *ret = TAKE_PTR(buf);
        *ret_len = n;
        return 0;
}

static int parse_port(const char *s, uint16_t *ret) {
        unsigned p;

        if (parse_uint(s, &p) < 0 || p == 0 || p > 65535)
                return -EINVAL;
        *ret = (uint16_t) p;
        return 0;
}

/* "A,B,...": numeric IPv4 or IPv6 addresses (IPv6 without brackets), port 0. */
static int parse_sources(const char *s) {
        _cleanup_free_ char *copy = strdup(s);
        char *save = NULL;

        if (!copy)
                return -ENOMEM;
        arg_n_sources = 0;
        for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
                struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST }, *ai = NULL;
                Target *t;

                if (arg_n_sources >= SOURCES_MAX)
                        return -E2BIG;
                if (getaddrinfo(w, NULL, &hints, &ai) != 0 || !ai)
                        return -EINVAL;
                t = &arg_sources[arg_n_sources++];
                *t = (Target) {};
                memcpy(&t->storage, ai->ai_addr, ai->ai_addrlen);
                t->size = ai->ai_addrlen;
                freeaddrinfo(ai);
        }
        return arg_n_sources > 0 ? 0 : -EINVAL;
}

/* "ADDR:PORT", "[V6]:PORT", "/path" or "@abstract" (socket_address_parse()), or "NAME:PORT" for a host name. */
static int parse_target(const char *s, Target *ret) {
        _cleanup_free_ char *host = NULL;
        struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *ai = NULL;
        const char *colon;
        Target t = {};
        uint16_t port;

        if (socket_address_parse(s, SOCK_STREAM, ret) >= 0)
                return 0;
        colon = strrchr(s, ':');
        if (!colon || colon == s || s[0] == '[' || parse_port(colon + 1, &port) < 0)
                return -EINVAL;
        host = strndup(s, (size_t) (colon - s));
        if (!host)
                return -ENOMEM;
        if (getaddrinfo(host, NULL, &hints, &ai) != 0 || !ai)
                return -EADDRNOTAVAIL;
        if (ai->ai_addrlen > sizeof(t.storage)) {
                freeaddrinfo(ai);
                return -EINVAL;
        }
        memcpy(&t.storage, ai->ai_addr, ai->ai_addrlen);
        t.size = ai->ai_addrlen;
        t.type = SOCK_STREAM;
        freeaddrinfo(ai);
        t.in.sin_port = htons(port);
        *ret = t;
        return 0;
}

static int raise_nofile(rlim_t *ret) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return -errno;
        if (rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                        return -errno;
        }
        *ret = rl.rlim_cur;
        return 0;
}

/* ---- bookkeeping ---- */

static void count_map_add(CountMap *m, uint64_t key) {
        size_t i = (size_t) ((key * UINT64_C(0x9E3779B97F4A7C15)) >> (64 - KEYS_TABLE_BITS));

        for (;; i = (i + 1) & (KEYS_TABLE_SIZE - 1)) {
                if (m->counts[i] == 0) {
                        if (m->n >= KEYS_MAX) {
                                m->dropped++;
                                return;
                        }
                        m->keys[i] = key;
                        m->counts[i] = 1;
                        m->n++;
                        return;
                }
                if (m->keys[i] == key) {
                        m->counts[i]++;
                        return;
                }
        }
}

static int key_count_compare(const void *a, const void *b) {
        const KeyCount *x = a, *y = b;

        return x->key < y->key ? -1 : x->key > y->key;
}

/* Returns the number of entries, sorted by key, in a new array. */
static int count_map_sorted(const CountMap *m, KeyCount **ret) {
        KeyCount *v = malloc(sizeof(KeyCount) * MAX(m->n, 1U));
        size_t n = 0;

        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < KEYS_TABLE_SIZE; i++)
                if (m->counts[i] > 0)
                        v[n++] = (KeyCount) { m->keys[i], m->counts[i] };
        qsort(v, n, sizeof(KeyCount), key_count_compare);
        *ret = v;
        return (int) n;
}

static double count_map_balance(const CountMap *m) {
        uint64_t lo = UINT64_MAX, hi = 0;

        for (size_t i = 0; i < KEYS_TABLE_SIZE; i++)
                if (m->counts[i] > 0) {
                        lo = MIN(lo, m->counts[i]);
                        hi = MAX(hi, m->counts[i]);
                }
        return hi == 0 ? 0.0 : (double) hi / (double) lo;
}

static unsigned hist_index(usec_t v) {
        unsigned k;

        v = MIN(v, HIST_MAX_USEC);
        if (v < 2 * HIST_SUB)
                return (unsigned) v;
        k = 63U - (unsigned) __builtin_clzll(v); /* 2^k <= v < 2^(k+1), k > HIST_SUB_BITS */
        return 2 * HIST_SUB + (k - HIST_SUB_BITS - 1) * HIST_SUB + (unsigned) (v >> (k - HIST_SUB_BITS)) - HIST_SUB;
}

/* The highest value that falls into bucket i. */
static usec_t hist_bucket_top(unsigned i) {
        unsigned j, k;

        if (i < 2 * HIST_SUB)
                return i;
        j = i - 2 * HIST_SUB;
        k = j / HIST_SUB + HIST_SUB_BITS + 1;
        return ((usec_t) (HIST_SUB + j % HIST_SUB + 1) << (k - HIST_SUB_BITS)) - 1;
}

static void hist_record(Load *l, usec_t v) {
        l->hist[hist_index(v)]++;
        if (l->hist_count == 0 || v < l->hist_min)
                l->hist_min = v;
        l->hist_max = MAX(l->hist_max, v);
        l->hist_count++;
        l->hist_sum += v;
}

/* per100k: the percentile in thousandths of a percent, 99900 is p99.9. */
static usec_t hist_percentile(const Load *l, uint64_t per100k) {
        uint64_t target, sum = 0;

        if (l->hist_count == 0)
                return 0;
        target = MAX((l->hist_count * per100k + 99999) / 100000, (uint64_t) 1);
        for (unsigned i = 0; i < HIST_BUCKETS; i++) {
                sum += l->hist[i];
                if (sum >= target)
                        return MAX(MIN(hist_bucket_top(i), l->hist_max), l->hist_min);
        }
        return l->hist_max;
}

static void connect_error_add(Load *l, int error) {
        for (unsigned i = 0; i < l->n_connect_errors; i++)
                if (l->connect_errors[i].error == error) {
                        l->connect_errors[i].count++;
                        return;
                }
        if (l->n_connect_errors < ERRNOS_MAX)
                l->connect_errors[l->n_connect_errors++] = (ErrnoCount) { error, 1 };
}

/* "key=123" as a whole word of the line. */
static bool reply_field(const char *line, size_t len, const char *key, uint64_t *ret) {
        size_t kl = strlen(key);

        for (size_t i = 0; i + kl < len; i++) {
                uint64_t v = 0;
                size_t j;

                if ((i > 0 && line[i - 1] != ' ') || memcmp(line + i, key, kl) != 0)
                        continue;
                for (j = i + kl; j < len && line[j] >= '0' && line[j] <= '9'; j++) {
                        if (v > (UINT64_MAX - 9) / 10)
                                return false;
                        v = v * 10 + (uint64_t) (line[j] - '0');
                }
                if (j == i + kl || (j < len && line[j] != ' '))
                        return false;
                *ret = v;
                return true;
        }
        return false;
}

static void record_reply(Load *l, const char *line, size_t len) {
        bool parsed = false;
        uint64_t v;

        l->replies++;
        if (reply_field(line, len, "generation=", &v)) {
                count_map_add(&l->generations, v);
                parsed = true;
        }
        if (reply_field(line, len, "pid=", &v)) {
                count_map_add(&l->pids, v);
                parsed = true;
        }
        if (reply_field(line, len, "worker=", &v)) {
                count_map_add(&l->workers, v);
                parsed = true;
        }
        if (!parsed)
                l->unparsed++;
}

/* The reply line (without "\n" or "\r\n") if the reply in buf is complete so far, NULL otherwise. With an
 * HTTP request the line is the first line of the body. */
static const char *reply_line(const char *buf, size_t n, size_t *ret_len) {
        const char *p = buf, *nl;

        if (arg_http) {
                const char *e = memmem(buf, n, "\r\n\r\n", 4);

                if (!e)
                        return NULL;
                p = e + 4;
        }
        nl = memchr(p, '\n', n - (size_t) (p - buf));
        if (!nl)
                return NULL;
        if (ret_len)
                *ret_len = (size_t) (nl - p) - (nl > p && nl[-1] == '\r');
        return p;
}

static bool http_status_ok(const char *buf, size_t n) {
        /* "HTTP/1.x 2xx" */
        return n >= 12 && memcmp(buf, "HTTP/1.", 7) == 0 && buf[8] == ' ' && buf[9] == '2';
}

static Outcome outcome_from_errno(int error) {
        switch (error) {
        case ECONNREFUSED:
                return OUTCOME_REFUSED;
        case ECONNRESET:
        case EPIPE:
                return OUTCOME_RESET;
        case ETIMEDOUT:
                return OUTCOME_TIMEOUT;
        default:
                return OUTCOME_OTHER;
        }
}

/* ---- connection slots ---- */

static int32_t slot_index(const Load *l, const Slot *s) {
        return (int32_t) (s - l->slots);
}

static void deadline_unlink(Load *l, Slot *s) {
        if (s->prev >= 0)
                l->slots[s->prev].next = s->next;
        else
                l->deadline_head = s->next;
        if (s->next >= 0)
                l->slots[s->next].prev = s->prev;
        else
                l->deadline_tail = s->prev;
        s->prev = s->next = -1;
}

static void deadline_append(Load *l, Slot *s, usec_t deadline) {
        int32_t i = slot_index(l, s);

        s->deadline = deadline;
        s->prev = l->deadline_tail;
        s->next = -1;
        if (l->deadline_tail >= 0)
                l->slots[l->deadline_tail].next = i;
        else
                l->deadline_head = i;
        l->deadline_tail = i;
}

static void slot_finish(Load *l, Slot *s, Outcome o, int error, bool connecting) {
        deadline_unlink(l, s);
        s->fd = safe_close(s->fd);
        s->state = SLOT_FREE;
        s->next = l->free_head;
        l->free_head = slot_index(l, s);
        l->n_inflight--;

        l->finished++;
        l->outcomes[o]++;
        if (o == OUTCOME_OTHER) {
                l->other_errno = error;
                if (connecting)
                        connect_error_add(l, error);
        }
}

static void slot_fail(Load *l, Slot *s, int error, bool connecting) {
        slot_finish(l, s, outcome_from_errno(error), error, connecting);
}

/* Writes (the rest of) the current request: 1 when it is out, 0 when the socket is full, or -errno. */
static int slot_send(Slot *s) {
        while (s->sent < arg_request_len) {
                ssize_t k = send(s->fd, arg_request + s->sent, arg_request_len - s->sent, MSG_NOSIGNAL);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 0;
                        return -errno;
                }
                s->sent += (size_t) k;
        }
        s->requests++;
        s->state = SLOT_READING;
        return 1;
}

/* Consumes the complete reply lines in the buffer. Returns 0 to go on reading, 1 when the next request
 * waits for EPOLLOUT, -1 when the attempt ended. */
static int slot_keepalive_lines(Load *l, Slot *s) {
        for (;;) {
                char *nl = memchr(s->buf, '\n', s->n);
                size_t used, len;
                usec_t now;
                int r;

                if (!nl)
                        return 0;

                now = now_usec(CLOCK_MONOTONIC);
                len = (size_t) (nl - s->buf);
                if (len > 0 && s->buf[len - 1] == '\r')
                        len--;
                record_reply(l, s->buf, len);
                hist_record(l, now - (s->replies == 0 ? s->started : s->request_at));
                s->replies++;
                used = (size_t) (nl - s->buf) + 1;
                memmove(s->buf, nl + 1, s->n - used);
                s->n -= used;

                if (s->requests >= arg_keepalive) {
                        /* All answered: say so, and close once the server has closed too. */
                        (void) shutdown(s->fd, SHUT_WR);
                        s->state = SLOT_DRAINING;
                        s->n = 0;
                        return 0;
                }

                s->state = SLOT_SENDING;
                s->sent = 0;
                s->request_at = now;
                deadline_unlink(l, s);
                deadline_append(l, s, usec_add(now, arg_timeout));
                r = slot_send(s);
                if (r < 0) {
                        slot_fail(l, s, -r, false);
                        return -1;
                }
                if (r == 0)
                        return 1;
        }
}

static void slot_eof(Load *l, Slot *s) {
        const char *line;
        size_t len;

        if (arg_keepalive > 0) {
                slot_finish(l, s, s->replies > 0 ? OUTCOME_OK : OUTCOME_EOF, 0, false);
                return;
        }

        /* An HTTP answer other than 2xx fails as such, whatever its body (an error page need not end in "\n"). */
        if (arg_http && s->n >= 12 && !http_status_ok(s->buf, s->n)) {
                slot_finish(l, s, OUTCOME_OTHER, EPROTO, false);
                return;
        }
        line = s->replied > 0 ? reply_line(s->buf, s->n, &len) : NULL;
        if (!line) {
                slot_finish(l, s, OUTCOME_EOF, 0, false);
                return;
        }
        record_reply(l, line, len);
        hist_record(l, s->replied - s->started);
        slot_finish(l, s, OUTCOME_OK, 0, false);
}

static void slot_read(Load *l, Slot *s) {
        for (;;) {
                ssize_t k;

                if (arg_keepalive > 0 && s->state == SLOT_READING && slot_keepalive_lines(l, s) != 0)
                        return;

                if (s->n >= sizeof(s->buf)) {
                        /* Full: one more byte means the reply is too long, EOF that it just fit. */
                        char c;

                        k = recv(s->fd, &c, 1, 0);
                        if (k > 0) {
                                slot_finish(l, s, OUTCOME_OTHER, EMSGSIZE, false);
                                return;
                        }
                } else
                        k = recv(s->fd, s->buf + s->n, sizeof(s->buf) - s->n, 0);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                s->readable = false;
                                return;
                        }
                        slot_fail(l, s, errno, false);
                        return;
                }
                if (k == 0) {
                        slot_eof(l, s);
                        return;
                }

                if (s->state == SLOT_DRAINING)
                        continue; /* whatever comes after the last reply we asked for is dropped */
                s->n += (size_t) k;
                if (arg_keepalive == 0 && s->replied == 0 && reply_line(s->buf, s->n, NULL))
                        s->replied = now_usec(CLOCK_MONOTONIC);
        }
}

static void slot_event(Load *l, Slot *s, uint32_t events) {
        int r;

        if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                s->readable = true;

        if (s->state == SLOT_CONNECTING) {
                if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
                        return;
                if (events & (EPOLLERR | EPOLLHUP)) {
                        int error = 0;
                        socklen_t len = sizeof(error);

                        if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
                                error = errno;
                        if (error != 0) {
                                slot_fail(l, s, error, true);
                                return;
                        }
                }
                s->state = SLOT_SENDING;
        }

        if (s->state == SLOT_SENDING) {
                r = slot_send(s);
                if (r < 0) {
                        slot_fail(l, s, -r, false);
                        return;
                }
                if (r == 0)
                        return; /* wait for EPOLLOUT */
        }

        if (s->readable || (arg_keepalive > 0 && s->n > 0))
                slot_read(l, s);
}

static void slot_start(Load *l, usec_t now) {
        int32_t i = l->free_head;
        Slot *s = &l->slots[i];
        struct epoll_event ev;
        bool connected;
        int r;

        l->free_head = s->next;
        s->seq++;
        s->state = SLOT_CONNECTING;
        s->readable = false;
        s->started = s->request_at = now;
        s->replied = 0;
        s->sent = 0;
        s->requests = s->replies = 0;
        s->n = 0;
        l->attempts++;
        l->n_inflight++;
        deadline_append(l, s, usec_add(now, arg_timeout));

        s->fd = socket(arg_target.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s->fd < 0) {
                slot_fail(l, s, errno, true);
                return;
        }
        if (arg_n_sources > 0) {
                const Target *src = &arg_sources[l->next_source++ % arg_n_sources];

                (void) setsockopt(s->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &(int) { 1 }, sizeof(int));
                if (bind(s->fd, &src->sa, src->size) < 0) {
                        slot_fail(l, s, errno, true);
                        return;
                }
        }
        if (connect(s->fd, &arg_target.sa, arg_target.size) < 0) {
                if (errno != EINPROGRESS) {
                        /* AF_UNIX says EAGAIN when the listener's backlog is full: that lands in "other". */
                        slot_fail(l, s, errno, true);
                        return;
                }
                connected = false;
        } else
                connected = true; /* AF_UNIX, typically */

        /* Edge-triggered: EPOLLOUT once connected, and no further wakeups for a writable socket. */
        ev = (struct epoll_event) {
                .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                .data.u64 = (uint64_t) s->seq << 32 | (uint32_t) i,
        };
        if (epoll_ctl(l->epoll_fd, EPOLL_CTL_ADD, s->fd, &ev) < 0) {
                slot_fail(l, s, errno, true);
                return;
        }

        if (connected) {
                s->state = SLOT_SENDING;
                r = slot_send(s);
                if (r < 0)
                        slot_fail(l, s, -r, false);
        }
}

/* ---- the loop ---- */

static void stop(Load *l, const char *reason) {
        if (l->stopping)
                return;
        l->stopping = true;
        l->stop_reason = reason;
}

static bool limits_reached(Load *l, usec_t now) {
        if (arg_connections > 0 && l->attempts >= arg_connections)
                stop(l, "connections");
        else if (arg_duration != USEC_INFINITY && now >= usec_add(l->start, arg_duration))
                stop(l, "duration");
        return l->stopping;
}

static usec_t next_launch_due(const Load *l) {
        return l->start + l->attempts * USEC_PER_SEC / arg_rate;
}

static void launch(Load *l) {
        /* Attempts that fail at once free their slot at once: bound the work before looking at epoll again. */
        unsigned budget = l->n_slots;

        l->launch_pending = false;
        while (!l->stopping && l->free_head >= 0) {
                usec_t now = now_usec(CLOCK_MONOTONIC);

                if (limits_reached(l, now))
                        break;
                if (arg_rate > 0 && next_launch_due(l) > now)
                        break;
                if (budget-- == 0) {
                        l->launch_pending = true;
                        break;
                }
                slot_start(l, now);
        }
}

static void abort_inflight(Load *l) {
        while (l->deadline_head >= 0)
                slot_finish(l, &l->slots[l->deadline_head], OUTCOME_TIMEOUT, ETIMEDOUT, false);
}

static void process_timeouts(Load *l, usec_t now) {
        while (l->deadline_head >= 0 && l->slots[l->deadline_head].deadline <= now)
                slot_finish(l, &l->slots[l->deadline_head], OUTCOME_TIMEOUT, ETIMEDOUT, false);
}

static void process_signals(Load *l, int fd) {
        struct signalfd_siginfo si;

        while (read(fd, &si, sizeof(si)) == (ssize_t) sizeof(si)) {
                /* The first signal stops gracefully; the second one gives up on what is still in flight. */
                if (++l->n_signals == 1 && !l->stopping)
                        stop(l, "signal");
                else if (l->n_signals >= 2)
                        abort_inflight(l);
        }
}

static int epoll_timeout_ms(const Load *l, usec_t now) {
        usec_t wake = USEC_INFINITY;

        if (l->launch_pending)
                return 0;
        if (l->deadline_head >= 0)
                wake = l->slots[l->deadline_head].deadline;
        if (!l->stopping) {
                if (arg_duration != USEC_INFINITY)
                        wake = MIN(wake, usec_add(l->start, arg_duration));
                if (arg_rate > 0 && l->free_head >= 0)
                        wake = MIN(wake, next_launch_due(l));
                if (arg_stop_file)
                        wake = MIN(wake, l->next_stop_file_check);
        }
        if (arg_interval > 0)
                wake = MIN(wake, l->next_interval);

        if (wake == USEC_INFINITY)
                return -1;
        if (wake <= now)
                return 0;
        return (int) MIN((wake - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC, (usec_t) INT_MAX);
}

static void print_interval(Load *l, usec_t now) {
        uint64_t ok = l->outcomes[OUTCOME_OK], failed = l->finished - ok;
        uint64_t d_ok = ok - l->last_interval_ok, d_failed = failed - l->last_interval_failed;
        double t = (double) (now - l->start) / USEC_PER_SEC;
        double span = (double) MAX(now - l->last_interval, (usec_t) 1) / USEC_PER_SEC;

        if (arg_json) {
                _cleanup_json_ json_object *o = json_object_new_object();
                json_object_object_add(o, "t", json_double(t, 3));
                json_object_object_add(o, "ok", json_object_new_uint64(d_ok));
                json_object_object_add(o, "failed", json_object_new_uint64(d_failed));
                json_object_object_add(o, "rate", json_double((double) d_ok / span, 1));
                print_json(stderr, o);
        } else
                fprintf(stderr, "t=%.3f ok=%" PRIu64 " failed=%" PRIu64 " rate=%.0f/s\n", t, d_ok, d_failed,
                        (double) d_ok / span);

        l->last_interval = now;
        l->last_interval_ok = ok;
        l->last_interval_failed = failed;
        l->next_interval = usec_add(l->next_interval, arg_interval);
        if (l->next_interval <= now)
                l->next_interval = usec_add(now, arg_interval); /* we fell behind: skip, do not burst */
}

/* ---- the report ---- */

static int add_map_json(json_object *o, const char *name, const CountMap *m) {
        _cleanup_free_ KeyCount *v = NULL;
        json_object *counts;
        int n = count_map_sorted(m, &v);

        if (n < 0)
                return n;
        counts = json_object_new_object();
        for (int i = 0; i < n; i++) {
                char key[24];
                snprintf(key, sizeof(key), "%" PRIu64, v[i].key);
                json_object_object_add(counts, key, json_object_new_uint64(v[i].count));
        }
        json_object_object_add(o, name, counts);
        return 0;
}

static int print_map_human(FILE *f, const char *name, const CountMap *m) {
        _cleanup_free_ KeyCount *v = NULL;
        int n = count_map_sorted(m, &v);

        if (n < 0)
                return n;
        if (n == 0)
                return 0;
        fprintf(f, "%-13s", name);
        for (int i = 0; i < n && (unsigned) i < HUMAN_KEYS_MAX; i++)
                fprintf(f, "%s%" PRIu64 ": %" PRIu64, i > 0 ? ", " : "", v[i].key, v[i].count);
        if ((unsigned) n > HUMAN_KEYS_MAX)
                fprintf(f, ", ... (%d in all)", n);
        if (m->dropped > 0)
                fprintf(f, " (%" PRIu64 " replies beyond %u keys not counted)", m->dropped, KEYS_MAX);
        fputc('\n', f);
        return 0;
}

static void target_kind(char *buf, size_t size) {
        switch (arg_target.sa.sa_family) {
        case AF_UNIX:
                snprintf(buf, size, "unix");
                break;
        case AF_INET6:
                snprintf(buf, size, "tcp6");
                break;
        default:
                snprintf(buf, size, "tcp");
        }
}

static int print_report(const Load *l) {
        static const struct {
                const char *key, *label;
                uint64_t per100k;
        } percentiles[] = {
                { "p50", "p50", 50000 },
                { "p90", "p90", 90000 },
                { "p99", "p99", 99000 },
                { "p999", "p99.9", 99900 },
        };
        double duration = (double) (l->end - l->start) / USEC_PER_SEC;
        uint64_t ok = l->outcomes[OUTCOME_OK], failed = l->attempts - ok;
        double rate = duration > 0 ? (double) ok / duration : 0.0;
        char kind[8], ebuf[24];
        FILE *f = stdout;
        int r;

        target_kind(kind, sizeof(kind));

        if (arg_json) {
                _cleanup_json_ json_object *o = json_object_new_object();
                json_object *errors = json_object_new_object(), *latency = json_object_new_object();

                json_object_object_add(o, "attempts", json_object_new_uint64(l->attempts));
                json_object_object_add(o, "ok", json_object_new_uint64(ok));
                json_object_object_add(o, "failed", json_object_new_uint64(failed));
                for (Outcome k = OUTCOME_REFUSED; k < _OUTCOME_MAX; k++)
                        json_object_object_add(o, outcome_names[k], json_object_new_uint64(l->outcomes[k]));
                json_object_object_add(o, "other_errno", l->other_errno > 0 ?
                                       json_object_new_string(errno_name(l->other_errno, ebuf)) : NULL);
                for (unsigned i = 0; i < l->n_connect_errors; i++)
                        json_object_object_add(errors, errno_name(l->connect_errors[i].error, ebuf),
                                               json_object_new_uint64(l->connect_errors[i].count));
                json_object_object_add(o, "connect_errors", errors);
                json_object_object_add(o, "duration_s", json_double(duration, 3));
                json_object_object_add(o, "rate_per_s", json_double(rate, 1));
                for (size_t i = 0; i < ELEMENTSOF(percentiles); i++)
                        json_object_object_add(latency, percentiles[i].key,
                                               json_object_new_uint64(hist_percentile(l, percentiles[i].per100k)));
                json_object_object_add(latency, "max", json_object_new_uint64(l->hist_max));
                json_object_object_add(latency, "min", json_object_new_uint64(l->hist_min));
                json_object_object_add(latency, "mean", json_double(l->hist_count > 0 ?
                                                                    (double) l->hist_sum / (double) l->hist_count : 0.0,
                                                                    1));
                json_object_object_add(o, "latency_us", latency);
                r = add_map_json(o, "generations", &l->generations);
                if (r < 0)
                        return r;
                r = add_map_json(o, "pids", &l->pids);
                if (r < 0)
                        return r;
                json_object_object_add(o, "balance", json_double(count_map_balance(&l->pids), 3));
                r = add_map_json(o, "workers", &l->workers);
                if (r < 0)
                        return r;
                json_object_object_add(o, "replies", json_object_new_uint64(l->replies));
                json_object_object_add(o, "unparsed", json_object_new_uint64(l->unparsed));
                json_object_object_add(o, "keys_dropped", json_object_new_uint64(l->generations.dropped +
                                                                                  l->pids.dropped + l->workers.dropped));
                json_object_object_add(o, "target", json_object_new_string(arg_connect));
                json_object_object_add(o, "transport", json_object_new_string(kind));
                json_object_object_add(o, "concurrency", json_object_new_uint64(l->n_slots));
                json_object_object_add(o, "keepalive", json_object_new_uint64(arg_keepalive));
                json_object_object_add(o, "stop_reason", json_object_new_string(l->stop_reason ?: "none"));
                print_json(f, o);
        } else {
                fprintf(f, "target       %s (%s), concurrency %u%s, stopped by %s after %.3fs\n", arg_connect, kind,
                        l->n_slots, arg_keepalive > 0 ? ", keep-alive" : "", l->stop_reason ?: "none", duration);
                fprintf(f, "attempts     %" PRIu64 "\n", l->attempts);
                fprintf(f, "ok           %" PRIu64 " (%.1f/s)\n", ok, rate);
                fprintf(f, "failed       %" PRIu64, failed);
                for (Outcome o = OUTCOME_REFUSED; o < _OUTCOME_MAX; o++)
                        fprintf(f, "%s%s %" PRIu64, o == OUTCOME_REFUSED ? " (" : ", ", outcome_names[o],
                                l->outcomes[o]);
                fputs(")\n", f);
                if (l->other_errno > 0) {
                        fprintf(f, "other errno  last %s", errno_name(l->other_errno, ebuf));
                        for (unsigned i = 0; i < l->n_connect_errors; i++)
                                fprintf(f, "%s%s %" PRIu64, i == 0 ? "; at connect: " : ", ",
                                        errno_name(l->connect_errors[i].error, ebuf), l->connect_errors[i].count);
                        fputc('\n', f);
                }
                if (arg_keepalive > 0)
                        fprintf(f, "replies      %" PRIu64 "\n", l->replies);
                fprintf(f, "latency us   min %" PRIu64, l->hist_min);
                for (size_t i = 0; i < ELEMENTSOF(percentiles); i++)
                        fprintf(f, ", %s %" PRIu64, percentiles[i].label, hist_percentile(l, percentiles[i].per100k));
                fprintf(f, ", max %" PRIu64 "\n", l->hist_max);
                r = print_map_human(f, "generations", &l->generations);
                if (r < 0)
                        return r;
                r = print_map_human(f, "pids", &l->pids);
                if (r < 0)
                        return r;
                if (l->pids.n > 0)
                        fprintf(f, "balance      %.3f (max/min replies per pid)\n", count_map_balance(&l->pids));
                r = print_map_human(f, "workers", &l->workers);
                if (r < 0)
                        return r;
                if (l->unparsed > 0)
                        fprintf(f, "unparsed     %" PRIu64 " replies without generation=, pid= or worker=\n",
                                l->unparsed);
        }
        fflush(f);
        return ferror(f) ? -EIO : 0;
}

static int run(void) {
        static Load load;
        Load *l = &load;
        _cleanup_free_ Slot *slots = NULL;
        _cleanup_close_ int epoll_fd = -EBADF, signal_fd = -EBADF;
        struct epoll_event sev = { .events = EPOLLIN, .data.u64 = TAG_SIGNAL };
        unsigned n_slots = arg_concurrency;
        rlim_t nofile = RLIM_INFINITY;
        sigset_t mask;
        int r;

        r = raise_nofile(&nofile);
        if (r < 0)
                log_warning_errno(r, "Cannot raise RLIMIT_NOFILE, continuing: %m");
        else if (nofile != RLIM_INFINITY && (rlim_t) n_slots + FDS_RESERVED > nofile) {
                if (nofile <= FDS_RESERVED)
                        return log_error_errno(-EMFILE, "RLIMIT_NOFILE is %llu, too low.",
                                               (unsigned long long) nofile);
                n_slots = (unsigned) (nofile - FDS_RESERVED);
                log_warning("RLIMIT_NOFILE is %llu: concurrency lowered to %u.", (unsigned long long) nofile,
                            n_slots);
        }

        slots = calloc(n_slots, sizeof(Slot));
        if (!slots)
                return log_oom();
        for (unsigned i = 0; i < n_slots; i++) {
                slots[i].fd = -EBADF;
                slots[i].prev = -1;
                slots[i].next = i + 1 < n_slots ? (int32_t) (i + 1) : -1;
        }
        l->slots = slots;
        l->n_slots = n_slots;
        l->free_head = 0;
        l->deadline_head = l->deadline_tail = -1;

        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(errno, "sigprocmask() failed: %m");
        signal(SIGPIPE, SIG_IGN);
        signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (signal_fd < 0)
                return log_error_errno(errno, "signalfd() failed: %m");
        epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (epoll_fd < 0)
                return log_error_errno(errno, "epoll_create1() failed: %m");
        if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, signal_fd, &sev) < 0)
                return log_error_errno(errno, "epoll_ctl() failed: %m");
        l->epoll_fd = epoll_fd;

        l->start = now_usec(CLOCK_MONOTONIC);
        l->last_interval = l->start;
        l->next_interval = usec_add(l->start, arg_interval);
        l->next_stop_file_check = l->start;

        for (;;) {
                struct epoll_event events[EVENTS_MAX];
                usec_t now = now_usec(CLOCK_MONOTONIC);
                int n;

                if (!l->stopping && arg_stop_file && now >= l->next_stop_file_check) {
                        if (access(arg_stop_file, F_OK) >= 0)
                                stop(l, "stop-file");
                        l->next_stop_file_check = usec_add(now, STOP_FILE_CHECK_USEC);
                }
                launch(l);
                if (l->stopping && l->n_inflight == 0)
                        break;

                n = epoll_wait(epoll_fd, events, EVENTS_MAX, epoll_timeout_ms(l, now_usec(CLOCK_MONOTONIC)));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return log_error_errno(errno, "epoll_wait() failed: %m");
                }
                for (int i = 0; i < n; i++) {
                        uint64_t tag = events[i].data.u64;
                        uint32_t idx = (uint32_t) tag;
                        Slot *s;

                        if (tag == TAG_SIGNAL) {
                                process_signals(l, signal_fd);
                                continue;
                        }
                        if (idx >= n_slots)
                                continue;
                        s = &slots[idx];
                        if (s->state == SLOT_FREE || s->seq != (uint32_t) (tag >> 32))
                                continue; /* the attempt this was for is over */
                        slot_event(l, s, events[i].events);
                }

                now = now_usec(CLOCK_MONOTONIC);
                process_timeouts(l, now);
                if (arg_interval > 0 && now >= l->next_interval)
                        print_interval(l, now);
        }
        l->end = now_usec(CLOCK_MONOTONIC);

        r = print_report(l);
        if (r < 0)
                return log_error_errno(r, "Cannot write the report: %m");
        return l->attempts == l->outcomes[OUTCOME_OK] ? 0 : 1;
}

/* ---- command line ---- */

static void help(void) {
        printf("rpsup-load --connect ADDR [OPTIONS]\n\n"
               "Open stream connections against ADDR as fast as possible (connect, send one request, read the\n"
               "reply until EOF, close) and report how each attempt ended, replies per generation and pid,\n"
               "and latency.\n\n"
               "Options:\n"
               "     --connect ADDR      HOST:PORT, [IPV6]:PORT, /unix/path or @abstract (required)\n"
               "     --concurrency N     Connections in flight at once (default: 32, at most %u)\n"
               "     --duration SEC      Stop starting connections after SEC seconds (fractions and\n"
               "                         \"500ms\", \"1min\" work; default: 5 unless --connections is given)\n"
               "     --connections N     Stop after N attempts (with --duration: whichever comes first)\n"
               "     --rate N            Start at most N connections per second (default: 0, no limit)\n"
               "     --timeout MS        Give up on an attempt without a complete reply after MS\n"
               "                         milliseconds (default: 5000)\n"
               "     --keepalive N       Send N requests per connection, one line each, awaiting a reply\n"
               "                         line for each; EOF after at least one reply ends it normally\n"
               "     --request STR       The request, C escapes allowed (default: \"hello\\n\"; with\n"
               "                         --keepalive: \"ping\\n\"). \"GET ...\" expects an HTTP/1.0 reply\n"
               "                         with a 2xx status: any other fails (counted as \"other\")\n"
               "     --stop-file PATH    Stop gracefully once PATH exists\n"
               "     --interval MS       Every MS milliseconds print that interval's ok and failed counts\n"
               "                         and ok rate to stderr (JSON lines with --json)\n"
               "     --source ADDR,...   Bind each attempt to the next of these local IP addresses in\n"
               "                         turn (the port is still chosen at connect())\n"
               "     --json              Print the report as one JSON object\n"
               "  -h --help              Show this help\n\n"
               "SIGINT/SIGTERM: stop starting connections and let those in flight finish (up to --timeout);\n"
               "a second signal counts those still in flight as timeouts and ends at once.\n\n"
               "Exit status: 0 every attempt was ok, 1 some failed (or a runtime error), 2 usage.\n",
               CONCURRENCY_MAX);
}

static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_CONNECT = 0x100,
                ARG_CONCURRENCY,
                ARG_DURATION,
                ARG_CONNECTIONS,
                ARG_RATE,
                ARG_TIMEOUT,
                ARG_KEEPALIVE,
                ARG_REQUEST,
                ARG_STOP_FILE,
                ARG_JSON,
                ARG_INTERVAL,
                ARG_SOURCE,
        };
        static const struct option options[] = {
                { "connect", required_argument, NULL, ARG_CONNECT },
                { "concurrency", required_argument, NULL, ARG_CONCURRENCY },
                { "duration", required_argument, NULL, ARG_DURATION },
                { "connections", required_argument, NULL, ARG_CONNECTIONS },
                { "rate", required_argument, NULL, ARG_RATE },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                { "keepalive", required_argument, NULL, ARG_KEEPALIVE },
                { "request", required_argument, NULL, ARG_REQUEST },
                { "stop-file", required_argument, NULL, ARG_STOP_FILE },
                { "json", no_argument, NULL, ARG_JSON },
                { "interval", required_argument, NULL, ARG_INTERVAL },
                { "source", required_argument, NULL, ARG_SOURCE },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        bool duration_set = false;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case ARG_CONNECT:
                        r = parse_target(optarg, &arg_target);
                        if (r == -EADDRNOTAVAIL)
                                return log_error_errno(r, "Cannot resolve the host in --connect=%s.", optarg);
                        if (r < 0)
                                return log_error_errno(r, "Invalid --connect=%s: expected HOST:PORT, [IPV6]:PORT, "
                                                       "/path or @abstract.", optarg);
                        arg_connect = optarg;
                        break;
                case ARG_CONCURRENCY:
                        r = parse_uint(optarg, &arg_concurrency);
                        if (r < 0 || arg_concurrency == 0 || arg_concurrency > CONCURRENCY_MAX)
                                return log_error_errno(-EINVAL, "Invalid --concurrency=%s: expected 1..%u.", optarg,
                                                       CONCURRENCY_MAX);
                        break;
                case ARG_DURATION:
                        r = parse_timespan(optarg, USEC_PER_SEC, &arg_duration);
                        if (r < 0 || arg_duration == 0)
                                return log_error_errno(-EINVAL, "Invalid --duration=%s.", optarg);
                        duration_set = true;
                        break;
                case ARG_CONNECTIONS:
                        r = parse_uint64(optarg, &arg_connections);
                        if (r < 0 || arg_connections == 0)
                                return log_error_errno(-EINVAL, "Invalid --connections=%s.", optarg);
                        break;
                case ARG_RATE:
                        r = parse_uint(optarg, &arg_rate);
                        if (r < 0)
                                return log_error_errno(r, "Invalid --rate=%s.", optarg);
                        break;
                case ARG_TIMEOUT:
                        r = parse_timespan(optarg, USEC_PER_MSEC, &arg_timeout);
                        if (r < 0 || arg_timeout == 0 || arg_timeout == USEC_INFINITY)
                                return log_error_errno(-EINVAL, "Invalid --timeout=%s.", optarg);
                        break;
                case ARG_KEEPALIVE:
                        r = parse_uint(optarg, &arg_keepalive);
                        if (r < 0)
                                return log_error_errno(r, "Invalid --keepalive=%s.", optarg);
                        break;
                case ARG_REQUEST:
                        arg_request = mfree(arg_request);
                        r = unescape(optarg, &arg_request, &arg_request_len);
                        if (r < 0)
                                return log_error_errno(r, "Invalid --request=%s: bad escape.", optarg);
                        break;
                case ARG_STOP_FILE:
                        arg_stop_file = optarg;
                        break;
                case ARG_JSON:
                        arg_json = true;
                        break;
                case ARG_INTERVAL:
                        r = parse_timespan(optarg, USEC_PER_MSEC, &arg_interval);
                        if (r < 0 || arg_interval == USEC_INFINITY)
                                return log_error_errno(-EINVAL, "Invalid --interval=%s.", optarg);
                        break;
                case ARG_SOURCE:
                        r = parse_sources(optarg);
                        if (r < 0)
                                return log_error_errno(r, "Invalid --source=%s: expected numeric IP addresses, "
                                                       "comma-separated, at most %u.", optarg, SOURCES_MAX);
                        break;
                case 'h':
                        help();
                        return 0;
                default:
                        return -EINVAL;
                }

        if (optind < argc)
                return log_error_errno(-EINVAL, "Unexpected argument \"%s\". See --help.", argv[optind]);
        if (!arg_connect)
                return log_error_errno(-EINVAL, "--connect is required. See --help.");
        if (!duration_set && arg_connections == 0)
                arg_duration = 5 * USEC_PER_SEC;
        for (unsigned i = 0; i < arg_n_sources; i++)
                if (arg_sources[i].sa.sa_family != arg_target.sa.sa_family)
                        return log_error_errno(-EINVAL, "--source addresses must be of the family of --connect.");

        if (!arg_request) {
                arg_request = strdup(arg_keepalive > 0 ? "ping\n" : "hello\n");
                if (!arg_request)
                        return log_oom();
                arg_request_len = strlen(arg_request);
        }
        arg_http = arg_request_len >= 4 && memcmp(arg_request, "GET ", 4) == 0;
        if (arg_http && arg_keepalive > 0)
                return log_error_errno(-EINVAL, "--keepalive does not go with an HTTP request.");
        if (arg_keepalive > 0 && (arg_request_len == 0 || arg_request[arg_request_len - 1] != '\n'))
                return log_error_errno(-EINVAL, "With --keepalive each request must be a line ending in \\n.");
        return 1;
}

int main(int argc, char *argv[]) {
        int r;

        log_setup("rpsup-load");
        r = parse_argv(argc, argv);
        if (r <= 0) {
                free(arg_request);
                return r < 0 ? 2 : 0;
        }
        r = run();
        free(arg_request);
        return r < 0 ? 1 : r;
}
