/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "metrics-fetch.h"
#include "rpsup-protocol.h"

typedef struct Fetch {
        ServiceMetrics *result;
        sd_bus *bus;
        bool done;
        size_t *pending;
        size_t *taken;    /* bytes of text kept, over all services */
} Fetch;

static void fetch_done(Fetch *f) {
        if (f->done)
                return;
        f->done = true;
        --*f->pending;
}

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Fetch *f = userdata;
        const char *text;
        int r;

        if (sd_bus_message_is_method_error(m, NULL))
                f->result->error = -(sd_bus_message_get_errno(m) ?: EIO);
        else if ((r = sd_bus_message_read(m, "s", &text)) < 0)
                f->result->error = r;
        else if (strlen(text) > METRICS_FETCH_TEXT_MAX || strlen(text) > METRICS_FETCH_TOTAL_MAX - *f->taken)
                f->result->error = -EFBIG;
        else if (!(f->result->text = strdup(text)))
                f->result->error = -ENOMEM;
        else {
                *f->taken += strlen(text);
                f->result->error = 0;
        }
        fetch_done(f);
        return 0;
}

/* Connects and sends the call; the reply comes in the event loop. */
static int fetch_start(Fetch *f, const char *runtime_dir, sd_event *event, usec_t timeout) {
        _cleanup_free_ char *path = NULL;
        int r;

        r = rpsup_control_path(runtime_dir, f->result->name, &path);
        if (r < 0)
                return r;
        r = rpsup_connect(path, &f->bus);
        if (r < 0)
                return r;
        r = sd_bus_set_method_call_timeout(f->bus, timeout);
        if (r >= 0)
                r = sd_bus_attach_event(f->bus, event, SD_EVENT_PRIORITY_NORMAL);
        if (r >= 0)
                r = sd_bus_call_method_async(f->bus, NULL, NULL, RPSUP_OBJECT_PATH, RPSUP_INTERFACE, "GetMetrics",
                                             on_reply, f, NULL);
        return r;
}

int metrics_fetch(const char *runtime_dir, ServiceMetrics *results, size_t n, usec_t timeout) {
        _cleanup_free_ Fetch *fetches = calloc(MAX(n, 1u), sizeof(Fetch));
        usec_t deadline = usec_add(now_usec(CLOCK_MONOTONIC), timeout);
        sd_event *event = NULL;
        size_t pending = 0, taken = 0;
        int r;

        if (!fetches)
                return -ENOMEM;
        r = sd_event_new(&event);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                fetches[i] = (Fetch) { .result = &results[i], .pending = &pending, .taken = &taken };
                results[i].text = NULL;
                results[i].error = -ETIMEDOUT;
                if (i >= METRICS_FETCH_SERVICES_MAX) {
                        results[i].error = -E2BIG;
                        continue;
                }
                r = fetch_start(&fetches[i], runtime_dir, event, timeout);
                if (r < 0) {
                        results[i].error = r;
                        fetches[i].done = true;
                        continue;
                }
                pending++;
        }
        /* Not sd_event_loop() and sd_event_exit(): on exit, sd-bus flushes each bus attached to the loop, which
         * waits (up to 90 s) for an rpsupd that does not answer to complete the authentication. */
        r = 0;
        while (pending > 0 && r >= 0) {
                usec_t now = now_usec(CLOCK_MONOTONIC);
                if (now >= deadline)
                        break;
                r = sd_event_run(event, deadline - now);
        }
        for (size_t i = 0; i < n; i++)
                if (fetches[i].bus) {
                        (void) sd_bus_detach_event(fetches[i].bus);
                        fetches[i].bus = sd_bus_close_unref(fetches[i].bus);
                }
        sd_event_unref(event);
        return r < 0 ? r : 0;
}

void service_metrics_done(ServiceMetrics *results, size_t n) {
        for (size_t i = 0; i < n; i++)
                results[i].text = mfree(results[i].text);
}
