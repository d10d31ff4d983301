/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "control-bus.h"
#include "control-internal.h"
#include "macro.h"
#include "rpsup-protocol.h"

/* Bus clients (busctl, gdbus with --address) begin with org.freedesktop.DBus.Hello and stop if it fails;
 * some then ask the bus about names (busctl tree, busctl status). On a direct connection rpsupd answers
 * for the absent bus daemon: the client gets a unique name of its own, once; the bus's name is the bus's,
 * io.rpsup.Supervisor1 is owned by rpsupd's unique name :1.0, and every call reaches rpsupd whatever its
 * destination. Nothing is routed and
 * rpsupd emits no signals, so that match rules are checked and then have nothing to match. Each method
 * takes arguments sd-bus checked against its signature and within CONTROL_MESSAGE_MAX, keeps nothing but
 * the Hello flag, and is open to every caller, as the bus daemon's are. */

/* The longest match rule the reference bus daemon accepts. */
#define MATCH_RULE_MAX 1024u

/* rpsupd's own unique name, the owner of io.rpsup.Supervisor1 (clients get :1.1 and up). */
#define RPSUPD_UNIQUE_NAME ":1.0"

static ControlConnection *caller(sd_bus_message *m, void *userdata) {
        return connection_of(userdata, m);
}

static void unique_name(const ControlConnection *c, char *buf, size_t size) {
        snprintf(buf, size, ":1.%" PRIu64, c->id);
}

static int method_hello(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        ControlConnection *c = caller(m, userdata);
        char name[32];

        if (!c)
                return -ENOTCONN;
        if (c->said_hello)
                return sd_bus_error_set(error, SD_BUS_ERROR_FAILED, "Already handled a Hello message");
        c->said_hello = true;
        unique_name(c, name, sizeof(name));
        return sd_bus_reply_method_return(m, "s", name);
}

typedef enum Owner {
        OWNER_NONE,
        OWNER_BUS,     /* org.freedesktop.DBus */
        OWNER_RPSUPD,  /* io.rpsup.Supervisor1, :1.0 */
        OWNER_CALLER,  /* the unique name Hello gave */
} Owner;

static Owner name_owner(sd_bus_message *m, void *userdata, const char *name) {
        ControlConnection *c = caller(m, userdata);
        char own[32];

        if (streq(name, CONTROL_BUS_NAME))
                return OWNER_BUS;
        if (streq(name, RPSUP_INTERFACE) || streq(name, RPSUPD_UNIQUE_NAME))
                return OWNER_RPSUPD;
        if (!c || !c->said_hello)
                return OWNER_NONE;
        unique_name(c, own, sizeof(own));
        return streq(name, own) ? OWNER_CALLER : OWNER_NONE;
}

static int no_owner(sd_bus_error *error, const char *name) {
        return sd_bus_error_setf(error, SD_BUS_ERROR_NAME_HAS_NO_OWNER,
                                 "Could not get owner of name '%.255s': no such name", name);
}

static int method_get_name_owner(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        char own[32];
        const char *name;
        int r;

        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        switch (name_owner(m, userdata, name)) {
        case OWNER_BUS:
                return sd_bus_reply_method_return(m, "s", CONTROL_BUS_NAME);
        case OWNER_RPSUPD:
                return sd_bus_reply_method_return(m, "s", RPSUPD_UNIQUE_NAME);
        case OWNER_CALLER:
                unique_name(caller(m, userdata), own, sizeof(own));
                return sd_bus_reply_method_return(m, "s", own);
        default:
                return no_owner(error, name);
        }
}

static int method_name_has_owner(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *name;
        int r;

        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(m, "b", (int) (name_owner(m, userdata, name) != OWNER_NONE));
}

static int method_list_names(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        ControlConnection *c = caller(m, userdata);
        char own[32] = "";

        if (c && c->said_hello)
                unique_name(c, own, sizeof(own));
        /* Not the bus's own name: what it would show (busctl tree) is rpsupd's objects once more. */
        return sd_bus_reply_method_return(m, "as", own[0] ? 3 : 2, RPSUP_INTERFACE, RPSUPD_UNIQUE_NAME, own);
}

static int method_list_activatable_names(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return sd_bus_reply_method_return(m, "as", 1, CONTROL_BUS_NAME);
}

/* GetConnectionUnixUser, GetConnectionUnixProcessID and GetConnectionCredentials: the uid and pid behind a
 * name, rpsupd's own or the caller's as its socket says, in the form the method answers with. */
static int method_get_connection(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        ControlConnection *c = caller(m, userdata);
        const char *name, *member = sd_bus_message_get_member(m);
        uint32_t uid, pid;
        int r;

        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        switch (name_owner(m, userdata, name)) {
        case OWNER_BUS: /* answered by rpsupd in the bus daemon's place */
        case OWNER_RPSUPD:
                uid = (uint32_t) geteuid();
                pid = (uint32_t) getpid();
                break;
        case OWNER_CALLER:
                uid = (uint32_t) c->peer.uid;
                pid = (uint32_t) c->peer.pid;
                break;
        default:
                return no_owner(error, name);
        }
        if (streq_ptr(member, "GetConnectionUnixUser"))
                return sd_bus_reply_method_return(m, "u", uid);
        if (streq_ptr(member, "GetConnectionUnixProcessID"))
                return sd_bus_reply_method_return(m, "u", pid);
        return sd_bus_reply_method_return(m, "a{sv}", 2, "UnixUserID", "u", uid, "ProcessID", "u", pid);
}

static int method_get_id(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        ControlServer *cs = userdata;
        char id[SD_ID128_STRING_MAX];

        return sd_bus_reply_method_return(m, "s", sd_id128_to_string(cs->server_id, id));
}

/* A match rule is accepted if it is well-formed enough to be a rule; there are no signals to match. */
static int method_match(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *rule;
        int r;

        r = sd_bus_message_read(m, "s", &rule);
        if (r < 0)
                return r;
        if (strlen(rule) > MATCH_RULE_MAX || (rule[0] && !strchr(rule, '=')))
                return sd_bus_error_setf(error, "org.freedesktop.DBus.Error.MatchRuleInvalid",
                                         "Not a match rule of at most %u bytes", MATCH_RULE_MAX);
        return sd_bus_reply_method_return(m, NULL);
}

const sd_bus_vtable control_bus_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("Hello", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", unique_name),
                                method_hello, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetNameOwner", SD_BUS_ARGS("s", name), SD_BUS_RESULT("s", owner),
                                method_get_name_owner, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("NameHasOwner", SD_BUS_ARGS("s", name), SD_BUS_RESULT("b", has_owner),
                                method_name_has_owner, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListNames", SD_BUS_NO_ARGS, SD_BUS_RESULT("as", names),
                                method_list_names, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListActivatableNames", SD_BUS_NO_ARGS, SD_BUS_RESULT("as", names),
                                method_list_activatable_names, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetConnectionUnixUser", SD_BUS_ARGS("s", name), SD_BUS_RESULT("u", uid),
                                method_get_connection, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetConnectionUnixProcessID", SD_BUS_ARGS("s", name), SD_BUS_RESULT("u", pid),
                                method_get_connection, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetConnectionCredentials", SD_BUS_ARGS("s", name),
                                SD_BUS_RESULT("a{sv}", credentials),
                                method_get_connection, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetId", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", id),
                                method_get_id, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("AddMatch", SD_BUS_ARGS("s", rule), SD_BUS_NO_RESULT,
                                method_match, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RemoveMatch", SD_BUS_ARGS("s", rule), SD_BUS_NO_RESULT,
                                method_match, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};
