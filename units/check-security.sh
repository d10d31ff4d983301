#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The hardening of the generated unit, as systemd scores it: fails if the overall exposure of
# "systemd-analyze security" is above MAX (4.0 unless given). Prints the score and what is exposed. Exits 77
# (skipped) without systemd-analyze, unless RPSUP_REQUIRE_PRIVILEGED=1.
unit=$1
max=${2:-4.0}
if ! command -v systemd-analyze >/dev/null; then
        if [ "$RPSUP_REQUIRE_PRIVILEGED" = 1 ]; then
                echo "FAIL: systemd-analyze is not installed, and RPSUP_REQUIRE_PRIVILEGED=1" >&2
                exit 1
        fi
        echo "SKIP: systemd-analyze is not installed (Debian package systemd)"
        exit 77
fi
# --offline: the unit file as it is, no running systemd needed. --threshold takes tenths.
out=$(systemd-analyze security --offline=true --no-pager --threshold="$(echo "$max" | tr -d .)" "$unit" 2>&1)
status=$?
printf '%s\n' "$out" | grep -v '✓'
score=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\) .*/\1/p')
if [ -z "$score" ]; then
        echo "FAIL: no overall exposure level in systemd-analyze's output" >&2
        exit 1
fi
if [ $status -ne 0 ]; then
        echo "FAIL: $unit scores $score, above $max" >&2
        exit 1
fi
echo "$unit: exposure $score (at most $max)"
