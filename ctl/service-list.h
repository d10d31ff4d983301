/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The rpsup services of a host: the directories under the runtime directory (/run/rpsup) that hold a control
 * socket. */

/* The names, sorted, as a NULL-terminated array (empty if the directory does not exist). Returns the number
 * of names or a negative errno (the directory cannot be read). */
int service_list(const char *runtime_dir, char ***ret);
