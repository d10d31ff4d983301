#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Renders each man page given as an argument with groff and fails if groff prints anything (a warning
# or an error).
status=0
for page in "$@"; do
        out=$(groff -man -Tutf8 -ww -z "$page" 2>&1 >/dev/null)
        if [ $? -ne 0 ] || [ -n "$out" ]; then
                printf '%s:\n%s\n' "$page" "$out" >&2
                status=1
        else
                echo "$page: OK"
        fi
done
exit $status
