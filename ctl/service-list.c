/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <sys/stat.h>

#include "rpsup-protocol.h"
#include "service-list.h"
#include "strv.h"

int service_list(const char *runtime_dir, char ***ret) {
        _cleanup_strv_free_ char **names = NULL;
        struct dirent **entries = NULL;
        int n, r = 0, found = 0;

        n = scandir(runtime_dir, &entries, NULL, alphasort);
        if (n < 0 && errno != ENOENT)
                return -errno;
        for (int i = 0; i < n; i++) {
                _cleanup_free_ char *path = NULL;
                struct stat st;

                if (r >= 0 && entries[i]->d_name[0] != '.' &&
                    rpsup_control_path(runtime_dir, entries[i]->d_name, &path) >= 0 && stat(path, &st) >= 0 &&
                    S_ISSOCK(st.st_mode)) {
                        r = strv_extend(&names, entries[i]->d_name);
                        found++;
                }
                free(entries[i]);
        }
        free(entries);
        if (r < 0)
                return r;
        if (!names) {
                names = calloc(1, sizeof(char *));
                if (!names)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(names);
        return found;
}
