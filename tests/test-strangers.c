/* The strangers' key-set cache: bounded, least recently used out first.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include "e2ee-jwk.h"
#include "e2ee-strangers.h"
#include "e2ee-test-util.h"

static void
test_lru (void)
{
  g_autoptr (E2eeStrangers) s = e2ee_strangers_new (E2EE_STRANGERS_MAX);
  g_autoptr (GPtrArray) keys = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_key_unref);
  g_autoptr (E2eeKey) key = e2ee_key_generate (NULL);
  GPtrArray *got;

  g_ptr_array_add (keys, e2ee_key_public_copy (key));
  for (guint i = 0; i < 2000; i++)
    {
      g_autofree char *conv = g_strdup_printf ("p\na\nnick%u", i);
      e2ee_strangers_put (s, conv, keys);
      if (i == 10)
        e2ee_strangers_put (s, "p\na\nnick0", keys); /* used again: stays a while */
      g_assert_cmpuint (e2ee_strangers_size (s), <=, E2EE_STRANGERS_MAX);
    }
  g_assert_cmpuint (e2ee_strangers_size (s), ==, E2EE_STRANGERS_MAX);
  g_assert_false (e2ee_strangers_contains (s, "p\na\nnick0"));
  g_assert_false (e2ee_strangers_contains (s, "p\na\nnick1935"));
  g_assert_true (e2ee_strangers_contains (s, "p\na\nnick1936"));
  got = e2ee_strangers_take (s, "p\na\nnick1999");
  g_assert_nonnull (got);
  g_assert_cmpuint (got->len, ==, 1);
  g_ptr_array_unref (got);
  g_assert_null (e2ee_strangers_take (s, "p\na\nnick1999"));
  g_assert_cmpuint (e2ee_strangers_size (s), ==, E2EE_STRANGERS_MAX - 1);
  e2ee_strangers_remove (s, "p\na\nnick1998");
  g_assert_false (e2ee_strangers_contains (s, "p\na\nnick1998"));

  /* Recently used survives: put nick0 back, fill 63 more, it is still there. */
  e2ee_strangers_put (s, "p\na\nnick0", keys);
  for (guint i = 0; i < E2EE_STRANGERS_MAX - 1; i++)
    {
      g_autofree char *conv = g_strdup_printf ("p\na\nlate%u", i);
      e2ee_strangers_put (s, conv, keys);
    }
  g_assert_true (e2ee_strangers_contains (s, "p\na\nnick0"));
}

int
main (int argc, char **argv)
{
  e2ee_test_init (&argc, &argv);
  g_test_add_func ("/strangers/lru", test_lru);
  return g_test_run ();
}
