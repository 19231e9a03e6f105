/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <gcrypt.h>

#include "e2ee-error.h"
#include "e2ee-gcrypt.h"

#define E2EE_GCRYPT_MIN_VERSION "1.8.0"

gboolean
e2ee_gcrypt_init (GError **error)
{
  static gsize done = 0;
  static gboolean ok = FALSE;

  if (g_once_init_enter (&done))
    {
      /* A library must not decide process-wide libgcrypt settings: when the
       * host already initialised it we keep its choices (secure memory,
       * thread callbacks) and only check the version. */
      if (gcry_control (GCRYCTL_INITIALIZATION_FINISHED_P))
        ok = gcry_check_version (E2EE_GCRYPT_MIN_VERSION) != NULL;
      else
        {
          ok = gcry_check_version (E2EE_GCRYPT_MIN_VERSION) != NULL
               && gcry_control (GCRYCTL_INITIALIZATION_FINISHED, 0) == 0;
        }
      g_once_init_leave (&done, 1);
    }

  if (!ok)
    g_set_error (error, E2EE_ERROR, E2EE_ERROR_CRYPTO,
                 "libgcrypt %s or newer is required", E2EE_GCRYPT_MIN_VERSION);
  return ok;
}
