/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* A worker's sd_notify() datagram, as rpsupd's notify socket receives it. Input: the datagram.
 * The parser gets a buffer of exactly the datagram plus the one byte rpsupd reserves for the NUL, so a
 * read or write past it is an ASan report. The STATUS= it returns must be fit for status replies (valid
 * UTF-8, no control characters, at most STATUS_TEXT_MAX bytes) and, when the worker's text already was,
 * be that text unchanged. The fd store's fields: FDNAME= is reported only if it is a valid name (and then as sent,
 * the last one), never longer than NOTIFY_FDNAME_MAX; the flags only if sent; and a name that is valid is
 * also one the workers' fd store can encode or says it cannot (-ENAMETOOLONG), and parse back. */

#include "fuzz.h"
#include "worker-fdstore.h"
#include "worker-notify.h"
#include "rpsup-limits.h"
#include "utf8.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        fuzz_setup_logging();
        return 0;
}

/* The value of the last "STATUS=" line of the datagram (the one that counts), or NULL. */
static const char *last_status(const char *text, size_t *ret_n) {
        const char *found = NULL;

        for (const char *l = text; l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
                if (strncmp(l, "STATUS=", 7) == 0)
                        found = l + 7;
        if (found)
                *ret_n = strcspn(found, "\n");
        return found;
}

/* The value of the last "FDNAME=" line (the one that counts), or NULL; its length in *ret_n. */
static const char *last_fdname(const char *text, size_t *ret_n) {
        const char *found = NULL;

        for (const char *l = text; l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
                if (strncmp(l, "FDNAME=", 7) == 0)
                        found = l + 7;
        if (found)
                *ret_n = strcspn(found, "\n");
        return found;
}

static void check_fdname(const char *text, const NotifyMessage *m) {
        _cleanup_free_ char *store_name = NULL;
        const char *sent, *name;
        size_t sent_n = 0;
        unsigned index;
        uint64_t seq;
        bool poll;
        int r;

        sent = last_fdname(text, &sent_n);
        fuzz_check(!m->fdname || sent, "FDNAME= reported without being sent");
        fuzz_check(!(m->fdname && m->fdname_invalid), "FDNAME= both valid and invalid");
        fuzz_check(!sent || !!m->fdname != m->fdname_invalid, "FDNAME= sent, neither kept nor refused");
        if (!m->fdname)
                return;
        fuzz_check(strlen(m->fdname) == sent_n && memcmp(m->fdname, sent, sent_n) == 0, "FDNAME=%.*s became \"%s\"",
                   (int) sent_n, sent, m->fdname);
        fuzz_check(sent_n >= 1 && sent_n <= NOTIFY_FDNAME_MAX && notify_fdname_is_valid(m->fdname),
                   "FDNAME= \"%s\" kept, but is no valid name", m->fdname);
        for (size_t i = 0; i < sent_n; i++)
                fuzz_check(sent[i] >= ' ' && sent[i] <= '~' && sent[i] != ':', "FDNAME= with byte 0x%02x kept",
                           (unsigned char) sent[i]);
        r = worker_fdstore_name(7, 1234, true, m->fdname, &store_name);
        fuzz_check(r == 0 || r == -ENAMETOOLONG, "the name \"%s\" cannot be encoded: %d", m->fdname, r);
        if (r < 0)
                return;
        fuzz_check(strlen(store_name) <= NOTIFY_FDNAME_MAX && notify_fdname_is_valid(store_name),
                   "encoded as \"%s\", no valid name in systemd's fd store", store_name);
        r = worker_fdstore_name_parse(store_name, &index, &seq, &poll, &name);
        fuzz_check(r == 0 && index == 7 && seq == 1234 && poll && streq(name, m->fdname),
                   "\"%s\" does not parse back", store_name);
}

static bool text_is_plain(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) s[i] < ' ' || s[i] == 0x7f)
                        return false;
        /* C1 controls (U+0080..U+009F) are written c2 80..c2 9f. */
        for (size_t i = 0; i + 1 < n; i++)
                if ((unsigned char) s[i] == 0xc2 && (unsigned char) s[i + 1] >= 0x80 &&
                    (unsigned char) s[i + 1] <= 0x9f)
                        return false;
        return utf8_is_valid_n(s, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *buf = NULL, *text = NULL;
        const char *sent;
        size_t sent_n = 0;
        NotifyMessage m;
        int r;

        /* rpsupd reads at most this much of a datagram. */
        if (size > NOTIFY_MESSAGE_MAX)
                return -1;
        buf = malloc(size + 1);
        if (!buf)
                abort();
        memcpy(buf, data, size);

        r = notify_parse(buf, size, &m);
        if (r < 0) {
                fuzz_check(r == -EBADMSG && memchr(data, 0, size), "unexpected error %d", r);
                return 0;
        }
        fuzz_check(!memchr(data, 0, size), "a datagram with a NUL byte was accepted");

        text = fuzz_string(data, size);
        sent = last_status(text, &sent_n);
        fuzz_check(!!m.status == !!sent, "STATUS= %s", sent ? "sent but not reported" : "reported but not sent");
        if (m.status) {
                size_t n = strlen(m.status);
                fuzz_check(n <= STATUS_TEXT_MAX, "STATUS= of %zu bytes kept", n);
                fuzz_check(text_is_plain(m.status, n), "STATUS= \"%s\" is not plain UTF-8 text", m.status);
                if (text_is_plain(sent, sent_n) && sent_n <= STATUS_TEXT_MAX)
                        fuzz_check(n == sent_n && memcmp(m.status, sent, n) == 0,
                                   "STATUS=%.*s became \"%s\"", (int) sent_n, sent, m.status);
                else
                        fuzz_check(m.status_changed != 0, "STATUS= was changed without saying so");
        }
        fuzz_check(!m.ready || strstr(text, "READY=1"), "READY=1 reported without being sent");
        fuzz_check(!m.stopping || strstr(text, "STOPPING=1"), "STOPPING=1 reported without being sent");
        fuzz_check(!m.watchdog || strstr(text, "WATCHDOG=1"), "WATCHDOG=1 reported without being sent");
        fuzz_check(!m.fdstore || strstr(text, "FDSTORE=1"), "FDSTORE=1 reported without being sent");
        fuzz_check(!m.fdstore_remove || strstr(text, "FDSTOREREMOVE=1"), "FDSTOREREMOVE=1 reported without being sent");
        fuzz_check(!m.fdpoll_off || strstr(text, "FDPOLL=0"), "FDPOLL=0 reported without being sent");
        fuzz_check(!m.fds && m.n_fds == 0, "the parser set the fds");
        check_fdname(text, &m);
        return 0;
}
