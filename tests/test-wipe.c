/* Wiping secrets and constant-time comparison.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "e2ee-wipe.h"
#include "e2ee-test-util.h"

static gboolean
all_zero (const guint8 *p, gsize len)
{
  for (gsize i = 0; i < len; i++)
    if (p[i])
      return FALSE;
  return TRUE;
}

static void
test_wipe (void)
{
  guint8 buf[64];

  memset (buf, 0xa5, sizeof buf);
  e2ee_wipe (buf + 8, 40);
  g_assert_true (all_zero (buf + 8, 40));
  /* Only the range given. */
  for (guint i = 0; i < 8; i++)
    g_assert_cmpuint (buf[i], ==, 0xa5);
  for (guint i = 48; i < 64; i++)
    g_assert_cmpuint (buf[i], ==, 0xa5);
  e2ee_wipe (NULL, 0);
  e2ee_wipe (buf, 0);
  g_assert_cmpuint (buf[0], ==, 0xa5);
}

static void
test_secret_alloc (void)
{
  guint8 *s = e2ee_secret_alloc (32);
  guint8 *z = e2ee_secret_alloc (0);

  g_assert_nonnull (s);
  g_assert_nonnull (z);
  g_assert_true (all_zero (s, 32));
  memset (s, 0xff, 32);
  e2ee_secret_free (s, 32);
  e2ee_secret_free (z, 0);
  e2ee_secret_free (NULL, 10);
  e2ee_string_free (NULL);
  e2ee_bytes_free (NULL);
  e2ee_gstring_free (NULL);
}

static void
test_string_free (void)
{
  char *s = g_strdup ("correct horse battery staple");
  GString *gs = g_string_new ("secret text");

  e2ee_string_free (s);
  g_string_append (gs, " that grew past its first allocation, and more");
  e2ee_gstring_free (gs);
}

/* With two references, the last unref wipes; the first leaves the data. */
static void
test_bytes_free (void)
{
  guint8 *data = g_malloc (16);
  GBytes *b;

  memset (data, 0x5a, 16);
  b = g_bytes_new_take (data, 16);
  g_bytes_ref (b);
  e2ee_bytes_free (b);   /* not the last: our copy is wiped, theirs kept */
  g_assert_cmpuint (((const guint8 *) g_bytes_get_data (b, NULL))[0], ==, 0x5a);
  e2ee_bytes_free (b);
}

static void
test_ct_equal (void)
{
  guint8 a[33], b[33];

  memset (a, 7, sizeof a);
  memset (b, 7, sizeof b);
  g_assert_true (e2ee_ct_equal (a, b, sizeof a));
  g_assert_true (e2ee_ct_equal (a, b, 0));
  for (gsize i = 0; i < sizeof a; i++)
    for (guint bit = 0; bit < 8; bit++)
      {
        b[i] ^= (guint8) (1u << bit);
        g_assert_false (e2ee_ct_equal (a, b, sizeof a));
        g_assert_false (e2ee_ct_equal (b, a, sizeof a));
        b[i] ^= (guint8) (1u << bit);
      }
  /* Only the first len bytes count. */
  b[32] = 0;
  g_assert_true (e2ee_ct_equal (a, b, 32));
  g_assert_false (e2ee_ct_equal (a, b, 33));
}

/* The key arena: zeroed slots of our own pages (locked where the limit
 * allows), reused after a wiping free, ordinary memory once full or for
 * larger requests. */
static void
test_secure_arena (void)
{
  guint n = E2EE_SECURE_SLOTS + 100;
  guint8 **keys = g_new0 (guint8 *, n);
  guint8 *big = e2ee_secure_alloc (E2EE_SECURE_SLOT + 1);
  guint8 *first;
  gboolean locked = FALSE;

  g_assert_false (e2ee_secure_owns (big, NULL));
  e2ee_secure_free (big, E2EE_SECURE_SLOT + 1);
  first = e2ee_secure_alloc (32);
  g_assert_true (e2ee_secure_owns (first, &locked));
  g_test_message ("arena page locked in RAM: %s", locked ? "yes" : "no (RLIMIT_MEMLOCK)");
  for (guint i = 0; i < 32; i++)
    g_assert_cmpuint (first[i], ==, 0);
  memset (first, 0xa5, 32);
  e2ee_secure_free (first, 32);
  /* The slot comes back wiped. */
  keys[0] = e2ee_secure_alloc (32);
  g_assert_true (keys[0] == first);
  for (guint i = 0; i < 32; i++)
    g_assert_cmpuint (keys[0][i], ==, 0);
  e2ee_secure_free (keys[0], 32);
  /* Hundreds of conversations' keys, then more than the arena holds. */
  for (guint i = 0; i < n; i++)
    {
      keys[i] = e2ee_secure_alloc (32);
      memset (keys[i], (int) (i & 0xff), 32);
    }
  for (guint i = 0; i < E2EE_SECURE_SLOTS; i++)
    g_assert_true (e2ee_secure_owns (keys[i], NULL));
  for (guint i = E2EE_SECURE_SLOTS; i < n; i++)
    g_assert_false (e2ee_secure_owns (keys[i], NULL));
  for (guint i = 0; i < n; i++)
    {
      g_assert_cmpuint (keys[i][31], ==, i & 0xff);
      e2ee_secure_free (keys[i], 32);
    }
  g_free (keys);
}

int
main (int argc, char **argv)
{
  e2ee_test_init (&argc, &argv);
  g_test_add_func ("/wipe/wipe", test_wipe);
  g_test_add_func ("/wipe/secret-alloc", test_secret_alloc);
  g_test_add_func ("/wipe/string-free", test_string_free);
  g_test_add_func ("/wipe/bytes-free", test_bytes_free);
  g_test_add_func ("/wipe/ct-equal", test_ct_equal);
  g_test_add_func ("/wipe/secure-arena", test_secure_arena);
  return g_test_run ();
}
