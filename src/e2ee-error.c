/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "e2ee-error.h"

G_DEFINE_QUARK (purple-e2ee-error-quark, e2ee_error)
