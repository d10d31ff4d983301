/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "macro.h"
#include "strategy-kind.h"

static const char *const strategy_names[_STRATEGY_MAX] = {
        [STRATEGY_AUTO] = "auto",
        [STRATEGY_HANDOFF] = "handoff",
        [STRATEGY_DRAIN] = "drain",
        [STRATEGY_MIGRATE] = "migrate",
};

const char *strategy_kind_to_string(StrategyKind s) {
        return s >= 0 && s < _STRATEGY_MAX ? strategy_names[s] : NULL;
}

StrategyKind strategy_kind_from_string(const char *s) {
        for (int i = 0; i < _STRATEGY_MAX; i++)
                if (streq_ptr(strategy_names[i], s))
                        return (StrategyKind) i;
        return _STRATEGY_INVALID;
}
