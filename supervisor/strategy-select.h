/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Where the strategy is decided: Strategy= from the config, what the kernel allows (probe), and what the
 * listeners need (UDP cannot migrate, Unix sockets cannot be in a reuseport group). */

#include "config.h"
#include "systemd-fdstore.h"
#include "listener.h"
#include "strategy.h"

/* `running` is the strategy a previous rpsupd ran (when taking over from it), else _STRATEGY_INVALID.
 * On failure *ret_error says why the requested strategy cannot run here. */
int strategy_select(Config *c, ListenerSet *set, InheritedFds *inherited, StrategyKind running, Strategy **ret,
                    char **ret_error);
/* Whether a reloaded config can run under the current strategy; -EINVAL with a message if not. */
int strategy_check_reload(Strategy *st, Config *c, char **ret_error);
Strategy *strategy_free(Strategy *st);
/* Steering= other than round-robin needs the steering program (drain or migrate, with BPF): -EOPNOTSUPP with
 * *ret_error saying why not. */
int strategy_check_steering(Strategy *st, const Config *c, char **ret_error);
