/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The names of the strategies (Strategy= in the config, "strategy" in status). */

#include <errno.h>

typedef enum StrategyKind {
        STRATEGY_AUTO,
        STRATEGY_HANDOFF,
        STRATEGY_DRAIN,
        STRATEGY_MIGRATE,
        _STRATEGY_MAX,
        _STRATEGY_INVALID = -EINVAL,
} StrategyKind;

const char *strategy_kind_to_string(StrategyKind s);
StrategyKind strategy_kind_from_string(const char *s);
