/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Addresses as written in ListenStream=/ListenDatagram=: PORT (IPv6 any, dual stack), ADDR:PORT,
 * [V6]:PORT, [V6%IFACE]:PORT, /path, @abstract. A path is simplified ("//a/./b" is "/a/b") and may not
 * contain "..". */

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "macro.h"

typedef struct SocketAddress {
        union {
                struct sockaddr sa;
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
                struct sockaddr_un un;
                struct sockaddr_storage storage;
        };
        socklen_t size;
        int type; /* SOCK_STREAM or SOCK_DGRAM */
} SocketAddress;

#define SOCKET_ADDRESS_STRING_MAX (sizeof(struct sockaddr_un) + 80)

int socket_address_parse(const char *s, int type, SocketAddress *ret);
/* The address in the syntax socket_address_parse() reads (without the type). */
const char *socket_address_format(const SocketAddress *a, char *buf, size_t l);
const char *socket_type_name(int type); /* "stream" / "datagram" */
bool socket_address_equal(const SocketAddress *a, const SocketAddress *b);
bool socket_address_is_inet(const SocketAddress *a);
/* The address a listening fd is bound to, and its type. */
int socket_address_from_fd(int fd, SocketAddress *ret);
/* 32-bit FNV-1a of type and address: part of names that must change when the address changes. */
uint32_t socket_address_hash(const SocketAddress *a);
