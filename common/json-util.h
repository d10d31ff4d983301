/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* json-c objects freed by scope, for the programs that link json-c (rpsupctl, rpsup-load). Header only:
 * the common library itself does not depend on json-c. */

#include <json-c/json.h>

#include "macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);
#define _cleanup_json_ _cleanup_(json_object_putp)
