/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Test helper: xdp-drop-ack PORT [IFNAME]. Attaches drop-ack.bpf.c to the interface (default lo), says
 * "attached" on stdout, and holds the final ACKs of connections to PORT until its stdin closes (or it gets
 * SIGTERM); then detaches, prints how many segments it dropped, and exits. */

#include <errno.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "drop-ack.skel.h"

static volatile sig_atomic_t done;

static void on_signal(int sig) {
        done = 1;
}

int main(int argc, char *argv[]) {
        struct drop_ack_bpf *skel;
        unsigned ifindex;
        char buf[64];
        int r;

        if (argc < 2) {
                fprintf(stderr, "usage: xdp-drop-ack PORT [IFNAME]\n");
                return 2;
        }
        ifindex = if_nametoindex(argc > 2 ? argv[2] : "lo");
        if (ifindex == 0) {
                fprintf(stderr, "xdp-drop-ack: no interface %s: %m\n", argc > 2 ? argv[2] : "lo");
                return 1;
        }
        skel = drop_ack_bpf__open();
        if (!skel) {
                fprintf(stderr, "xdp-drop-ack: cannot open: %m\n");
                return 1;
        }
        skel->rodata->port = (unsigned short) atoi(argv[1]);
        r = drop_ack_bpf__load(skel);
        if (r < 0) {
                fprintf(stderr, "xdp-drop-ack: cannot load: %s\n", strerror(-r));
                return 1;
        }
        r = bpf_xdp_attach((int) ifindex, bpf_program__fd(skel->progs.drop_ack), XDP_FLAGS_SKB_MODE, NULL);
        if (r < 0) {
                fprintf(stderr, "xdp-drop-ack: cannot attach to ifindex %u: %s\n", ifindex, strerror(-r));
                drop_ack_bpf__destroy(skel);
                return 1;
        }
        signal(SIGTERM, on_signal);
        signal(SIGINT, on_signal);
        printf("attached\n");
        fflush(stdout);

        while (!done && fgets(buf, sizeof(buf), stdin))
                ;
        (void) bpf_xdp_detach((int) ifindex, XDP_FLAGS_SKB_MODE, NULL);
        printf("dropped %llu\n", (unsigned long long) skel->bss->dropped);
        drop_ack_bpf__destroy(skel);
        return 0;
}
