/* purple-e2ee — libgcrypt set-up inside a host process.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Makes sure libgcrypt is usable.  If the host (Pidgin, Finch, GnuTLS)
 * already finished initialisation, this only checks the version; else it
 * initialises libgcrypt itself, without touching allocation hooks.
 * Idempotent and thread-safe.  Returns FALSE with E2EE_ERROR_CRYPTO if the
 * library is older than we need. */
gboolean e2ee_gcrypt_init (GError **error);

G_END_DECLS
