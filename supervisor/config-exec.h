/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* ExecStart= command lines, with systemd's rules: words split on whitespace; "double" and 'single'
 * quotes group; C escapes (\n, \t, \\, \", \xNN, \NNN, \s for a space) are decoded; %% and %i (the
 * service name) are specifiers. At spawn time, $NAME as a whole word expands to the value of NAME split
 * on whitespace, ${NAME} expands in place within a word, and $$ is a literal $. */

#include "macro.h"

/* Splits `line` into words with the quoting, escape and specifier rules above (for Environment=). */
int words_split(const char *line, const char *instance, char ***ret_words, char **ret_error);

/* Splits a command line: at least one word, and no systemd command prefix. */
/* Splits `line` into words. On failure returns -EINVAL and sets *ret_error to a description of what
 * is wrong (caller frees). */
int exec_line_split(const char *line, const char *instance, char ***ret_words, char **ret_error);

/* Expands $NAME / ${NAME} / $$ in `words` against the environment block `env`. */
int exec_argv_expand(char *const *words, char *const *env, char ***ret_argv);
