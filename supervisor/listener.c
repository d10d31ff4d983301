/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <systemd/sd-daemon.h>

#include "fd-util.h"
#include "listener.h"
#include "string-util.h"
#include "rpsup-limits.h"

int socket_bind_listen(const SocketAddress *a, unsigned backlog, bool reuseport, int *ret_fd) {
        _cleanup_close_ int fd = -EBADF;
        int one = 1, zero = 0;

        fd = socket(a->sa.sa_family, a->type | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;

        if (socket_address_is_inet(a)) {
                if (a->type == SOCK_STREAM && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
                        return -errno;
                if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
                        return -errno;
                /* [::]:PORT serves IPv4 too, whatever net.ipv6.bindv6only says. */
                if (a->sa.sa_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&a->in6.sin6_addr) &&
                    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) < 0)
                        return -errno;
        } else if (a->sa.sa_family == AF_UNIX && a->un.sun_path[0] == '/') {
                struct stat st;
                /* A socket file left behind by an earlier run is replaced; anything else is an error. */
                if (lstat(a->un.sun_path, &st) == 0) {
                        if (!S_ISSOCK(st.st_mode))
                                return -EEXIST;
                        (void) unlink(a->un.sun_path);
                }
        }

        if (bind(fd, &a->sa, a->size) < 0)
                return -errno;
        if (a->sa.sa_family == AF_UNIX && a->un.sun_path[0] == '/')
                (void) chmod(a->un.sun_path, 0666);
        if (a->type == SOCK_STREAM && listen(fd, (int) backlog) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int listener_set_new(InheritedFds *inherited, ListenerSet **ret) {
        ListenerSet *set = calloc(1, sizeof(ListenerSet));

        if (!set)
                return -ENOMEM;
        set->inherited = inherited;
        *ret = set;
        return 0;
}

static void listener_free(Listener *l) {
        ListenerSet *set = l->set;

        for (Listener **p = &set->listeners; *p; p = &(*p)->next)
                if (*p == l) {
                        *p = l->next;
                        set->n--;
                        break;
                }
        safe_close(l->fd);
        free(l->store_name);
        free(l);
}

ListenerSet *listener_set_free(ListenerSet *set) {
        if (!set)
                return NULL;
        while (set->listeners)
                listener_free(set->listeners);
        listener_history_free(set->closed);
        free(set);
        return NULL;
}

static Listener *listener_ref(Listener *l) {
        if (l)
                l->n_ref++;
        return l;
}

Listener *listener_unref(Listener *l) {
        if (!l || --l->n_ref > 0)
                return NULL;
        if (l->set->keep) {
                /* Stopping: the fd stays open (and stored) until rpsupd exits. */
                return NULL;
        }
        if (l->store_name)
                (void) fdstore_remove(l->store_name);
        listener_history_add(&l->set->closed, l->fd, &l->address);
        listener_free(l);
        return NULL;
}

static int store_name_for(const SocketAddress *a, uint64_t slot_id, char **ret) {
        uint32_t h = socket_address_hash(a);
        int r;

        if (slot_id == 0)
                r = asprintf(ret, "L.%08" PRIx32, h);
        else
                r = asprintf(ret, "S%" PRIu64 ".%08" PRIx32, slot_id, h);
        return r < 0 ? -ENOMEM : 0;
}

static int check_socket(int fd, const SocketAddress *a) {
        return sd_is_socket_sockaddr(fd, a->type, &a->sa, a->size, a->type == SOCK_STREAM ? 1 : -1);
}

/* Bound to the address, listening or not. */
static int check_socket_bound(int fd, const SocketAddress *a) {
        return sd_is_socket_sockaddr(fd, a->type, &a->sa, a->size, -1);
}

static int describe_fd(int fd, char *buf, size_t l) {
        SocketAddress got;
        char addr[SOCKET_ADDRESS_STRING_MAX];

        if (socket_address_from_fd(fd, &got) < 0) {
                snprintf(buf, l, "not a socket");
                return 0;
        }
        snprintf(buf, l, "a %s socket on %s", socket_type_name(got.type), socket_address_format(&got, addr, sizeof(addr)));
        return 0;
}

static Listener *listener_new(ListenerSet *set, int fd, const SocketAddress *a, char *store_name, uint64_t slot_id,
                              bool reuseport) {
        Listener *l = calloc(1, sizeof(Listener));

        if (!l)
                return NULL;
        *l = (Listener) {
                .set = set,
                .n_ref = 1,
                .fd = fd,
                .address = *a,
                .store_name = store_name,
                .slot_id = slot_id,
                .reuseport = reuseport,
        };
        l->next = set->listeners;
        set->listeners = l;
        set->n++;
        return l;
}

Listener *listener_wrap(ListenerSet *set, int fd, const SocketAddress *a) {
        return listener_new(set, fd, a, NULL, 0, true);
}

static Listener *listener_find(ListenerSet *set, const SocketAddress *a, uint64_t slot_id) {
        for (Listener *l = set->listeners; l; l = l->next)
                if (l->slot_id == slot_id && socket_address_equal(&l->address, a))
                        return l;
        return NULL;
}

/* Adopted: passed by systemd's socket unit (its FileDescriptorName= is ours). */
static int listener_take_from_socket_unit(ListenerSet *set, const SocketAddress *a, const char *socket_unit_name) {
        if (!set->inherited || !socket_unit_name)
                return -EBADF;
        for (size_t i = 0; i < set->inherited->n; i++) {
                InheritedFd *in = &set->inherited->fds[i];
                if (in->fd >= 0 && streq_ptr(in->name, socket_unit_name) && check_socket(in->fd, a) > 0)
                        return TAKE_FD(in->fd);
        }
        return -EBADF;
}

/* Restored: kept for us in the fd store by an earlier rpsupd. -EBADF: none; -EBADFD: something else is
 * stored under the name. */
static int listener_take_from_fd_store(ListenerSet *set, const ListenSpec *spec, const char *store_name,
                                       bool reuseport, char **ret_error) {
        const SocketAddress *a = &spec->address;
        _cleanup_close_ int fd = -EBADF;
        char what[SOCKET_ADDRESS_STRING_MAX + 32];

        if (!set->inherited)
                return -EBADF;
        fd = inherited_fds_claim(set->inherited, store_name);
        if (fd < 0)
                return -EBADF;
        if (reuseport && a->type == SOCK_STREAM && check_socket_bound(fd, a) > 0 && check_socket(fd, a) <= 0)
                /* A worker slot's listener that an earlier rpsupd shut down when it stopped (its queue went to
                 * the socket unit's listener): it listens no more; this slot gets a new one. */
                return -EBADF;
        if (check_socket(fd, a) <= 0) {
                describe_fd(fd, what, sizeof(what));
                *ret_error = strdup_printf("the socket restored from the fd store as \"%s\" should be a listening "
                                           "%s socket on %s, but it is %s", store_name, socket_type_name(a->type),
                                           spec->text, what);
                return -EBADFD;
        }
        return TAKE_FD(fd);
}

int listener_acquire(ListenerSet *set, const ListenSpec *spec, unsigned backlog, const char *socket_unit_name,
                     uint64_t slot_id, bool reuseport, Listener **ret, char **ret_error) {
        const SocketAddress *a = &spec->address;
        _cleanup_free_ char *store_name = NULL;
        _cleanup_close_ int fd = -EBADF;
        bool restored = false, socket_unit = false;
        Listener *l;
        int r;

        *ret_error = NULL;

        l = listener_find(set, a, slot_id);
        if (l) {
                if (a->type == SOCK_STREAM)
                        (void) listen(l->fd, (int) backlog); /* a changed Backlog= applies at once */
                *ret = listener_ref(l);
                return 0;
        }
        if (set->n >= LISTENERS_MAX) {
                *ret_error = strdup_printf("%s: rpsupd already holds %u listening sockets, the limit", spec->text,
                                           LISTENERS_MAX);
                return -E2BIG;
        }
        r = store_name_for(a, slot_id, &store_name);
        if (r < 0)
                return r;

        if (slot_id == 0)
                fd = listener_take_from_socket_unit(set, a, socket_unit_name);
        socket_unit = fd >= 0;
        if (fd < 0) {
                fd = listener_take_from_fd_store(set, spec, store_name, reuseport, ret_error);
                if (fd == -EBADFD)
                        return fd;
                restored = fd >= 0;
        }
        if (fd < 0) {
                /* Created. */
                r = socket_bind_listen(a, backlog, reuseport, &fd);
                if (r < 0) {
                        *ret_error = strdup_printf("cannot listen on %s (%s): %s", spec->text,
                                                   socket_type_name(a->type), strerror(-r));
                        return r;
                }
        } else if (a->type == SOCK_STREAM)
                (void) listen(fd, (int) backlog);

        if (socket_unit)
                store_name = mfree(store_name);
        l = listener_new(set, fd, a, store_name, slot_id, reuseport);
        if (!l)
                return -ENOMEM;
        TAKE_FD(fd);
        TAKE_PTR(store_name);
        l->socket_unit = socket_unit;
        l->restored = restored;

        /* Keep it across an rpsupd restart (a socket unit keeps its own). */
        if (l->store_name && !restored) {
                r = fdstore_add(l->fd, l->store_name);
                if (r < 0) {
                        *ret_error = strdup_printf("cannot hand %s to systemd's fd store: %s (is "
                                                   "FileDescriptorStoreMax= large enough?)", spec->text, strerror(-r));
                        listener_unref(l);
                        return r;
                }
        }
        *ret = l;
        return 0;
}

int listener_adopt_socket_unit(ListenerSet *set, const ListenSpec *spec, unsigned backlog, const char *name,
                               Listener **ret) {
        _cleanup_free_ char *error = NULL;
        bool passed = false;

        for (Listener *l = set->listeners; l; l = l->next)
                passed = passed || (l->socket_unit && l->slot_id == 0 && socket_address_equal(&l->address, &spec->address));
        for (size_t i = 0; !passed && set->inherited && i < set->inherited->n; i++) {
                InheritedFd *in = &set->inherited->fds[i];
                passed = in->fd >= 0 && streq_ptr(in->name, name) && check_socket(in->fd, &spec->address) > 0;
        }
        if (!passed)
                return 0;
        /* It is there: listener_acquire() takes it (and does not bind). */
        return listener_acquire(set, spec, backlog, name, 0, false, ret, &error) < 0 ? -EBADF : 1;
}

int listener_accept_queue(const Listener *l, uint32_t *ret_depth, uint32_t *ret_backlog) {
        struct tcp_info info = {};
        socklen_t len = sizeof(info);

        if (l->address.type != SOCK_STREAM || !socket_address_is_inet(&l->address))
                return -EOPNOTSUPP;
        if (getsockopt(l->fd, IPPROTO_TCP, TCP_INFO, &info, &len) < 0)
                return -errno;
        /* On a listening socket these fields hold the accept queue length and the backlog. */
        *ret_depth = info.tcpi_unacked;
        if (ret_backlog)
                *ret_backlog = info.tcpi_sacked;
        return 0;
}
