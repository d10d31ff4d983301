/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cgroup-tree.h"
#include "fd-util.h"
#include "log.h"
#include "rpsup-limits.h"
#include "string-util.h"
#include "time-util.h"

#define CGROUP2_MOUNTS "/sys/fs/cgroup", "/sys/fs/cgroup/unified"
#define CGROUP_V1_SYSTEMD "/sys/fs/cgroup/systemd"
#define SUPERVISOR_LEAF "supervisor"
/* Outside systemd: names the subtree, so that the next rpsupd finds it. */
#define CGROUP_RECORD "cgroup"

typedef struct PendingRemoval {
        char *name;               /* relative to the subtree: "gen-3" or "gen-3/worker-0.7" */
        sd_event_source *watch;   /* inotify on its cgroup.events */
        sd_event_source *retry;   /* empty, but rmdir() said EBUSY: again shortly */
        unsigned retries;
        CgroupTree *tree;
} PendingRemoval;

struct CgroupTree {
        sd_event *event;
        const char *mount;        /* the cgroup2 mount */
        char *path;               /* the subtree, relative to the mount ("/system.slice/rpsup@web.service") */
        int root_fd;
        int v1_root_fd;           /* the name=systemd mirror, or -EBADF */
        char *origin;             /* outside systemd: where rpsupd was before (it goes back at the end) */
        char *record_path;        /* outside systemd: the runtime directory's record of the subtree */
        uint64_t seq;             /* the last worker cgroup's number */
        PendingRemoval *pending[CGROUP_PENDING_REMOVALS_MAX];
        size_t n_pending;
};

static bool has_prefix(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool has_suffix(const char *s, const char *suffix) {
        size_t n = strlen(s), k = strlen(suffix);
        return n >= k && streq(s + n - k, suffix);
}

void cgroup_place_done(CgroupPlace *p) {
        p->dir_fd = safe_close(p->dir_fd);
        p->v1_procs_fd = safe_close(p->v1_procs_fd);
}

static int write_at(int dir_fd, const char *file, const char *text) {
        _cleanup_close_ int fd = openat(dir_fd, file, O_WRONLY | O_CLOEXEC | O_NOCTTY);
        size_t n = strlen(text);

        if (fd < 0)
                return -errno;
        if (write(fd, text, n) != (ssize_t) n)
                return errno > 0 ? -errno : -EIO;
        return 0;
}

/* "populated 1" in cgroup.events: a process lives in the cgroup or below it. */
static int cg_populated(int dir_fd, const char *name) {
        char path[PATH_MAX], buf[256];
        const char *p;
        int r;

        snprintf(path, sizeof(path), "%s/cgroup.events", name);
        r = read_small_file(dir_fd, path, buf, sizeof(buf));
        if (r < 0)
                return r;
        p = strstr(buf, "populated ");
        return p ? p[10] == '1' : -EBADMSG;
}

static const char *cgroup2_mount(void);

/* Signals pid if it still runs in the cgroup whose directory has inode cg: through a pidfd opened before the
 * check, so that a pid reused since cgroup.procs was read is left alone. */
static int signal_member(pid_t pid, int sig, ino_t cg) {
        _cleanup_close_ int pidfd = pidfd_open(pid, 0);
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *full = NULL;
        const char *mount = cgroup2_mount();
        char path[64], line[PATH_MAX + 8];
        struct stat st;

        if (pidfd < 0)
                return -errno;
        snprintf(path, sizeof(path), "/proc/%d/cgroup", (int) pid);
        f = fopen(path, "re");
        if (!f || !mount)
                return -ESRCH;
        while (fgets(line, sizeof(line), f)) {
                if (strncmp(line, "0::", 3) != 0)
                        continue;
                line[strcspn(line, "\n")] = 0;
                if (asprintf(&full, "%s%s", mount, line + 3) < 0)
                        return -ENOMEM;
                if (stat(full, &st) < 0 || st.st_ino != cg)
                        return -ESRCH;
                return pidfd_send_signal(pidfd, sig, NULL, 0) < 0 ? -errno : 0;
        }
        return -ESRCH;
}

/* Calls f for each process in the cgroup and below it (depth levels; at most CGROUP_KILL_PIDS_MAX per cgroup)
 * with the inode of the cgroup it was listed in, until f returns true. Returns whether one did. */
typedef bool (*CgroupVisit)(pid_t pid, ino_t cg, void *userdata);

static bool cg_walk(int dir_fd, const char *name, unsigned depth, CgroupVisit f, void *userdata) {
        _cleanup_close_ int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_fclose_ FILE *procs = NULL;
        unsigned pid, n = 0;
        bool done = false;
        struct stat st;
        DIR *d;
        int pfd;

        if (fd < 0 || fstat(fd, &st) < 0)
                return false;
        pfd = openat(fd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
        if (pfd >= 0 && !(procs = fdopen(pfd, "re")))
                safe_close(pfd);
        while (procs && !done && n++ < CGROUP_KILL_PIDS_MAX && fscanf(procs, "%u", &pid) == 1)
                done = (pid_t) pid != getpid() && f((pid_t) pid, st.st_ino, userdata);
        if (done || depth == 0)
                return done;
        int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (dfd < 0 || !(d = fdopendir(dfd))) {
                safe_close(dfd);
                return false;
        }
        for (struct dirent *de; !done && (de = readdir(d));)
                if (de->d_type == DT_DIR && de->d_name[0] != '.')
                        done = cg_walk(fd, de->d_name, depth - 1, f, userdata);
        closedir(d);
        return done;
}

typedef struct SignalAll {
        int sig;
        unsigned n;
} SignalAll;

static bool visit_signal(pid_t pid, ino_t cg, void *userdata) {
        SignalAll *a = userdata;

        if (signal_member(pid, a->sig, cg) >= 0)
                a->n++;
        return false;
}

/* Sends sig to every process in the cgroup and below it. Returns how many. */
static unsigned cg_signal_tree(int dir_fd, const char *name, int sig, unsigned depth) {
        SignalAll a = { .sig = sig };

        (void) cg_walk(dir_fd, name, depth, visit_signal, &a);
        return a.n;
}

typedef struct FindLive {
        pid_t pid;
        char state;
} FindLive;

static bool visit_live(pid_t pid, ino_t cg, void *userdata) {
        FindLive *l = userdata;
        char path[64], buf[512];
        const char *close;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        /* "PID (comm) S ...": gone meanwhile, or a zombie, is not live. */
        if (read_small_file(AT_FDCWD, path, buf, sizeof(buf)) < 0 || !(close = strrchr(buf, ')')) ||
            close[1] != ' ' || close[2] == 'Z' || close[2] == 'X')
                return false;
        *l = (FindLive) { .pid = pid, .state = close[2] };
        return true;
}

/* Whether a process that has not exited runs in the cgroup or below it (the first one found in *ret_pid, its
 * state in *ret_state). A zombie still counts in "populated" until its parent reaps it, and an orphan's new
 * parent (PID 1, or a subreaper) may take its time: what rpsupd waits for is the processes, not their
 * reaping. */
static bool cg_find_live(int dir_fd, const char *name, unsigned depth, pid_t *ret_pid, char *ret_state) {
        FindLive l = {};

        if (!cg_walk(dir_fd, name, depth, visit_live, &l))
                return false;
        *ret_pid = l.pid;
        *ret_state = l.state;
        return true;
}

static bool cg_has_live(int dir_fd, const char *name, unsigned depth) {
        pid_t pid;
        char state;
        return cg_find_live(dir_fd, name, depth, &pid, &state);
}

/* Kills everything in the cgroup and below: cgroup.kill (Linux ≥ 5.14), else SIGKILL to each process. */
static void cg_kill(int dir_fd, const char *name) {
        char path[PATH_MAX];
        int r;

        snprintf(path, sizeof(path), "%s/cgroup.kill", name);
        r = write_at(dir_fd, path, "1");
        if (r == -ENOENT && faccessat(dir_fd, name, F_OK, 0) < 0)
                return; /* the cgroup is gone */
        if (r >= 0)
                return;
        /* Processes that fork meanwhile escape one pass, not several. */
        for (unsigned pass = 0; pass < CGROUP_KILL_PASSES; pass++)
                if (cg_signal_tree(dir_fd, name, SIGKILL, CGROUP_KILL_DEPTH) == 0)
                        break;
}

/* Removes an empty cgroup and the (empty) cgroups below it. -EBUSY while it is not empty, and for a moment
 * after: a cgroup whose last process exited ("populated 0") refuses rmdir() until the kernel released
 * that process. */
static int cg_remove(int dir_fd, const char *name) {
        _cleanup_close_ int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d;

        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (dfd >= 0 && (d = fdopendir(dfd))) {
                for (struct dirent *de; (de = readdir(d));)
                        if (de->d_type == DT_DIR && de->d_name[0] != '.')
                                (void) unlinkat(fd, de->d_name, AT_REMOVEDIR);
                closedir(d);
        } else
                safe_close(dfd);
        if (unlinkat(dir_fd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
                return errno == ENOTEMPTY ? -EBUSY : -errno;
        return 0;
}

static int tree_remove(CgroupTree *t, const char *name) {
        int r = cg_remove(t->root_fd, name);
        if (r >= 0 && t->v1_root_fd >= 0)
                (void) cg_remove(t->v1_root_fd, name);
        return r;
}

static PendingRemoval *pending_free(PendingRemoval *p) {
        if (!p)
                return NULL;
        sd_event_source_disable_unref(p->watch);
        sd_event_source_disable_unref(p->retry);
        free(p->name);
        free(p);
        return NULL;
}

static void pending_drop(CgroupTree *t, PendingRemoval *p) {
        for (size_t i = 0; i < t->n_pending; i++)
                if (t->pending[i] == p) {
                        t->pending[i] = t->pending[--t->n_pending];
                        break;
                }
        pending_free(p);
}

static void pending_try(PendingRemoval *p);

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        pending_try(userdata);
        return 0;
}

/* Removes the cgroup if it is empty; while the kernel still holds it (EBUSY), tries again every 20 ms for
 * a second. */
static void pending_try(PendingRemoval *p) {
        CgroupTree *t = p->tree;
        int r;

        if (cg_populated(t->root_fd, p->name) == 1)
                return;
        r = tree_remove(t, p->name);
        if (r == -EBUSY && p->retries++ < CGROUP_REMOVE_RETRIES) {
                if (p->retry)
                        r = sd_event_source_set_time_relative(p->retry, 20 * USEC_PER_MSEC) < 0 ? r :
                            sd_event_source_set_enabled(p->retry, SD_EVENT_ONESHOT);
                else
                        r = sd_event_add_time_relative(t->event, &p->retry, CLOCK_MONOTONIC, 20 * USEC_PER_MSEC, 0,
                                                       on_retry, p);
                if (r >= 0)
                        return;
        }
        if (r < 0)
                log_warning_errno(r, "Cannot remove the empty cgroup %s/%s: %m. It is left.", t->path, p->name);
        pending_drop(t, p);
}

static int on_cgroup_events(sd_event_source *s, const struct inotify_event *ev, void *userdata) {
        pending_try(userdata);
        return 0;
}

/* Removes the cgroup now if it is empty, else once it is (watching its cgroup.events). */
static void remove_when_empty(CgroupTree *t, const char *name) {
        _cleanup_free_ char *events = NULL;
        PendingRemoval *p;
        int r;

        if (cg_populated(t->root_fd, name) != 1 && tree_remove(t, name) != -EBUSY)
                return;
        for (size_t i = 0; i < t->n_pending; i++)
                if (streq(t->pending[i]->name, name))
                        return;
        if (t->n_pending >= ELEMENTSOF(t->pending)) {
                log_warning("%u cgroups already wait to be removed once empty; %s/%s is left (it is removed "
                            "with its generation, or when the service stops).", CGROUP_PENDING_REMOVALS_MAX,
                            t->path, name);
                return;
        }
        p = calloc(1, sizeof(PendingRemoval));
        if (!p || !(p->name = strdup(name)) ||
            asprintf(&events, "%s%s/%s/cgroup.events", t->mount, t->path, name) < 0) {
                pending_free(p);
                log_oom();
                return;
        }
        p->tree = t;
        r = sd_event_add_inotify(t->event, &p->watch, events, IN_MODIFY, on_cgroup_events, p);
        if (r < 0) {
                log_warning_errno(r, "Cannot watch %s, so the cgroup is left when empty: %m", events);
                pending_free(p);
                return;
        }
        t->pending[t->n_pending++] = p;
        /* It may have emptied between the check and the watch. */
        pending_try(p);
}

void cgroup_tree_worker_gone(CgroupTree *t, const char *name) {
        if (!t || isempty(name))
                return;
        if (cg_populated(t->root_fd, name) == 1)
                cg_kill(t->root_fd, name);
        remove_when_empty(t, name);
}

void cgroup_tree_generation_gone(CgroupTree *t, uint64_t generation) {
        char name[64];

        if (!t)
                return;
        snprintf(name, sizeof(name), "gen-%" PRIu64, generation);
        cg_kill(t->root_fd, name);
        /* Watches on its worker cgroups are superseded by the generation's. */
        for (size_t i = 0; i < t->n_pending;) {
                PendingRemoval *p = t->pending[i];
                if (has_prefix(p->name, name) && p->name[strlen(name)] == '/')
                        pending_drop(t, p);
                else
                        i++;
        }
        remove_when_empty(t, name);
}

static int mkdir_and_open(int dir_fd, const char *name, int flags) {
        if (mkdirat(dir_fd, name, 0755) < 0 && errno != EEXIST)
                return -errno;
        int fd = openat(dir_fd, name, flags | O_DIRECTORY | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

int cgroup_tree_place_worker(CgroupTree *t, uint64_t generation, unsigned index, CgroupPlace *ret) {
        _cleanup_(cgroup_place_done) CgroupPlace p = CGROUP_PLACE_NULL;
        char gen[32];

        snprintf(gen, sizeof(gen), "gen-%" PRIu64, generation);
        if (mkdirat(t->root_fd, gen, 0755) < 0 && errno != EEXIST)
                return log_error_errno(errno, "Failed to create the cgroup %s/%s: %m", t->path, gen);
        /* A new one: the count goes on past cgroups an earlier rpsupd made. */
        for (unsigned tries = 0;; tries++) {
                snprintf(p.name, sizeof(p.name), "%s/worker-%u.%" PRIu64, gen, index, ++t->seq);
                if (mkdirat(t->root_fd, p.name, 0755) >= 0)
                        break;
                if (errno != EEXIST || tries >= 1000)
                        return log_error_errno(errno, "Failed to create the cgroup %s/%s: %m", t->path, p.name);
        }
        p.dir_fd = openat(t->root_fd, p.name, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (p.dir_fd < 0) {
                int r = -errno;
                (void) unlinkat(t->root_fd, p.name, AT_REMOVEDIR);
                return log_error_errno(r, "Failed to open the cgroup %s/%s: %m", t->path, p.name);
        }
        if (t->v1_root_fd >= 0) {
                char procs[sizeof(p.name) + 16];

                /* Without it, "systemctl status" shows the worker beside rpsupd: not worth failing for. */
                snprintf(procs, sizeof(procs), "%s/cgroup.procs", p.name);
                if (mkdirat(t->v1_root_fd, gen, 0755) < 0 && errno != EEXIST)
                        log_debug_errno(errno, "Failed to create %s in the name=systemd hierarchy: %m", gen);
                else if (mkdirat(t->v1_root_fd, p.name, 0755) < 0 && errno != EEXIST)
                        log_debug_errno(errno, "Failed to create %s in the name=systemd hierarchy: %m", p.name);
                else if ((p.v1_procs_fd = openat(t->v1_root_fd, procs, O_WRONLY | O_CLOEXEC)) < 0)
                        log_debug_errno(errno, "Failed to open %s in the name=systemd hierarchy: %m", procs);
        }
        *ret = p;
        p = CGROUP_PLACE_NULL;
        return 0;
}

int cgroup_tree_find(CgroupTree *t, pid_t pid, char *buf, size_t size) {
        _cleanup_fclose_ FILE *f = NULL;
        char path[64], line[PATH_MAX + 8];
        size_t k = strlen(t->path);

        snprintf(path, sizeof(path), "/proc/%d/cgroup", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return -errno;
        while (fgets(line, sizeof(line), f)) {
                line[strcspn(line, "\n")] = 0;
                if (strncmp(line, "0::", 3) != 0)
                        continue;
                const char *c = line + 3;
                if (strncmp(c, t->path, k) != 0 || c[k] != '/' || strlen(c + k + 1) >= size)
                        return -ENOENT;
                strcpy(buf, c + k + 1);
                return 0;
        }
        return -ENOENT;
}

/* Reads a number from a "key value" file such as cpu.stat. */
static int read_keyed(int dir_fd, const char *file, const char *key, uint64_t *ret) {
        char buf[2048];
        size_t k = strlen(key);
        int r;

        r = read_small_file(dir_fd, file, buf, sizeof(buf));
        if (r < 0)
                return r;
        for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
                if (strncmp(line, key, k) == 0 && line[k] == ' ')
                        return sscanf(line + k + 1, "%" SCNu64, ret) == 1 ? 0 : -EBADMSG;
        return -ENOENT;
}

int cgroup_tree_usage(CgroupTree *t, uint64_t generation, uint64_t *ret_cpu_usec, uint64_t *ret_memory) {
        _cleanup_close_ int fd = -EBADF;
        char name[64], buf[64];
        int r;

        if (!t)
                return -EOPNOTSUPP;
        snprintf(name, sizeof(name), "gen-%" PRIu64, generation);
        fd = openat(t->root_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = read_keyed(fd, "cpu.stat", "usage_usec", ret_cpu_usec);
        if (r < 0)
                return r;
        *ret_memory = UINT64_MAX;
        if (read_small_file(fd, "memory.current", buf, sizeof(buf)) >= 0)
                (void) sscanf(buf, "%" SCNu64, ret_memory);
        return 0;
}

/* ---- setting up ---- */

static const char *cgroup2_mount(void) {
        static const char *const mounts[] = { CGROUP2_MOUNTS };
        struct statfs fs;

        for (size_t i = 0; i < ELEMENTSOF(mounts); i++)
                if (statfs(mounts[i], &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC)
                        return mounts[i];
        return NULL;
}

/* Our cgroup in one hierarchy, from /proc/self/cgroup: "0::" (cgroup2) or "name=systemd". */
static int own_cgroup(const char *controllers, char **ret) {
        _cleanup_fclose_ FILE *f = fopen("/proc/self/cgroup", "re");
        char line[PATH_MAX + 64];

        if (!f)
                return -errno;
        while (fgets(line, sizeof(line), f)) {
                char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
                if (!b)
                        continue;
                *b = 0;
                if (!streq(a + 1, controllers))
                        continue;
                b[1 + strcspn(b + 1, "\n")] = 0;
                *ret = strdup(b + 1);
                return *ret ? 0 : -ENOMEM;
        }
        return -ENOENT;
}

static bool path_is_leaf(const char *path, const char *leaf) {
        const char *base = strrchr(path, '/');
        return base && streq(base + 1, leaf);
}

/* A cgroup path we may trust from a file: absolute, no "." or ".." components, no "//". */
static bool cgroup_path_valid(const char *p) {
        if (p[0] != '/' || strlen(p) >= PATH_MAX / 2 || strstr(p, "//") || strstr(p, "/./") || strstr(p, "/../") ||
            has_suffix(p, "/.") || has_suffix(p, "/.."))
                return false;
        for (const char *c = p; *c; c++)
                if ((unsigned char) *c < 0x20 || *c == 0x7f)
                        return false;
        return true;
}

static int open_cgroup(const char *mount, const char *path) {
        _cleanup_free_ char *full = NULL;
        int fd;

        if (asprintf(&full, "%s%s", mount, path) < 0)
                return -ENOMEM;
        fd = open(full, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

/* The record names a subtree this service made: ORIGIN/rpsup-NAME.PID, both valid paths. */
static bool record_names_ours(const char *root, const char *origin, const char *service_name) {
        const char *base = strrchr(root, '/');
        size_t k = strlen(origin);
        unsigned pid;
        char tail;

        if (!cgroup_path_valid(root) || !cgroup_path_valid(origin) || !base)
                return false;
        if (streq(origin, "/") ? base != root : strncmp(root, origin, k) != 0 || root + k != base)
                return false;
        base++;
        if (!has_prefix(base, "rpsup-") || !has_prefix(base + 6, service_name) || base[6 + strlen(service_name)] != '.')
                return false;
        return sscanf(base + 7 + strlen(service_name), "%u%c", &pid, &tail) == 1;
}

/* Outside systemd: the subtree an earlier rpsupd of this runtime directory made, or a new one below our
 * own cgroup. The record holds two lines: the subtree, and where rpsupd came from. */
static int tree_outside_systemd(CgroupTree *t, const char *service_name, const char *own) {
        _cleanup_free_ char *root = NULL, *origin = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        char a[PATH_MAX], b[PATH_MAX];
        int r;

        f = fopen(t->record_path, "re");
        if (f && fgets(a, sizeof(a), f) && fgets(b, sizeof(b), f)) {
                a[strcspn(a, "\n")] = b[strcspn(b, "\n")] = 0;
                if (record_names_ours(a, b, service_name) && (t->root_fd = open_cgroup(t->mount, a)) >= 0) {
                        t->path = strdup(a);
                        t->origin = strdup(b);
                        return t->path && t->origin ? 0 : -ENOMEM;
                }
                log_notice("Ignoring %s, which does not name a cgroup of this service.", t->record_path);
        }

        if (path_is_leaf(own, SUPERVISOR_LEAF))
                return -EUCLEAN; /* in some other rpsupd's leaf, with no record of it */
        if (asprintf(&root, "%s/rpsup-%s.%d", streq(own, "/") ? "" : own, service_name, (int) getpid()) < 0 ||
            !(origin = strdup(own)))
                return -ENOMEM;
        if (!cgroup_path_valid(root))
                return -EINVAL;
        _cleanup_close_ int parent = open_cgroup(t->mount, own);
        if (parent < 0)
                return parent;
        r = mkdir_and_open(parent, strrchr(root, '/') + 1, 0);
        if (r < 0)
                return r;
        t->root_fd = r;

        _cleanup_free_ char *tmp = NULL;
        _cleanup_fclose_ FILE *w = NULL;
        if (asprintf(&tmp, "%s.tmp", t->record_path) < 0)
                return -ENOMEM;
        w = fopen(tmp, "we");
        if (!w || fprintf(w, "%s\n%s\n", root, origin) < 0 || fflush(w) != 0 || rename(tmp, t->record_path) < 0) {
                r = -errno;
                (void) unlink(tmp);
                return r ?: -EIO;
        }
        t->path = TAKE_PTR(root);
        t->origin = TAKE_PTR(origin);
        return 0;
}

/* systemd marks a cgroup it delegates (Delegate=yes) with the xattr trusted.delegate (and user.delegate)
 * "1", in the hierarchy it tracks units in: name=systemd in hybrid mode, else cgroup2. Without it the
 * cgroup is not ours: rpsupd may run inside some other unit (INVOCATION_ID is inherited), whose processes
 * it must leave alone. */
static bool delegated(int fd) {
        static const char *const names[] = { "trusted.delegate", "user.delegate" };
        char v[8];

        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                ssize_t n = fgetxattr(fd, names[i], v, sizeof(v) - 1);
                if (n > 0) {
                        v[n] = 0;
                        return streq(v, "1");
                }
        }
        return false;
}

bool cgroup_own_is_delegated(void) {
        _cleanup_free_ char *own = NULL, *v1 = NULL;
        const char *mount = cgroup2_mount();
        _cleanup_close_ int fd = -EBADF, fd1 = -EBADF;

        if (mount && own_cgroup("", &own) >= 0 && (fd = open_cgroup(mount, own)) >= 0 && delegated(fd))
                return true;
        if (own_cgroup("name=systemd", &v1) >= 0 && (fd1 = open_cgroup(CGROUP_V1_SYSTEMD, v1)) >= 0 && delegated(fd1))
                return true;
        return false;
}

static int tree_under_systemd(CgroupTree *t, const char *own) {
        _cleanup_free_ char *root = strdup(own), *v1 = NULL;
        bool ours;

        if (!root)
                return -ENOMEM;
        /* Already in the leaf (re-executed): the subtree is the one above it. */
        if (path_is_leaf(root, SUPERVISOR_LEAF))
                *strrchr(root, '/') = 0;
        t->root_fd = open_cgroup(t->mount, root);
        if (t->root_fd < 0)
                return t->root_fd;
        ours = delegated(t->root_fd);
        t->path = TAKE_PTR(root);

        /* Hybrid mode: systemd tracks the service in the name=systemd hierarchy, and shows that one. */
        if (streq(t->mount, "/sys/fs/cgroup/unified") && own_cgroup("name=systemd", &v1) >= 0) {
                struct statfs fs;
                if (path_is_leaf(v1, SUPERVISOR_LEAF))
                        *strrchr(v1, '/') = 0;
                if (statfs(CGROUP_V1_SYSTEMD, &fs) == 0 && fs.f_type == CGROUP_SUPER_MAGIC)
                        t->v1_root_fd = open_cgroup(CGROUP_V1_SYSTEMD, v1);
                if (t->v1_root_fd >= 0)
                        ours = ours || delegated(t->v1_root_fd);
        }
        if (!ours)
                return -EREMOTE; /* "not delegated" */
        return 0;
}

/* Moves rpsupd into the supervisor leaf: cgroup2 lets a cgroup with children hold no processes once
 * controllers are enabled below it, and the leaf keeps rpsupd's own use apart from its workers'. */
static int enter_leaf(CgroupTree *t) {
        int r;

        if (mkdirat(t->root_fd, SUPERVISOR_LEAF, 0755) < 0 && errno != EEXIST)
                return -errno;
        r = write_at(t->root_fd, SUPERVISOR_LEAF "/cgroup.procs", "0");
        if (r < 0)
                return r;
        if (t->v1_root_fd >= 0 && (mkdirat(t->v1_root_fd, SUPERVISOR_LEAF, 0755) < 0 && errno != EEXIST ? -errno :
                                   write_at(t->v1_root_fd, SUPERVISOR_LEAF "/cgroup.procs", "0")) < 0) {
                log_debug_errno(errno, "Not mirroring the cgroups in the name=systemd hierarchy: %m");
                t->v1_root_fd = safe_close(t->v1_root_fd);
        }
        return 0;
}

int cgroup_tree_open(sd_event *e, const char *service_name, const char *runtime_dir, CgroupTree **ret) {
        _cleanup_(cgroup_tree_freep) CgroupTree *t = NULL;
        _cleanup_free_ char *own = NULL;
        const char *mount, *env = getenv("RPSUP_CGROUP");
        bool systemd = !isempty(getenv("INVOCATION_ID"));
        int r;

        *ret = NULL;
        if (env && streq(env, "no")) {
                log_info("RPSUP_CGROUP=no: workers are not placed in cgroups; what a worker leaves is ended by "
                         "process group.");
                return 0;
        }
        mount = cgroup2_mount();
        if (!mount || own_cgroup("", &own) < 0) {
                log_info("No cgroup2 hierarchy: what a worker leaves is ended by process group.");
                return 0;
        }
        if (!systemd && geteuid() != 0) {
                log_info("Not root and not under systemd: workers are not placed in cgroups; what a worker leaves "
                         "is ended by process group.");
                return 0;
        }

        t = calloc(1, sizeof(CgroupTree));
        if (!t)
                return log_oom();
        *t = (CgroupTree) { .event = sd_event_ref(e), .mount = mount, .root_fd = -EBADF, .v1_root_fd = -EBADF };
        if (!systemd && asprintf(&t->record_path, "%s/%s", runtime_dir, CGROUP_RECORD) < 0)
                return log_oom();
        r = systemd ? tree_under_systemd(t, own) : tree_outside_systemd(t, service_name, own);
        if (r >= 0)
                r = enter_leaf(t);
        if (r < 0) {
                if (systemd && r == -EREMOTE)
                        log_notice("The cgroup %s is not delegated to this service (Delegate=yes): workers are not "
                                   "placed in cgroups, and what a worker leaves is ended by process group only.", own);
                else if (systemd)
                        log_notice_errno(r, "Cannot use this service's cgroup (%s): %m. Without Delegate=yes (and "
                                         "with ProtectControlGroups=yes) workers are not placed in cgroups, and "
                                         "what a worker leaves is ended by process group only.", own);
                else
                        log_notice_errno(r, "Cannot set up a cgroup subtree below %s: %m. What a worker leaves "
                                         "is ended by process group only.", own);
                if (t->record_path && t->origin)
                        (void) unlink(t->record_path);
                return 0;
        }
        log_debug("Workers run in cgroups below %s%s.", t->path, t->v1_root_fd >= 0 ? " (mirrored in name=systemd)" : "");
        *ret = TAKE_PTR(t);
        return 0;
}

const char *cgroup_tree_path(const CgroupTree *t) {
        return t ? t->path : NULL;
}

/* ---- ending what is not supervised ---- */

static int parse_gen(const char *name, uint64_t *ret) {
        return sscanf(name, "gen-%" SCNu64, ret) == 1 ? 0 : -EINVAL;
}

static int parse_worker(const char *name, uint64_t *ret_seq) {
        unsigned index;
        return sscanf(name, "worker-%u.%" SCNu64, &index, ret_seq) == 2 ? 0 : -EINVAL;
}

/* Calls f for every cgroup (gen-G, and gen-G/worker-I.N if workers) in the subtree. */
static void for_each_cgroup(CgroupTree *t, bool workers, void (*f)(CgroupTree *t, const char *name, uint64_t gen,
                                                                   bool worker, void *ud), void *ud) {
        /* A new open file, not a dup: a dup shares the directory offset of the one before. */
        _cleanup_close_ int fd = openat(t->root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        uint64_t gen, seq;

        if (!d)
                return;
        TAKE_FD(fd);
        for (struct dirent *de; (de = readdir(d));) {
                if (de->d_type != DT_DIR || parse_gen(de->d_name, &gen) < 0)
                        continue;
                f(t, de->d_name, gen, false, ud);
                if (!workers)
                        continue;
                int gfd = openat(t->root_fd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                DIR *g = gfd >= 0 ? fdopendir(gfd) : NULL;
                if (!g) {
                        safe_close(gfd);
                        continue;
                }
                for (struct dirent *we; (we = readdir(g));) {
                        char name[2 * NAME_MAX + 8];
                        if (we->d_type != DT_DIR || parse_worker(we->d_name, &seq) < 0)
                                continue;
                        snprintf(name, sizeof(name), "%s/%s", de->d_name, we->d_name);
                        f(t, name, gen, true, ud);
                }
                closedir(g);
        }
        closedir(d);
}

typedef struct EndUnknown {
        int kill_signal;
        CgroupKnownGeneration known;
        void *userdata;
        char **adopted;           /* the adopted workers' cgroups */
        size_t n_adopted;
        unsigned ended;
        char **names;
        size_t n_names;
} EndUnknown;

static void end_if_unknown(CgroupTree *t, const char *name, uint64_t gen, bool worker, void *ud) {
        EndUnknown *e = ud;

        if (worker) {
                for (size_t i = 0; i < e->n_adopted; i++)
                        if (e->adopted[i] && streq(e->adopted[i], name))
                                return;
        } else if (e->known(e->userdata, gen))
                return;
        if (cg_populated(t->root_fd, name) == 1) {
                log_warning("Stopping the processes in cgroup %s/%s: no worker this rpsupd took over runs there.",
                            t->path, name);
                /* Asked as a worker is (KillSignal=), continued if stopped; killed after StopTimeoutSec=. */
                (void) cg_signal_tree(t->root_fd, name, e->kill_signal, 1);
                (void) cg_signal_tree(t->root_fd, name, SIGCONT, 1);
                e->ended++;
        }
        if (e->n_names < CGROUP_PENDING_REMOVALS_MAX) {
                char **a = reallocarray(e->names, e->n_names + 1, sizeof(char *));
                if (a) {
                        e->names = a;
                        if ((a[e->n_names] = strdup(name)))
                                e->n_names++;
                }
        }
}

unsigned cgroup_tree_end_unknown(CgroupTree *t, CgroupKnownGeneration known, void *userdata, const pid_t *adopted,
                                 size_t n_adopted, int kill_signal, usec_t stop_timeout) {
        EndUnknown e = { .kill_signal = kill_signal, .known = known, .userdata = userdata };
        _cleanup_fclose_ FILE *f = NULL;
        unsigned strays = 0, pid;
        int pfd;

        if (!t)
                return 0;
        e.adopted = calloc(n_adopted ?: 1, sizeof(char *));
        if (!e.adopted) {
                log_oom();
                return 0;
        }
        for (size_t i = 0; i < n_adopted; i++) {
                char name[PATH_MAX];
                if (cgroup_tree_find(t, adopted[i], name, sizeof(name)) >= 0)
                        e.adopted[i] = strdup(name);
        }
        e.n_adopted = n_adopted;
        for_each_cgroup(t, true, end_if_unknown, &e);
        /* Before the loop runs, as the other leftovers of an earlier rpsupd are ended: re-reading
         * cgroup.events until they are empty, or StopTimeoutSec= passed. Then SIGKILL. */
        if (e.ended > 0) {
                usec_t deadline = usec_add(now_usec(CLOCK_MONOTONIC), stop_timeout);
                for (;;) {
                        bool busy = false;
                        for (size_t i = 0; i < e.n_names && !busy; i++)
                                busy = cg_populated(t->root_fd, e.names[i]) == 1 &&
                                       cg_has_live(t->root_fd, e.names[i], 1);
                        if (!busy)
                                break;
                        if (now_usec(CLOCK_MONOTONIC) >= deadline) {
                                for (size_t i = 0; i < e.n_names; i++) {
                                        pid_t live;
                                        char state;
                                        if (cg_find_live(t->root_fd, e.names[i], 1, &live, &state)) {
                                                log_warning("Cgroup %s/%s did not empty within StopTimeoutSec= (process "
                                                            "%d, state %c, still runs): killed.", t->path, e.names[i],
                                                            (int) live, state);
                                                cg_kill(t->root_fd, e.names[i]);
                                        }
                                }
                                break;
                        }
                        (void) usleep(20 * USEC_PER_MSEC);
                }
        }
        /* Removed once empty, after the listing: it is not changed while it is read. */
        for (size_t i = 0; i < e.n_names; i++) {
                remove_when_empty(t, e.names[i]);
                free(e.names[i]);
        }
        free(e.names);
        for (size_t i = 0; i < n_adopted; i++)
                free(e.adopted[i]);
        free(e.adopted);

        /* The subtree's root holds only rpsupd (in its leaf) once set up: anything else is a stray, but for
         * workers an rpsupd without cgroups started there, now taken over. */
        struct stat root;
        pfd = fstat(t->root_fd, &root) < 0 ? -errno : openat(t->root_fd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
        if (pfd >= 0 && !(f = fdopen(pfd, "re")))
                safe_close(pfd);
        while (f && strays < CGROUP_KILL_PIDS_MAX && fscanf(f, "%u", &pid) == 1) {
                /* An adopted worker's session (it made one with setsid()) holds its children. */
                pid_t sid = getsid((pid_t) pid);
                bool known_pid = (pid_t) pid == getpid();
                for (size_t i = 0; i < n_adopted && !known_pid; i++)
                        known_pid = adopted[i] == (pid_t) pid || adopted[i] == sid;
                if (!known_pid && signal_member((pid_t) pid, SIGKILL, root.st_ino) >= 0)
                        strays++;
        }
        if (strays > 0)
                log_warning("Killed %u process%s left in the root of cgroup %s.", strays, strays == 1 ? "" : "es",
                            t->path);
        return e.ended + strays;
}

static void kill_one(CgroupTree *t, const char *name, uint64_t gen, bool worker, void *ud) {
        unsigned *n = ud;

        if (cg_populated(t->root_fd, name) == 1) {
                cg_kill(t->root_fd, name);
                (*n)++;
        }
}

static void remove_one(CgroupTree *t, const char *name, uint64_t gen, bool worker, void *ud) {
        bool *busy = ud;

        if (cg_populated(t->root_fd, name) == 1 || tree_remove(t, name) == -EBUSY)
                *busy = true;
}

/* A cgroup with a process that has not exited yet (a zombie does not count: see cg_has_live()). */
static void live_one(CgroupTree *t, const char *name, uint64_t gen, bool worker, void *ud) {
        bool *live = ud;

        if (!*live && cg_populated(t->root_fd, name) == 1)
                *live = cg_has_live(t->root_fd, name, 1);
}

void cgroup_tree_end_all(CgroupTree *t) {
        unsigned killed = 0;
        bool busy = false;
        usec_t deadline;

        if (!t)
                return;
        for_each_cgroup(t, false, kill_one, &killed);
        if (killed > 0)
                log_notice("Killed what workers left in %u cgroup%s of the service.", killed, killed == 1 ? "" : "s");
        /* SIGKILL has been sent: they go whether or not rpsupd waits. It waits briefly, to remove the
         * cgroups, re-reading cgroup.events (they empty within milliseconds). */
        deadline = usec_add(now_usec(CLOCK_MONOTONIC), USEC_PER_SEC);
        for (;;) {
                busy = false;
                for_each_cgroup(t, false, remove_one, &busy);
                if (!busy || now_usec(CLOCK_MONOTONIC) >= deadline)
                        break;
                (void) usleep(10 * USEC_PER_MSEC);
        }
        if (busy) {
                bool live = false;
                for_each_cgroup(t, false, live_one, &live);
                if (live)
                        log_warning("Some cgroups of the service were not empty a second after SIGKILL; they are left.");
                else
                        log_notice("Some cgroups of the service still hold processes that exited and wait to be "
                                   "reaped (by PID 1 or a subreaper); the cgroups are left.");
        }
        /* The subtree's root: what workers of an rpsupd without cgroups, taken over, left there. */
        unsigned strays = cg_signal_tree(t->root_fd, ".", SIGKILL, 0);
        if (strays > 0)
                log_notice("Killed %u process%s left in the root of cgroup %s.", strays, strays == 1 ? "" : "es", t->path);
}

CgroupTree *cgroup_tree_free(CgroupTree *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_pending; i++)
                pending_free(t->pending[i]);
        /* Outside systemd, a subtree with nothing left in it goes: rpsupd back where it came from first. */
        if (t->origin && t->root_fd >= 0) {
                bool busy = false;
                /* The generations' cgroups that are empty (after a stop: all of them). */
                for_each_cgroup(t, false, remove_one, &busy);
                _cleanup_close_ int origin = open_cgroup(t->mount, t->origin);
                if (origin >= 0 && write_at(origin, "cgroup.procs", "0") >= 0 &&
                    unlinkat(t->root_fd, SUPERVISOR_LEAF, AT_REMOVEDIR) >= 0) {
                        _cleanup_close_ int parent = -EBADF;
                        _cleanup_free_ char *dir = strdup(t->path);
                        char *slash = dir ? strrchr(dir, '/') : NULL;
                        if (slash) {
                                *slash = 0;
                                parent = open_cgroup(t->mount, dir[0] ? dir : "/");
                                if (parent >= 0 && unlinkat(parent, slash + 1, AT_REMOVEDIR) >= 0)
                                        (void) unlink(t->record_path);
                        }
                }
        }
        safe_close(t->root_fd);
        safe_close(t->v1_root_fd);
        sd_event_unref(t->event);
        free(t->path);
        free(t->origin);
        free(t->record_path);
        free(t);
        return NULL;
}
