/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "macro.h"

/* Whether one of the path's components is "..". */
bool path_has_dot_dot(const char *p);
/* Textual clean-up in place, as systemd's path_simplify(): duplicate slashes become one, "." components
 * and trailing slashes go ("//a/./b/" is "/a/b"). ".." is left alone: resolving it needs the file system. */
char *path_simplify(char *p);
