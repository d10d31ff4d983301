/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "listener.h"
#include "strategy.h"

int strategy_handoff_new(ListenerSet *set, const char *reason, Strategy **ret);
