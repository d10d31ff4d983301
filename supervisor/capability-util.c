/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <linux/capability.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "capability-util.h"

/* The kernel's names, from the header that defines its ABI (as systemd builds its table). */
#define NAME(cap) [cap] = #cap
static const char *const capability_names[] = {
        NAME(CAP_CHOWN),            NAME(CAP_DAC_OVERRIDE),     NAME(CAP_DAC_READ_SEARCH),
        NAME(CAP_FOWNER),           NAME(CAP_FSETID),           NAME(CAP_KILL),
        NAME(CAP_SETGID),           NAME(CAP_SETUID),           NAME(CAP_SETPCAP),
        NAME(CAP_LINUX_IMMUTABLE),  NAME(CAP_NET_BIND_SERVICE), NAME(CAP_NET_BROADCAST),
        NAME(CAP_NET_ADMIN),        NAME(CAP_NET_RAW),          NAME(CAP_IPC_LOCK),
        NAME(CAP_IPC_OWNER),        NAME(CAP_SYS_MODULE),       NAME(CAP_SYS_RAWIO),
        NAME(CAP_SYS_CHROOT),       NAME(CAP_SYS_PTRACE),       NAME(CAP_SYS_PACCT),
        NAME(CAP_SYS_ADMIN),        NAME(CAP_SYS_BOOT),         NAME(CAP_SYS_NICE),
        NAME(CAP_SYS_RESOURCE),     NAME(CAP_SYS_TIME),         NAME(CAP_SYS_TTY_CONFIG),
        NAME(CAP_MKNOD),            NAME(CAP_LEASE),            NAME(CAP_AUDIT_WRITE),
        NAME(CAP_AUDIT_CONTROL),    NAME(CAP_SETFCAP),          NAME(CAP_MAC_OVERRIDE),
        NAME(CAP_MAC_ADMIN),        NAME(CAP_SYSLOG),           NAME(CAP_WAKE_ALARM),
        NAME(CAP_BLOCK_SUSPEND),    NAME(CAP_AUDIT_READ),
#ifdef CAP_PERFMON
        NAME(CAP_PERFMON),
#endif
#ifdef CAP_BPF
        NAME(CAP_BPF),
#endif
#ifdef CAP_CHECKPOINT_RESTORE
        NAME(CAP_CHECKPOINT_RESTORE),
#endif
};
#undef NAME

const char *capability_to_name(int cap) {
        return cap >= 0 && (size_t) cap < ELEMENTSOF(capability_names) ? capability_names[cap] : NULL;
}

int capability_from_name(const char *s) {
        for (size_t i = 0; i < ELEMENTSOF(capability_names); i++)
                if (capability_names[i] && strcasecmp(capability_names[i], s) == 0)
                        return (int) i;
        return -EINVAL;
}

uint64_t capability_set_all(void) {
        uint64_t all = 0;

        for (size_t i = 0; i < ELEMENTSOF(capability_names); i++)
                if (capability_names[i])
                        all |= CAPABILITY_MASK(i);
        return all;
}

int capability_set_parse(const char *text, uint64_t *ret_set, bool *ret_inverted, char **ret_unknown) {
        uint64_t set = 0;
        bool inverted = false;
        const char *p = text;

        *ret_unknown = NULL;
        while (isspace((unsigned char) *p))
                p++;
        if (*p == '~') {
                inverted = true;
                p++;
        }
        for (;;) {
                char word[64];
                size_t n;
                int cap;

                while (isspace((unsigned char) *p))
                        p++;
                if (!*p)
                        break;
                n = strcspn(p, " \t\n\r\f\v");
                if (n >= sizeof(word)) {
                        *ret_unknown = strndup(p, n);
                        return *ret_unknown ? -EINVAL : -ENOMEM;
                }
                memcpy(word, p, n);
                word[n] = 0;
                cap = capability_from_name(word);
                if (cap < 0) {
                        *ret_unknown = strdup(word);
                        return *ret_unknown ? -EINVAL : -ENOMEM;
                }
                set |= CAPABILITY_MASK(cap);
                p += n;
        }
        *ret_set = inverted ? capability_set_all() & ~set : set;
        *ret_inverted = inverted;
        return 0;
}

int capability_set_first(uint64_t set) {
        for (int cap = 0; cap < 64; cap++)
                if (set & CAPABILITY_MASK(cap))
                        return cap;
        return -1;
}

int capability_get_own(uint64_t *ret_effective, uint64_t *ret_permitted, uint64_t *ret_bounding) {
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3] = {};
        uint64_t bounding = 0;

        if (syscall(SYS_capget, &h, d) < 0)
                return -errno;
        /* PR_CAPBSET_READ fails (EINVAL) past the running kernel's last capability. */
        for (int cap = 0; cap < 64; cap++) {
                int r = prctl(PR_CAPBSET_READ, (unsigned long) cap, 0, 0, 0);
                if (r < 0)
                        break;
                if (r > 0)
                        bounding |= CAPABILITY_MASK(cap);
        }
        if (ret_effective)
                *ret_effective = d[0].effective | (uint64_t) d[1].effective << 32;
        if (ret_permitted)
                *ret_permitted = d[0].permitted | (uint64_t) d[1].permitted << 32;
        if (ret_bounding)
                *ret_bounding = bounding;
        return 0;
}
