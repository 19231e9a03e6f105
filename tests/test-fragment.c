/* Unit tests for src/e2ee-fragment.c.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>
#include <string.h>

#include "e2ee-error.h"
#include "e2ee-fragment.h"
#include "e2ee-test-util.h"

static const char armor_alphabet[] =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Armor-like text: prefix plus random base64url. */
static char *
random_armor (gsize len)
{
  char *s = g_malloc (len + 1);

  for (gsize i = 0; i < len; i++)
    s[i] = armor_alphabet[g_test_rand_int_range (0, 64)];
  if (len >= 5)
    memcpy (s, "?E2E:", 5);
  s[len] = '\0';
  return s;
}

static void
shuffle (char **v, guint n)
{
  for (guint i = n; i > 1; i--)
    {
      guint j = (guint) g_test_rand_int_range (0, (gint32) i);
      char *t = v[i - 1];
      v[i - 1] = v[j];
      v[j] = t;
    }
}

/* Checks the syntax of one piece independently of the parser under test
 * and returns its id, index and count. */
static void
check_piece_syntax (const char *piece, gsize budget, char id[9], guint *index,
                    guint *n)
{
  g_auto (GStrv) parts = NULL;

  g_assert_cmpuint (strlen (piece), <=, budget);
  g_assert_true (g_str_has_prefix (piece, E2EE_FRAGMENT_PREFIX));
  parts = g_strsplit (piece + strlen (E2EE_FRAGMENT_PREFIX), ":", 3);
  g_assert_cmpuint (g_strv_length (parts), ==, 3);
  g_assert_cmpuint (strlen (parts[0]), ==, 8);
  for (int i = 0; i < 8; i++)
    g_assert_true (g_ascii_isdigit (parts[0][i])
                   || (parts[0][i] >= 'a' && parts[0][i] <= 'f'));
  memcpy (id, parts[0], 9);
  g_assert_cmpint (sscanf (parts[1], "%u/%u", index, n), ==, 2);
  g_assert_cmpint (parts[1][0], !=, '0');
  g_assert_cmpint (strchr (parts[1], '/')[1], !=, '0');
  g_assert_cmpuint (*index, >=, 1);
  g_assert_cmpuint (*index, <=, *n);
  g_assert_cmpuint (*n, <=, E2EE_FRAGMENT_MAX_PIECES);
  g_assert_cmpuint (strlen (parts[2]), >, 0);
}

static void
test_split_fits (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *text = random_armor (400);
  g_auto (GStrv) v = e2ee_fragment_split (text, 400, &error);

  g_assert_no_error (error);
  g_assert_cmpuint (g_strv_length (v), ==, 1);
  g_assert_cmpstr (v[0], ==, text);

  /* Short and empty texts, even with characters a fragment could not hold. */
  g_strfreev (v);
  v = e2ee_fragment_split ("hi \xc3\xa9\n", 32, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_strv_length (v), ==, 1);
  g_assert_cmpstr (v[0], ==, "hi \xc3\xa9\n");
  g_strfreev (v);
  v = e2ee_fragment_split ("", 32, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_strv_length (v), ==, 1);
  g_assert_cmpstr (v[0], ==, "");
}

static void
roundtrip_once (gsize budget, gsize len)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (E2eeReassembler) r = e2ee_reassembler_new (4, 16, 128 * 1024, 60);
  g_autofree char *text = random_armor (len);
  g_auto (GStrv) v = e2ee_fragment_split (text, budget, &error);
  char id0[9] = "";
  guint n0 = 0, count;
  gsize total = 0;
  gboolean *seen;

  g_assert_no_error (error);
  g_assert_nonnull (v);
  count = g_strv_length (v);
  g_assert_cmpuint (count, >=, 2);
  seen = g_new0 (gboolean, count + 1);
  for (guint i = 0; i < count; i++)
    {
      char id[9];
      guint index, n;

      check_piece_syntax (v[i], budget, id, &index, &n);
      g_assert_true (e2ee_fragment_detect (v[i]));
      if (i == 0)
        {
          memcpy (id0, id, 9);
          n0 = n;
        }
      g_assert_cmpstr (id, ==, id0);
      g_assert_cmpuint (n, ==, n0);
      g_assert_cmpuint (index, ==, i + 1);
      g_assert_false (seen[index]);
      seen[index] = TRUE;
      total += strlen (strchr (strchr (v[i] + 5, ':') + 1, ':') + 1);
    }
  g_assert_cmpuint (n0, ==, count);
  g_assert_cmpuint (total, ==, len);
  g_free (seen);

  shuffle (v, count);
  for (guint i = 0; i < count; i++)
    {
      g_autofree char *complete = NULL;

      g_assert_true (e2ee_reassembler_add (r, "acct\nbob", v[i], 1000, &complete, &error));
      g_assert_no_error (error);
      if (i + 1 < count)
        {
          g_assert_null (complete);
          g_assert_cmpuint (e2ee_reassembler_pending (r, "acct\nbob"), ==, 1);
        }
      else
        g_assert_cmpstr (complete, ==, text);
    }
  g_assert_cmpuint (e2ee_reassembler_pending (r, NULL), ==, 0);
  g_assert_cmpuint (e2ee_reassembler_buffered_bytes (r), ==, 0);
}

static void
test_split_roundtrip (void)
{
  for (gsize budget = E2EE_FRAGMENT_MIN_BUDGET; budget <= 400; budget++)
    {
      /* Largest text that fits: 256 pieces with a three-digit header. */
      gsize max_len = (budget - 22) * E2EE_FRAGMENT_MAX_PIECES;
      gsize len = (gsize) g_test_rand_int_range ((gint32) budget + 1,
                                                  (gint32) MIN (max_len, 6000) + 1);
      roundtrip_once (budget, len);
      roundtrip_once (budget, budget + 1);
    }
}

static void
test_split_limits (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *big = random_armor ((400 - 22) * E2EE_FRAGMENT_MAX_PIECES + 1);
  char **v;

  v = e2ee_fragment_split ("x", E2EE_FRAGMENT_MIN_BUDGET - 1, &error);
  g_assert_null (v);
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_FRAGMENT_BUDGET);
  g_clear_error (&error);

  v = e2ee_fragment_split (big, 400, &error);
  g_assert_null (v);
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_FRAGMENT_BUDGET);
  g_clear_error (&error);

  /* One byte less is exactly the maximum number of pieces. */
  big[strlen (big) - 1] = '\0';
  v = e2ee_fragment_split (big, 400, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_strv_length (v), ==, E2EE_FRAGMENT_MAX_PIECES);
  g_assert_nonnull (strstr (v[0], ":1/256:"));
  g_assert_nonnull (strstr (v[255], ":256/256:"));
  g_strfreev (v);

  /* Nine pieces keep single-digit headers; a tenth needs wider ones. */
  {
    g_autofree char *nine = random_armor (9 * (40 - 18));
    g_autofree char *more = random_armor (9 * (40 - 18) + 1);
    g_auto (GStrv) a = e2ee_fragment_split (nine, 40, &error);
    g_auto (GStrv) b = NULL;

    g_assert_no_error (error);
    g_assert_cmpuint (g_strv_length (a), ==, 9);
    b = e2ee_fragment_split (more, 40, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (g_strv_length (b), ==, 10);
    for (guint i = 0; b[i]; i++)
      g_assert_cmpuint (strlen (b[i]), <=, 40);
  }
}

static void
test_split_rejects_unprintable (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *text = random_armor (100);
  char **v;

  text[50] = '\n';
  v = e2ee_fragment_split (text, 40, &error);
  g_assert_null (v);
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_FRAGMENT);
  g_clear_error (&error);
  text[50] = (char) 0xc3;
  v = e2ee_fragment_split (text, 40, &error);
  g_assert_null (v);
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_FRAGMENT);
}

static void
test_split_ids_differ (void)
{
  g_autofree char *text = random_armor (200);
  g_auto (GStrv) a = e2ee_fragment_split (text, 64, NULL);
  g_auto (GStrv) b = e2ee_fragment_split (text, 64, NULL);

  g_assert_nonnull (a);
  g_assert_nonnull (b);
  /* Equal ids have probability 2^-32. */
  g_assert_false (strncmp (a[0], b[0], 13) == 0);
}

static void
test_detect (void)
{
  g_assert_true (e2ee_fragment_detect ("?E2F:"));
  g_assert_true (e2ee_fragment_detect (" \t\n?E2F:0000000a:1/2:x"));
  g_assert_false (e2ee_fragment_detect ("?E2E:abc"));
  g_assert_false (e2ee_fragment_detect ("x?E2F:0000000a:1/2:x"));
  g_assert_false (e2ee_fragment_detect ("?e2f:0000000a:1/2:x"));
  g_assert_false (e2ee_fragment_detect ("?E2F"));
  g_assert_false (e2ee_fragment_detect (""));
  g_assert_false (e2ee_fragment_detect (NULL));
}

static void
add_ok (E2eeReassembler *r, const char *key, const char *frag, gint64 now,
        const char *expect_complete)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *complete = NULL;

  g_assert_true (e2ee_reassembler_add (r, key, frag, now, &complete, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (complete, ==, expect_complete);
}

static void
add_fails (E2eeReassembler *r, const char *key, const char *frag, gint64 now,
           gint code)
{
  g_autoptr (GError) error = NULL;
  char *complete = (char *) "sentinel";
  guint before_key = e2ee_reassembler_pending (r, key);
  guint before_all = e2ee_reassembler_pending (r, NULL);
  gsize before_bytes = e2ee_reassembler_buffered_bytes (r);

  if (g_test_verbose ())
    g_test_message ("expect %d: %s", code, frag);
  g_assert_false (e2ee_reassembler_add (r, key, frag, now, &complete, &error));
  g_assert_error (error, E2EE_ERROR, code);
  g_assert_null (complete);
  /* A refused fragment changes nothing. */
  g_assert_cmpuint (e2ee_reassembler_pending (r, key), ==, before_key);
  g_assert_cmpuint (e2ee_reassembler_pending (r, NULL), ==, before_all);
  g_assert_cmpuint (e2ee_reassembler_buffered_bytes (r), ==, before_bytes);
}

static void
test_reject_malformed (void)
{
  static const char *const bad[] = {
    "hello",
    "",
    "?E2F:",
    "?E2F:0123abc:1/2:abc",             /* short id */
    "?E2F:0123abcde:1/2:abc",           /* long id */
    "?E2F:0123abcg:1/2:abc",            /* not hex */
    "?E2F:0123ABCD:1/2:abc",            /* upper case */
    "?E2F:0123abcd;1/2:abc",
    "?E2F:0123abcd::1/2:abc",
    "?E2F:0123abcd:01/2:abc",           /* leading zeros */
    "?E2F:0123abcd:1/02:abc",
    "?E2F:0123abcd:001/2:abc",
    "?E2F:0123abcd:0/2:abc",            /* out of range */
    "?E2F:0123abcd:1/0:abc",
    "?E2F:0123abcd:3/2:abc",
    "?E2F:0123abcd:1/257:abc",
    "?E2F:0123abcd:257/257:abc",
    "?E2F:0123abcd:1/1000:abc",
    "?E2F:0123abcd:1/4294967298:abc",   /* overflow */
    "?E2F:0123abcd:4294967297/2:abc",
    "?E2F:0123abcd:18446744073709551617/2:abc",
    "?E2F:0123abcd:+1/2:abc",           /* signs */
    "?E2F:0123abcd:-1/2:abc",
    "?E2F:0123abcd:1/+2:abc",
    "?E2F:0123abcd:1/-2:abc",
    "?E2F:0123abcd: 1/2:abc",           /* stray spaces */
    "?E2F:0123abcd:1 /2:abc",
    "?E2F:0123abcd:1/2 :abc",
    "?E2F:0123abcd:1/:abc",             /* missing numbers */
    "?E2F:0123abcd:/2:abc",
    "?E2F:0123abcd:1/2",                /* missing chunk */
    "?E2F:0123abcd:1/2:",               /* empty chunk */
    "?E2F:0123abcd:12:abc",
    "?E2F:0123abcd:1/2:ab\001c",        /* control characters */
    "?E2F:0123abcd:1/2:ab\ncd",
    "?E2F:0123abcd:1/2:abc\r\n",
    "?E2F:0123abcd:1/2:abc\t",
    "?E2F:0123abcd:1/2:abc\177",
    "?E2F:0123abcd:1/2:ab\xc3\xa9",     /* non-ASCII */
    "?E2F:0123abcd:1/2:\xff",
    "?E2F:0123abcd:\xd9\xa1/2:abc",     /* non-ASCII digit */
  };
  g_autoptr (E2eeReassembler) r = e2ee_reassembler_new (4, 16, 4096, 60);

  /* A message in progress must survive every refusal. */
  add_ok (r, "k", "?E2F:99999999:1/2:AAA", 10, NULL);
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    add_fails (r, "k", bad[i], 10, E2EE_ERROR_FRAGMENT);
  add_ok (r, "k", "?E2F:99999999:2/2:BBB", 10, "AAABBB");

  /* Leading whitespace is allowed, as detect() allows it. */
  add_ok (r, "k", " \n\t?E2F:00000000:1/1:x y", 10, "x y");
  add_ok (r, "k", "?E2F:ffffffff:256/256:z", 10, NULL);
}

static void
test_reject_inconsistent (void)
{
  g_autoptr (E2eeReassembler) r = e2ee_reassembler_new (4, 16, 4096, 60);

  add_ok (r, "k", "?E2F:0000cafe:1/3:aaa", 1, NULL);
  /* Another n for the same id. */
  add_fails (r, "k", "?E2F:0000cafe:2/4:bbb", 1, E2EE_ERROR_FRAGMENT);
  add_fails (r, "k", "?E2F:0000cafe:2/2:bbb", 1, E2EE_ERROR_FRAGMENT);
  /* The same piece again is a harmless repeat... */
  add_ok (r, "k", "?E2F:0000cafe:1/3:aaa", 1, NULL);
  g_assert_cmpuint (e2ee_reassembler_buffered_bytes (r), ==, 3);
  /* ...but with other content it is refused. */
  add_fails (r, "k", "?E2F:0000cafe:1/3:aab", 1, E2EE_ERROR_FRAGMENT);
  add_fails (r, "k", "?E2F:0000cafe:1/3:aaaa", 1, E2EE_ERROR_FRAGMENT);
  add_ok (r, "k", "?E2F:0000cafe:3/3:ccc", 1, NULL);
  add_fails (r, "k", "?E2F:0000cafe:3/3:cc", 1, E2EE_ERROR_FRAGMENT);
  /* The same id in another conversation is another message. */
  add_ok (r, "k2", "?E2F:0000cafe:2/2:yy", 1, NULL);
  add_ok (r, "k", "?E2F:0000cafe:2/3:bbb", 1, "aaabbbccc");
  add_ok (r, "k2", "?E2F:0000cafe:1/2:xx", 1, "xxyy");
  g_assert_cmpuint (e2ee_reassembler_pending (r, NULL), ==, 0);
}

static void
test_limit_per_key (void)
{
  g_autoptr (E2eeReassembler) r = e2ee_reassembler_new (2, 16, 4096, 60);

  add_ok (r, "alice", "?E2F:00000001:1/2:a1", 5, NULL);
  add_ok (r, "alice", "?E2F:00000002:1/2:b1", 5, NULL);
  add_fails (r, "alice", "?E2F:00000003:1/2:c1", 5, E2EE_ERROR_FRAGMENT_LIMIT);
  g_assert_cmpuint (e2ee_reassembler_pending (r, "alice"), ==, 2);
  /* Another conversation is not affected. */
  add_ok (r, "bob", "?E2F:00000003:1/2:c1", 5, NULL);
  g_assert_cmpuint (e2ee_reassembler_pending (r, "bob"), ==, 1);
  /* Pieces of messages already pending still go in. */
  add_ok (r, "alice", "?E2F:00000001:2/2:a2", 5, "a1a2");
  /* And a slot freed by completion can be used again. */
  add_ok (r, "alice", "?E2F:00000003:1/2:c1", 5, NULL);
  add_ok (r, "alice", "?E2F:00000002:2/2:b2", 5, "b1b2");
  add_ok (r, "alice", "?E2F:00000003:2/2:c2", 5, "c1c2");
  add_ok (r, "bob", "?E2F:00000003:2/2:c2", 5, "c1c2");
  g_assert_cmpuint (e2ee_reassembler_pending (r, NULL), ==, 0);
}

static void
test_limit_total (void)
{
  g_autoptr (E2eeReassembler) r = e2ee_reassembler_new (4, 3, 4096, 60);

  add_ok (r, "a", "?E2F:00000001:1/2:x", 0, NULL);
  add_ok (r, "a", "?E2F:00000002:1/2:x", 0, NULL);
  add_ok (r, "b", "?E2F:00000001:1/2:y", 0, NULL);
  add_fails (r, "c", "?E2F:00000001:1/2:z", 0, E2EE_ERROR_FRAGMENT_LIMIT);
  add_fails (r, "a", "?E2F:00000003:1/2:z", 0, E2EE_ERROR_FRAGMENT_LIMIT);
  g_assert_cmpuint (e2ee_reassembler_pending (r, "c"), ==, 0);
  add_ok (r, "b", "?E2F:00000001:2/2:Y", 0, "yY");
  add_ok (r, "c", "?E2F:00000001:1/2:z", 0, NULL);
  add_ok (r, "a", "?E2F:00000002:2/2:X", 0, "xX");
  add_ok (r, "a", "?E2F:00000001:2/2:X", 0, "xX");
  add_ok (r, "c", "?E2F:00000001:2/2:Z", 0, "zZ");
}

static void
test_limit_bytes (void)
{
  g_autoptr (E2eeReassembler) r = e2ee_reassembler_new (4, 16, 10, 60);

  add_fails (r, "k", "?E2F:00000001:1/2:12345678901", 0, E2EE_ERROR_FRAGMENT_LIMIT);
  g_assert_cmpuint (e2ee_reassembler_pending (r, "k"), ==, 0);
  add_ok (r, "k", "?E2F:00000001:1/3:123456", 0, NULL);
  add_ok (r, "k", "?E2F:00000001:2/3:789", 0, NULL);
  add_fails (r, "k", "?E2F:00000001:3/3:ab", 0, E2EE_ERROR_FRAGMENT_LIMIT);
  add_ok (r, "k", "?E2F:00000001:3/3:a", 0, "123456789a");
  add_ok (r, "k", "?E2F:00000002:1/1:1234567890", 0, "1234567890");
}

static void
test_flood_isolated (void)
{
  g_autoptr (E2eeReassembler) r = e2ee_reassembler_new (4, 8, 4096, 60);
  g_autofree char *text = random_armor (3000);
  g_auto (GStrv) v = e2ee_fragment_split (text, 400, NULL);
  guint n = g_strv_length (v), refused = 0;

  g_assert_cmpuint (n, >, 2);
  add_ok (r, "victim", v[0], 100, NULL);
  for (guint i = 0; i < 20000; i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *complete = NULL;
      g_autofree char *frag = NULL;
      guint32 id = g_test_rand_int ();
      guint total = (guint) g_test_rand_int_range (2, 257);
      g_autofree char *chunk = random_armor ((gsize) g_test_rand_int_range (1, 400));

      frag = g_strdup_printf ("?E2F:%08x:%u/%u:%s", id, 1 + (guint) g_test_rand_int_range (0, (gint32) total),
                              total, chunk);
      if (!e2ee_reassembler_add (r, "attacker", frag, 100 + i / 1000, &complete, &error))
        {
          g_assert_error (error, E2EE_ERROR, E2EE_ERROR_FRAGMENT_LIMIT);
          refused++;
        }
      g_assert_cmpuint (e2ee_reassembler_pending (r, "attacker"), <=, 4);
      g_assert_cmpuint (e2ee_reassembler_pending (r, NULL), <=, 8);
      g_assert_cmpuint (e2ee_reassembler_buffered_bytes (r), <=, 8 * 4096);
      /* Midway, the victim keeps sending pieces of its message. */
      if (i % 5000 == 4999 && i / 5000 + 1 < n - 1)
        add_ok (r, "victim", v[i / 5000 + 1], 100 + i / 1000, NULL);
    }
  g_assert_cmpuint (refused, >, 19000);
  for (guint i = 4; i < n; i++)
    add_ok (r, "victim", v[i], 119, i + 1 == n ? text : NULL);
  g_assert_cmpuint (e2ee_reassembler_pending (r, "victim"), ==, 0);
}

/* Fair mode: 16 names of one sender fill the global cap; the victim's
 * message in progress is never evicted, and it can even start one while
 * the cap is full (the largest offender loses its oldest buffer).  In the
 * default mode the same flood refuses the victim's message. */
static void
cycling_nicks (gboolean fair)
{
  g_autoptr (E2eeReassembler) r = e2ee_reassembler_new (4, 64, 4096, 60);
  g_autofree char *text = random_armor (3000);
  g_auto (GStrv) v = e2ee_fragment_split (text, 300, NULL);
  guint n = g_strv_length (v), victim_refused = 0;

  e2ee_reassembler_set_fair (r, fair);
  g_assert_cmpuint (n, >, 8);
  for (guint i = 0; i < 4000; i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *complete = NULL;
      g_autofree char *nick = g_strdup_printf ("evil%u", i % 16);
      g_autofree char *frag = g_strdup_printf ("?E2F:%08x:1/9:%0200u", i, i);

      if (!e2ee_reassembler_add (r, nick, frag, 100, &complete, &error))
        g_assert_error (error, E2EE_ERROR, E2EE_ERROR_FRAGMENT_LIMIT);
      g_assert_cmpuint (e2ee_reassembler_pending (r, nick), <=, 4);
      g_assert_cmpuint (e2ee_reassembler_pending (r, NULL), <=, 64);
      if (i % 200 == 100 && i / 200 < n)
        {
          g_autoptr (GError) verror = NULL;
          g_autofree char *done = NULL;

          if (!e2ee_reassembler_add (r, "victim", v[i / 200], 100, &done, &verror))
            {
              g_assert_error (verror, E2EE_ERROR, E2EE_ERROR_FRAGMENT_LIMIT);
              victim_refused++;
            }
          else if (i / 200 + 1 == n)
            g_assert_cmpstr (done, ==, text);
          else
            g_assert_cmpuint (e2ee_reassembler_pending (r, "victim"), ==, 1);
        }
    }
  if (fair)
    {
      g_assert_cmpuint (victim_refused, ==, 0);
      g_assert_cmpuint (e2ee_reassembler_evicted (r), >, 0);
    }
  else
    g_assert_cmpuint (victim_refused, ==, n);
}

static void
test_fair_cycling_nicks (void)
{
  cycling_nicks (TRUE);
}

static void
test_unfair_cycling_nicks (void)
{
  cycling_nicks (FALSE);
}

/* Fair mode never takes a buffer from a conversation holding as many as
 * the newcomer's, nor from a higher rank; a lower rank always yields. */
static void
test_fair_rules (void)
{
  g_autoptr (E2eeReassembler) r = e2ee_reassembler_new (4, 3, 4096, 60);
  g_autoptr (GError) error = NULL;
  g_autofree char *complete = NULL;

  e2ee_reassembler_set_fair (r, TRUE);
  add_ok (r, "a", "?E2F:00000001:1/2:x", 0, NULL);
  add_ok (r, "b", "?E2F:00000001:1/2:y", 0, NULL);
  add_ok (r, "c", "?E2F:00000001:1/2:z", 0, NULL);
  /* Everyone holds one: a newcomer is refused, nobody loses anything. */
  add_fails (r, "d", "?E2F:00000001:1/2:w", 0, E2EE_ERROR_FRAGMENT_LIMIT);
  g_assert_cmpuint (e2ee_reassembler_evicted (r), ==, 0);
  /* A higher-ranked newcomer takes a slot of rank 0. */
  g_assert_true (e2ee_reassembler_add_ranked (r, "known", 1, "?E2F:00000001:1/2:k", 0,
                                              &complete, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (e2ee_reassembler_evicted (r), ==, 1);
  g_assert_cmpuint (e2ee_reassembler_pending (r, "known"), ==, 1);
  g_assert_cmpuint (e2ee_reassembler_pending (r, NULL), ==, 3);
  /* Rank 0 cannot take it back. */
  add_fails (r, "e", "?E2F:00000001:1/2:v", 0, E2EE_ERROR_FRAGMENT_LIMIT);
  add_ok (r, "known", "?E2F:00000001:2/2:K", 0, "kK");
}

static void
test_expiry (void)
{
  g_autoptr (E2eeReassembler) r = e2ee_reassembler_new (1, 16, 4096, 30);

  add_ok (r, "k", "?E2F:00000001:1/2:aa", 100, NULL);
  add_ok (r, "j", "?E2F:00000001:1/2:jj", 120, NULL);
  /* Full conversation: a new message is refused until the old one goes. */
  add_fails (r, "k", "?E2F:00000002:1/2:bb", 110, E2EE_ERROR_FRAGMENT_LIMIT);
  g_assert_cmpuint (e2ee_reassembler_expire (r, 130), ==, 0);
  g_assert_cmpuint (e2ee_reassembler_expire (r, 50), ==, 0);   /* clock went back */
  g_assert_cmpuint (e2ee_reassembler_pending (r, NULL), ==, 2);
  g_assert_cmpuint (e2ee_reassembler_expire (r, 131), ==, 1);
  g_assert_cmpuint (e2ee_reassembler_pending (r, "k"), ==, 0);
  g_assert_cmpuint (e2ee_reassembler_pending (r, "j"), ==, 1);

  /* add() expires first: the late piece starts a new buffer, and the
   * freed slot admits it. */
  add_ok (r, "k", "?E2F:00000003:1/2:cc", 131, NULL);
  add_ok (r, "k", "?E2F:00000003:2/2:dd", 161, "ccdd");
  add_ok (r, "k", "?E2F:00000004:1/2:ee", 161, NULL);
  add_ok (r, "k", "?E2F:00000004:2/2:ff", 192, NULL);
  g_assert_cmpuint (e2ee_reassembler_pending (r, "k"), ==, 1);
  g_assert_cmpuint (e2ee_reassembler_pending (r, "j"), ==, 0);
  g_assert_cmpuint (e2ee_reassembler_buffered_bytes (r), ==, 2);
  g_assert_cmpuint (e2ee_reassembler_expire (r, G_MAXINT64), ==, 1);
  g_assert_cmpuint (e2ee_reassembler_pending (r, NULL), ==, 0);
}

static void
test_memory_bound (void)
{
  const guint max_total = 20;
  const gsize max_bytes = 1000;
  g_autoptr (E2eeReassembler) r = e2ee_reassembler_new (3, max_total, max_bytes, 60);
  gsize peak = 0;

  for (guint i = 0; i < 5000; i++)
    {
      g_autofree char *key = g_strdup_printf ("conv%u", (guint) g_test_rand_int_range (0, 50));
      g_autofree char *chunk = random_armor ((gsize) g_test_rand_int_range (1, 600));
      g_autofree char *frag = g_strdup_printf ("?E2F:%08x:%u/256:%s",
                                               (guint) g_test_rand_int_range (0, 8),
                                               (guint) g_test_rand_int_range (1, 257),
                                               chunk);
      g_autofree char *complete = NULL;
      GError *error = NULL;

      if (!e2ee_reassembler_add (r, key, frag, i / 100, &complete, &error))
        {
          g_assert_true (error->domain == E2EE_ERROR);
          g_assert_true (error->code == E2EE_ERROR_FRAGMENT_LIMIT
                         || error->code == E2EE_ERROR_FRAGMENT);
          g_error_free (error);
        }
      g_assert_null (complete);
      g_assert_cmpuint (e2ee_reassembler_pending (r, key), <=, 3);
      g_assert_cmpuint (e2ee_reassembler_pending (r, NULL), <=, max_total);
      peak = MAX (peak, e2ee_reassembler_buffered_bytes (r));
      g_assert_cmpuint (e2ee_reassembler_buffered_bytes (r), <=, max_total * max_bytes);
    }
  /* The flood did fill memory up to close to the bound. */
  g_assert_cmpuint (peak, >, max_total * max_bytes / 2);
}

int
main (int argc, char **argv)
{
  e2ee_test_init (&argc, &argv);

  g_test_add_func ("/fragment/split/fits", test_split_fits);
  g_test_add_func ("/fragment/split/roundtrip-random-order", test_split_roundtrip);
  g_test_add_func ("/fragment/split/limits", test_split_limits);
  g_test_add_func ("/fragment/split/rejects-unprintable", test_split_rejects_unprintable);
  g_test_add_func ("/fragment/split/ids-differ", test_split_ids_differ);
  g_test_add_func ("/fragment/detect", test_detect);
  g_test_add_func ("/fragment/reject/malformed", test_reject_malformed);
  g_test_add_func ("/fragment/reject/inconsistent", test_reject_inconsistent);
  g_test_add_func ("/fragment/limit/per-key", test_limit_per_key);
  g_test_add_func ("/fragment/limit/total", test_limit_total);
  g_test_add_func ("/fragment/limit/bytes", test_limit_bytes);
  g_test_add_func ("/fragment/limit/flood-isolated", test_flood_isolated);
  g_test_add_func ("/fragment/fair/cycling-nicks", test_fair_cycling_nicks);
  g_test_add_func ("/fragment/fair/default-refuses", test_unfair_cycling_nicks);
  g_test_add_func ("/fragment/fair/rules", test_fair_rules);
  g_test_add_func ("/fragment/expiry", test_expiry);
  g_test_add_func ("/fragment/memory-bound", test_memory_bound);
  return g_test_run ();
}
