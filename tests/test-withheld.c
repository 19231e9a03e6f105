/* The withheld-message store: bounds, order, selection.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "e2ee-test-util.h"
#include "e2ee-withheld.h"

static gboolean
kid_is (const char *kid, gpointer data)
{
  return strcmp (kid, data) == 0;
}

/* 16 per conversation and 256 in all, the oldest dropped first. */
static void
test_bounds (void)
{
  g_autoptr (E2eeWithheld) w = e2ee_withheld_new (E2EE_WITHHELD_PER_BUDDY, E2EE_WITHHELD_TOTAL);
  g_autoptr (GPtrArray) got = NULL;
  guint dropped = 0;

  for (guint i = 0; i < 20; i++)
    dropped += e2ee_withheld_add (w, "a\nb\nbob", "kid1", g_strdup_printf ("m%u", i), i);
  g_assert_cmpuint (dropped, ==, 4);
  g_assert_cmpuint (e2ee_withheld_count (w, "a\nb\nbob"), ==, 16);
  for (guint c = 0; c < 40; c++)
    for (guint i = 0; i < 10; i++)
      {
        g_autofree char *conv = g_strdup_printf ("a\nb\nbuddy%u", c);
        e2ee_withheld_add (w, conv, "k", g_strdup ("x"), 100 + c);
      }
  g_assert_cmpuint (e2ee_withheld_count (w, NULL), ==, E2EE_WITHHELD_TOTAL);
  /* Bob's were the oldest: the flood of others pushed them out first. */
  g_assert_cmpuint (e2ee_withheld_count (w, "a\nb\nbob"), ==, 0);
  got = e2ee_withheld_take (w, "a\nb\nbuddy39", NULL, NULL);
  g_assert_cmpuint (got->len, ==, 10);
  g_assert_cmpuint (e2ee_withheld_count (w, NULL), ==, E2EE_WITHHELD_TOTAL - 10);
}

/* take() hands out only the chosen devices' messages, oldest first. */
static void
test_take_order (void)
{
  g_autoptr (E2eeWithheld) w = e2ee_withheld_new (16, 256);
  g_autoptr (GPtrArray) got = NULL;

  e2ee_withheld_add (w, "c", "good", g_strdup ("one"), 1);
  e2ee_withheld_add (w, "c", "bad", g_strdup ("evil"), 2);
  e2ee_withheld_add (w, "c", "good", g_strdup ("two"), 3);
  e2ee_withheld_add (w, "other", "good", g_strdup ("elsewhere"), 4);
  got = e2ee_withheld_take (w, "c", kid_is, (gpointer) "good");
  g_assert_cmpuint (got->len, ==, 2);
  g_assert_cmpstr (((E2eeWithheldMessage *) got->pdata[0])->plaintext, ==, "one");
  g_assert_cmpstr (((E2eeWithheldMessage *) got->pdata[1])->plaintext, ==, "two");
  g_assert_cmpint (((E2eeWithheldMessage *) got->pdata[1])->received, ==, 3);
  g_assert_cmpuint (e2ee_withheld_count (w, "c"), ==, 1);
  g_assert_cmpuint (e2ee_withheld_count (w, "other"), ==, 1);
}

int
main (int argc, char **argv)
{
  e2ee_test_init (&argc, &argv);
  g_test_add_func ("/withheld/bounds", test_bounds);
  g_test_add_func ("/withheld/take-order", test_take_order);
  return g_test_run ();
}
