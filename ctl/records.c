/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdint.h>

#include "records.h"
#include "rpsup-protocol.h"

static int read_variant(sd_bus_message *m, json_object **ret) {
        const char *contents;
        char type;
        int r;

        r = sd_bus_message_peek_type(m, &type, &contents);
        if (r < 0)
                return r;
        if (type != 'v')
                return -EBADMSG;
        r = sd_bus_message_enter_container(m, 'v', contents);
        if (r < 0)
                return r;

        switch (contents[0]) {
        case 's': {
                const char *s;
                r = sd_bus_message_read_basic(m, 's', &s);
                *ret = json_object_new_string(s);
                break;
        }
        case 'b': {
                int b;
                r = sd_bus_message_read_basic(m, 'b', &b);
                *ret = json_object_new_boolean(b);
                break;
        }
        case 't': {
                uint64_t v;
                r = sd_bus_message_read_basic(m, 't', &v);
                *ret = json_object_new_uint64(v);
                break;
        }
        case 'x': {
                int64_t v;
                r = sd_bus_message_read_basic(m, 'x', &v);
                *ret = json_object_new_int64(v);
                break;
        }
        case 'u': {
                uint32_t v;
                r = sd_bus_message_read_basic(m, 'u', &v);
                *ret = json_object_new_int64(v);
                break;
        }
        case 'i': {
                int32_t v;
                r = sd_bus_message_read_basic(m, 'i', &v);
                *ret = json_object_new_int64(v);
                break;
        }
        case 'd': {
                double v;
                r = sd_bus_message_read_basic(m, 'd', &v);
                *ret = json_object_new_double(v);
                break;
        }
        default:
                /* A type this rpsupctl does not know: skip it. */
                r = sd_bus_message_skip(m, contents);
                *ret = NULL;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

int records_read_dict(sd_bus_message *m, json_object **ret) {
        _cleanup_json_ json_object *o = json_object_new_object();
        int r;

        if (!o)
                return -ENOMEM;
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key;
                json_object *v = NULL;

                r = sd_bus_message_read_basic(m, 's', &key);
                if (r < 0)
                        return r;
                r = read_variant(m, &v);
                if (r < 0)
                        return r;
                if (v)
                        json_object_object_add(o, key, v);
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(o);
        return 0;
}

int records_read_array(sd_bus_message *m, json_object **ret) {
        _cleanup_json_ json_object *a = json_object_new_array();
        int r;

        if (!a)
                return -ENOMEM;
        r = sd_bus_message_enter_container(m, 'a', "a{sv}");
        if (r < 0)
                return r;
        for (;;) {
                json_object *o;
                r = sd_bus_message_at_end(m, false);
                if (r < 0)
                        return r;
                if (r > 0)
                        break;
                r = records_read_dict(m, &o);
                if (r < 0)
                        return r;
                json_object_array_add(a, o);
        }
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(a);
        return 0;
}

int records_call(sd_bus *bus, const char *method, bool array, sd_bus_error *error, json_object **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_call_method(bus, NULL, RPSUP_OBJECT_PATH, RPSUP_INTERFACE, method, error, &reply, NULL);
        if (r < 0)
                return r;
        return array ? records_read_array(reply, ret) : records_read_dict(reply, ret);
}

const char *record_str(json_object *o, const char *key) {
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v))
                return "";
        return json_object_get_string(v);
}

int64_t record_int(json_object *o, const char *key) {
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v))
                return 0;
        return json_object_get_int64(v);
}

double record_double(json_object *o, const char *key) {
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v))
                return 0.0;
        return json_object_get_double(v);
}

bool record_bool(json_object *o, const char *key) {
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v))
                return false;
        return json_object_get_boolean(v);
}
