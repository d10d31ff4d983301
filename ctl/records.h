/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The control interface's records (a{sv}, aa{sv}) read into JSON objects: what --json prints, and what
 * the human output is made from. */

#include <stdbool.h>

#include <systemd/sd-bus.h>

#include "json-util.h"

int records_read_dict(sd_bus_message *m, json_object **ret);  /* a{sv} */
int records_read_array(sd_bus_message *m, json_object **ret); /* aa{sv} */

/* Calls a method without arguments that returns a{sv} (dict) or aa{sv} (array). */
int records_call(sd_bus *bus, const char *method, bool array, sd_bus_error *error, json_object **ret);

const char *record_str(json_object *o, const char *key);
int64_t record_int(json_object *o, const char *key);
double record_double(json_object *o, const char *key);
bool record_bool(json_object *o, const char *key);
