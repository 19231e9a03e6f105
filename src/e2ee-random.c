/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <gcrypt.h>

#include "e2ee-random.h"

/* Defined only by tests/e2ee-test-rng.h.  Hidden and weak: unresolved in
 * every production link, where its address is NULL. */
extern E2eeRandomOverride e2ee_test_random_override
  __attribute__ ((weak, visibility ("hidden")));

extern E2eeKeyLogOverride e2ee_test_key_log_override
  __attribute__ ((weak, visibility ("hidden")));

void
e2ee_key_log (const char *what, const guint8 *key, gsize len)
{
  if (&e2ee_test_key_log_override != NULL && e2ee_test_key_log_override.hook != NULL)
    e2ee_test_key_log_override.hook (what, key, len, e2ee_test_key_log_override.user_data);
}

void
e2ee_random_bytes (guint8 *out, gsize len, E2eeRandomKind kind)
{
  if (len == 0)
    return;
  if (&e2ee_test_random_override != NULL && e2ee_test_random_override.hook != NULL)
    {
      e2ee_test_random_override.hook (out, len, kind, e2ee_test_random_override.user_data);
      return;
    }
  if (kind == E2EE_RANDOM_NONCE)
    gcry_create_nonce (out, len);
  else
    gcry_randomize (out, len, kind == E2EE_RANDOM_LONG_TERM ? GCRY_VERY_STRONG_RANDOM
                                                            : GCRY_STRONG_RANDOM);
}
