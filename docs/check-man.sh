#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Renders each man page given as an argument with groff and fails if groff prints anything (a warning
# or an error); where mandoc is installed, its linter must have nothing to say either (style included).
status=0
for page in "$@"; do
        out=$(groff -man -Tutf8 -ww -z "$page" 2>&1 >/dev/null)
        if [ $? -ne 0 ] || [ -n "$out" ]; then
                printf '%s:\n%s\n' "$page" "$out" >&2
                status=1
                continue
        fi
        if command -v mandoc >/dev/null; then
                out=$(mandoc -T lint -W style "$page" 2>&1)
                if [ -n "$out" ]; then
                        printf '%s (mandoc -T lint):\n%s\n' "$page" "$out" >&2
                        status=1
                        continue
                fi
        fi
        echo "$page: OK"
done
exit $status
