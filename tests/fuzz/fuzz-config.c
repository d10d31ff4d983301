/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The config parser, in memory. Input: the config file. The parser gets exactly the input's bytes (no NUL
 * after them), so a read past the end is an ASan report.
 * A refused config must come with a message naming the file, fit for a D-Bus error (valid UTF-8). An
 * accepted one must hold what the rest of rpsupd relies on without checking again: a command, an
 * executable path, addresses that format and parse back and that can all be bound, bounds respected,
 * valid ids and signal, text fit for status replies. */

#include <signal.h>

#include "config.h"
#include "config-exec.h"
#include "fuzz.h"
#include "rpsup-limits.h"
#include "strv.h"
#include "user-util.h"
#include "utf8.h"

#define PATH "/etc/rpsup/web.conf"
#define SERVICE "web"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        fuzz_setup_logging();
        return 0;
}

static void check_accepted(const Config *c) {
        _cleanup_strv_free_ char **words = NULL;
        _cleanup_free_ char *error = NULL;

        fuzz_check(c->n_ref == 1, "n_ref %u", c->n_ref);
        fuzz_check(c->exec_start && c->exec_words && c->exec_words[0], "no command");
        fuzz_check(exec_line_split(c->exec_start, SERVICE, &words, &error) >= 0, "ExecStart=%s splits no more: %s",
                   c->exec_start, error ?: "");
        fuzz_check(strv_length(words) == strv_length(c->exec_words), "ExecStart=%s splits differently",
                   c->exec_start);
        fuzz_check(c->exec_path && c->exec_path[0] == '/', "exec path \"%s\"", c->exec_path ?: "(null)");
        fuzz_check(utf8_is_valid(c->exec_path), "exec path \"%s\" is not UTF-8", c->exec_path);

        fuzz_check(c->workers >= 1 && c->workers <= WORKERS_MAX, "Workers=%u", c->workers);
        fuzz_check(c->n_listen >= 1 && c->n_listen <= LISTEN_MAX, "%zu addresses", c->n_listen);
        fuzz_check(c->fdname && fdname_is_valid(c->fdname), "FileDescriptorName=%s", c->fdname ?: "(null)");
        for (size_t i = 0; i < c->n_listen; i++) {
                const ListenSpec *l = &c->listen[i];
                char text[SOCKET_ADDRESS_STRING_MAX];
                SocketAddress again;

                fuzz_check(l->address.type == SOCK_STREAM || l->address.type == SOCK_DGRAM, "socket type %d",
                           l->address.type);
                socket_address_format(&l->address, text, sizeof(text));
                fuzz_check(utf8_is_valid(text), "address \"%s\" is not UTF-8", text);
                fuzz_check(socket_address_parse(text, l->address.type, &again) >= 0 &&
                           socket_address_equal(&again, &l->address),
                           "address \"%s\" (written \"%s\") does not parse back", text, l->text);
                for (size_t j = 0; j < i; j++)
                        fuzz_check(!socket_address_equal(&c->listen[j].address, &l->address),
                                   "\"%s\" and \"%s\" are the same address", c->listen[j].text, l->text);
        }

        fuzz_check(c->kill_signal > 0 && c->kill_signal != SIGKILL && c->kill_signal != SIGSTOP &&
                   (c->kill_signal <= SIGSYS || (c->kill_signal >= SIGRTMIN && c->kill_signal <= SIGRTMAX)),
                   "KillSignal=%d", c->kill_signal);
        fuzz_check(uid_is_valid(c->uid), "uid %u", (unsigned) c->uid);
        fuzz_check(gid_is_valid(c->gid), "gid %u", (unsigned) c->gid);
        fuzz_check(c->ready_timeout > 0 && c->ready_timeout <= CONFIG_TIME_MAX_USEC, "ReadyTimeoutSec= %" PRIu64,
                   c->ready_timeout);
        /* 0: SIGKILL at once, or no watchdog; USEC_INFINITY: auto. */
        fuzz_check(c->stop_timeout <= CONFIG_TIME_MAX_USEC, "StopTimeoutSec= %" PRIu64, c->stop_timeout);
        fuzz_check(c->watchdog <= CONFIG_TIME_MAX_USEC, "WatchdogSec= %" PRIu64, c->watchdog);
        fuzz_check(c->stall <= CONFIG_TIME_MAX_USEC || c->stall == USEC_INFINITY, "StallSec= %" PRIu64, c->stall);
        fuzz_check(c->drain <= CONFIG_TIME_MAX_USEC || c->drain == USEC_INFINITY, "DrainSec= %" PRIu64, c->drain);
        fuzz_check(strv_length(c->environment) <= ENVIRONMENT_MAX, "%zu Environment= assignments",
                   strv_length(c->environment));
        STRV_FOREACH(e, c->environment)
                fuzz_check(strchr(*e, '='), "environment entry \"%s\" without '='", *e);

        /* Health gates: what the probe runner sends and runs as it is. */
        fuzz_check(probe_kind_to_string(c->probe), "ReadyProbe= kind %d", (int) c->probe);
        fuzz_check((c->probe == PROBE_NONE) == !c->probe_text, "ReadyProbe= kind %d, text %s", (int) c->probe,
                   c->probe_text ?: "(null)");
        fuzz_check((c->probe == PROBE_HTTP) == !!c->probe_path, "ReadyProbe= kind %d with a path", (int) c->probe);
        if (c->probe_path) {
                fuzz_check(c->probe_path[0] == '/' && strlen(c->probe_path) <= PROBE_PATH_MAX, "http path \"%s\"",
                           c->probe_path);
                for (const char *p = c->probe_path; *p; p++)
                        fuzz_check(*p > ' ' && *p <= '~', "http path \"%s\" has byte 0x%02x", c->probe_path,
                                   (unsigned char) *p);
        }
        fuzz_check((c->probe == PROBE_EXEC) == !!c->probe_argv && !!c->probe_argv == !!c->probe_exec_path,
                   "ReadyProbe= kind %d with a command", (int) c->probe);
        if (c->probe_argv)
                fuzz_check(c->probe_argv[0] && c->probe_exec_path[0] == '/' && utf8_is_valid(c->probe_exec_path),
                           "probe command \"%s\"", c->probe_exec_path);
        if (c->probe == PROBE_TCP || c->probe == PROBE_HTTP) {
                bool stream = false;
                for (size_t i = 0; i < c->n_listen; i++)
                        stream = stream || c->listen[i].address.type == SOCK_STREAM;
                fuzz_check(stream, "a %s probe without a ListenStream=", probe_kind_to_string(c->probe));
        }
        fuzz_check(c->probe_timeout > 0 && c->probe_timeout <= CONFIG_TIME_MAX_USEC, "ReadyProbeTimeoutSec= %" PRIu64,
                   c->probe_timeout);
        fuzz_check(c->probe_interval >= PROBE_INTERVAL_MIN_USEC && c->probe_interval <= CONFIG_TIME_MAX_USEC,
                   "ReadyProbeIntervalSec= %" PRIu64, c->probe_interval);
        fuzz_check(c->probe_passes >= 1 && c->probe_passes <= PROBE_COUNT_MAX, "ReadyProbePasses=%u", c->probe_passes);
        fuzz_check(c->probe_failures >= 1 && c->probe_failures <= PROBE_COUNT_MAX, "ReadyProbeFailures=%u",
                   c->probe_failures);
        fuzz_check(c->soak <= SOAK_MAX_USEC, "SoakSec= %" PRIu64, c->soak);
        fuzz_check(c->canary <= 100, "Canary=%u", c->canary);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(config_unrefp) Config *c = NULL;
        _cleanup_free_ char *error = NULL, *copy = NULL;
        int r;

        if (size > FUZZ_INPUT_MAX)
                return -1;
        /* Exactly `size` bytes, so that reading one more is caught. */
        copy = malloc(MAX(size, 1u));
        if (!copy)
                abort();
        memcpy(copy, data, size);

        r = config_parse_buffer(copy, size, PATH, SERVICE, &c, &error);
        if (fuzz_print)
                fprintf(stderr, "%s\n", r < 0 ? error ?: strerror(-r) : "accepted");
        if (r < 0) {
                fuzz_check(!c, "refused (%d) but a config was returned", r);
                fuzz_check(error || r == -ENOMEM, "refused (%d) without a message", r);
                if (error) {
                        fuzz_check(strncmp(error, PATH ":", strlen(PATH ":")) == 0,
                                   "the message does not start with the file: %s", error);
                        fuzz_check(utf8_is_valid(error), "the message is not UTF-8: %s", error);
                }
                return 0;
        }
        fuzz_check(c, "accepted without a config");
        fuzz_check(!error, "accepted with a message: %s", error);
        check_accepted(c);

        /* Shared by generations: a reference more and less leaves it as it was. */
        fuzz_check(config_ref(c) == c, "config_ref()");
        config_unref(c);
        return 0;
}
