/* Unit tests for src/e2ee-offer.c.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "e2ee-b64.h"
#include "e2ee-error.h"
#include "e2ee-offer.h"
#include "e2ee-prekey.h"
#include "e2ee-test-util.h"

/* Keys made once; generation costs a few ms each. */
static E2eeKey *gen_keys[E2EE_KEYSET_MAX + 1];

static GPtrArray *
make_keys (guint n)
{
  GPtrArray *keys = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_key_unref);

  g_assert_cmpuint (n, <=, G_N_ELEMENTS (gen_keys));
  for (guint i = 0; i < n; i++)
    g_ptr_array_add (keys, e2ee_key_public_copy (gen_keys[i]));
  return keys;
}

static void
assert_same_keys (GPtrArray *a, GPtrArray *b)
{
  g_assert_nonnull (a);
  g_assert_nonnull (b);
  g_assert_cmpuint (a->len, ==, b->len);
  for (guint i = 0; i < a->len; i++)
    {
      g_assert_true (e2ee_key_equal (a->pdata[i], b->pdata[i]));
      g_assert_cmpuint (e2ee_key_get_caps (a->pdata[i]), ==, e2ee_key_get_caps (b->pdata[i]));
      g_assert_false (e2ee_key_has_private (b->pdata[i]));
    }
}

static void
assert_offer_error (GError *error)
{
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_OFFER);
  g_assert_cmpuint (strlen (error->message), >, 0);
}

/* ---- compact ------------------------------------------------------------ */

static GPtrArray *
decode_str (const char *b64, GError **error)
{
  return e2ee_offer_compact_decode (b64, strlen (b64), error);
}

static void
test_compact_roundtrip (void)
{
  static const guint counts[] = { 1, 2, 5, E2EE_KEYSET_MAX };

  for (gsize c = 0; c < G_N_ELEMENTS (counts); c++)
    {
      g_autoptr (GPtrArray) keys = make_keys (counts[c]);
      g_autoptr (GPtrArray) back = NULL;
      g_autoptr (GError) error = NULL;
      g_autofree char *b64 = NULL;
      g_autofree guint8 *raw = NULL;
      gsize raw_len = 0;

      /* Vary the capabilities, keeping version 1. */
      if (keys->len > 1)
        {
          E2eeKey *k = e2ee_key_with_caps (keys->pdata[1], 0x05);
          e2ee_key_unref (keys->pdata[1]);
          keys->pdata[1] = k;
        }
      b64 = e2ee_offer_compact_encode (keys);
      g_assert_nonnull (b64);
      raw = e2ee_b64url_decode (b64, strlen (b64), &raw_len, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (raw_len, ==, 1 + 65 * keys->len);
      g_assert_cmpuint (raw[0], ==, 1);
      for (guint i = 0; i < keys->len; i++)
        {
          g_assert_cmpuint (raw[1 + 65 * i], ==, e2ee_key_get_caps (keys->pdata[i]));
          g_assert_cmpmem (raw + 2 + 65 * i, 32, e2ee_key_get_x (keys->pdata[i]), 32);
          g_assert_cmpmem (raw + 34 + 65 * i, 32, e2ee_key_get_y (keys->pdata[i]), 32);
        }
      back = decode_str (b64, &error);
      g_assert_no_error (error);
      assert_same_keys (keys, back);
    }
}

static void
test_compact_vectors (void)
{
  g_autofree char *path = e2ee_test_data_path ("vectors/offer-compact.txt");
  g_autofree char *contents = NULL;
  g_auto (GStrv) lines = NULL;
  guint accepted = 0, rejected = 0;

  g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
  lines = g_strsplit (contents, "\n", -1);
  for (guint l = 0; lines[l]; l++)
    {
      g_auto (GStrv) f = NULL;
      g_autoptr (GError) error = NULL;
      g_autoptr (GPtrArray) keys = NULL;

      if (lines[l][0] == '#' || lines[l][0] == '\0')
        continue;
      f = g_strsplit (lines[l], " ", -1);
      g_test_message ("vector %s %s", f[0], f[1]);
      if (g_strcmp0 (f[0], "accept") == 0)
        {
          gsize len;
          g_autofree guint8 *bin = e2ee_test_unhex (f[2], &len);
          g_autofree char *again = NULL;

          g_assert_cmpuint (g_strv_length (f), ==, 4);
          keys = decode_str (f[3], &error);
          g_assert_no_error (error);
          g_assert_cmpuint (keys->len, ==, (len - 1) / 65);
          gboolean caps_fit = TRUE;

          for (guint i = 0; i < keys->len; i++)
            {
              /* v1 envelopes carry four capability bits (versions 1-4);
               * higher ones are dropped on import. */
              caps_fit &= (bin[1 + 65 * i] & ~E2EE_CAPS_MASK) == 0;
              g_assert_cmpuint (e2ee_key_get_caps (keys->pdata[i]), ==,
                                bin[1 + 65 * i] & E2EE_CAPS_MASK);
              g_assert_cmpmem (e2ee_key_get_x (keys->pdata[i]), 32, bin + 2 + 65 * i, 32);
              g_assert_cmpmem (e2ee_key_get_y (keys->pdata[i]), 32, bin + 34 + 65 * i, 32);
            }
          again = e2ee_offer_compact_encode (keys);
          if (caps_fit)
            g_assert_cmpstr (again, ==, f[3]);
          accepted++;
        }
      else
        {
          g_assert_cmpstr (f[0], ==, "reject");
          g_assert_cmpuint (g_strv_length (f), ==, 3);
          keys = decode_str (f[2], &error);
          g_assert_null (keys);
          assert_offer_error (error);
          g_test_message ("  -> %s", error->message);
          rejected++;
        }
    }
  g_assert_cmpuint (accepted, ==, 3);
  g_assert_cmpuint (rejected, ==, 16);
}

static void
test_compact_reject (void)
{
  g_autoptr (GPtrArray) keys = make_keys (2);
  g_autofree char *good = e2ee_offer_compact_encode (keys);
  gsize n = strlen (good);
  g_autofree char *buf = NULL;
  GPtrArray *back;
  GError *error = NULL;

  /* Bad base64url: padding, foreign characters, spaces, impossible length,
   * non-zero trailing bits; the cause stays in the message. */
  static const char *const bad[] = { "", "A", "AQ==", "AQ+/", "AQ A", "A\xc3\xa9",
                                     "AQFr=", "AR" };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      back = decode_str (bad[i], &error);
      g_assert_null (back);
      assert_offer_error (error);
      g_clear_error (&error);
    }
  back = decode_str ("AQ+/", &error);
  g_assert_null (back);
  g_assert_nonnull (strstr (error->message, "base64url"));
  g_clear_error (&error);

  /* Every shorter prefix of a valid form fails, except the one that holds
   * exactly the first key. */
  for (gsize cut = 0; cut < n; cut++)
    {
      back = e2ee_offer_compact_decode (good, cut, &error);
      if (cut == e2ee_b64url_encoded_len (1 + 65))
        {
          g_assert_no_error (error);
          g_assert_cmpuint (back->len, ==, 1);
          g_assert_true (e2ee_key_equal (back->pdata[0], keys->pdata[0]));
          g_ptr_array_unref (back);
          continue;
        }
      g_assert_null (back);
      assert_offer_error (error);
      g_clear_error (&error);
    }

  /* Trailing garbage, also as valid base64url. */
  buf = g_strconcat (good, "AA", NULL);
  back = decode_str (buf, &error);
  g_assert_null (back);
  assert_offer_error (error);
  g_clear_error (&error);
  g_free (buf);
  buf = g_strconcat (good, "!", NULL);
  back = decode_str (buf, &error);
  g_assert_null (back);
  assert_offer_error (error);
  g_clear_error (&error);

  /* A point moved off the curve keeps the point check's message. */
  {
    guint8 raw[1 + 65];
    g_autofree char *b64 = NULL;

    raw[0] = 1;
    raw[1] = 1;
    memcpy (raw + 2, e2ee_key_get_x (keys->pdata[0]), 32);
    memcpy (raw + 34, e2ee_key_get_y (keys->pdata[0]), 32);
    raw[65] ^= 1;
    b64 = e2ee_b64url_encode (raw, sizeof raw);
    back = decode_str (b64, &error);
    g_assert_null (back);
    assert_offer_error (error);
    g_assert_nonnull (strstr (error->message, "P-256"));
    g_clear_error (&error);
  }

  /* Reusing the same key twice. */
  {
    g_autoptr (GPtrArray) twice = make_keys (1);
    g_autofree char *b64 = NULL;

    g_ptr_array_add (twice, e2ee_key_with_caps (twice->pdata[0], 0x03));
    b64 = e2ee_offer_compact_encode (twice);
    back = decode_str (b64, &error);
    g_assert_null (back);
    assert_offer_error (error);
    g_assert_nonnull (strstr (error->message, "same key"));
    g_clear_error (&error);
  }
}

/* ---- profile block ------------------------------------------------------ */

static void
test_profile_block (void)
{
  g_autoptr (GPtrArray) keys = make_keys (3);
  g_autofree char *block = e2ee_offer_profile_block (keys);
  g_auto (GStrv) lines = g_strsplit (block, "\n", -1);
  guint n = g_strv_length (lines);
  g_autoptr (GString) b64 = g_string_new (NULL);
  g_autofree guint8 *json = NULL;
  g_autoptr (GPtrArray) from_json = NULL;
  g_autoptr (GPtrArray) back = NULL;
  g_autoptr (GError) error = NULL;
  gsize json_len;

  g_assert_cmpuint (n, >=, 4);
  g_assert_cmpstr (lines[0], ==, E2EE_PROFILE_BEGIN);
  g_assert_cmpstr (lines[n - 1], ==, E2EE_PROFILE_END);
  /* A sentence for people, which says where to get the plugin. */
  g_assert_nonnull (strstr (lines[1], "purple-e2ee"));
  g_assert_nonnull (strchr (lines[1], ' '));
  for (guint i = 2; i < n - 1; i++)
    {
      g_assert_cmpuint (strlen (lines[i]), >, 0);
      if (i < n - 2)
        g_assert_cmpuint (strlen (lines[i]), ==, 64);
      else
        g_assert_cmpuint (strlen (lines[i]), <=, 64);
      g_string_append (b64, lines[i]);
    }
  /* The payload is the JWK Set JSON, readable by the jwk module alone. */
  json = e2ee_b64url_decode (b64->str, b64->len, &json_len, &error);
  g_assert_no_error (error);
  from_json = e2ee_keyset_parse ((const char *) json, (gssize) json_len, &error);
  g_assert_no_error (error);
  assert_same_keys (keys, from_json);

  back = e2ee_offer_profile_parse (block, &error);
  g_assert_no_error (error);
  assert_same_keys (keys, back);
}

static void
test_profile_replace (void)
{
  static const char *const profiles[] = {
    "", "Hello", "Hello\n", "Hello\n\n", "  spaces around  ", "line one\nline two\r\n",
    "<b>bold</b> &amp; I <3 cats", "\n", "ünïcödé ✓",
  };
  g_autoptr (GPtrArray) k1 = make_keys (1);
  g_autoptr (GPtrArray) k2 = make_keys (4);

  for (gsize i = 0; i < G_N_ELEMENTS (profiles); i++)
    {
      const char *p = profiles[i];
      g_autoptr (GError) error = NULL;
      g_autofree char *with1 = e2ee_offer_profile_replace (p, k1);
      g_autofree char *with2 = e2ee_offer_profile_replace (with1, k2);
      g_autofree char *direct2 = e2ee_offer_profile_replace (p, k2);
      g_autofree char *same = e2ee_offer_profile_replace (with2, k2);
      g_autofree char *removed = e2ee_offer_profile_replace (with2, NULL);
      g_autofree char *removed_none = e2ee_offer_profile_replace (p, NULL);
      g_autoptr (GPtrArray) got1 = NULL;
      g_autoptr (GPtrArray) got2 = NULL;

      g_test_message ("profile %" G_GSIZE_FORMAT ": %s", i, p);
      /* The user's text stays at the front, byte for byte. */
      g_assert_true (g_str_has_prefix (with1, p));
      g_assert_nonnull (strstr (with1, E2EE_PROFILE_BEGIN));
      got1 = e2ee_offer_profile_parse (with1, &error);
      g_assert_no_error (error);
      assert_same_keys (k1, got1);
      /* Replacing keeps one block, in the same place. */
      g_assert_cmpstr (with2, ==, direct2);
      g_assert_cmpstr (same, ==, with2);
      got2 = e2ee_offer_profile_parse (with2, &error);
      g_assert_no_error (error);
      assert_same_keys (k2, got2);
      g_assert_cmpstr (removed, ==, p);
      g_assert_cmpstr (removed_none, ==, p);
    }
  {
    g_autofree char *empty = e2ee_offer_profile_replace (NULL, NULL);
    g_assert_cmpstr (empty, ==, "");
  }
}

static void
test_profile_replace_in_place (void)
{
  g_autoptr (GPtrArray) k1 = make_keys (1);
  g_autoptr (GPtrArray) k2 = make_keys (2);
  g_autofree char *b1 = e2ee_offer_profile_block (k1);
  g_autofree char *b2 = e2ee_offer_profile_block (k2);
  g_autofree char *middle = g_strconcat ("top\n", b1, "\nbottom", NULL);
  g_autofree char *expect = g_strconcat ("top\n", b2, "\nbottom", NULL);
  g_autofree char *got = e2ee_offer_profile_replace (middle, k2);
  g_autofree char *gone = e2ee_offer_profile_replace (middle, NULL);
  g_autofree char *broken = g_strconcat ("keep me\n", E2EE_PROFILE_BEGIN, "\nAQ-junk", NULL);
  g_autofree char *fixed = e2ee_offer_profile_replace (broken, k1);
  g_autofree char *two = g_strconcat ("a\n", b1, "\nb\n", b2, "\nc", NULL);
  g_autofree char *two_fixed = e2ee_offer_profile_replace (two, k2);
  g_autofree char *two_expect = g_strconcat ("a\n", b2, "\nb\nc", NULL);
  g_autofree char *two_gone = e2ee_offer_profile_replace (two, NULL);
  g_autoptr (GPtrArray) got_keys = NULL;
  g_autoptr (GError) error = NULL;

  g_assert_cmpstr (got, ==, expect);
  g_assert_cmpstr (gone, ==, "top\nbottom");
  /* A block that lost its end line is replaced up to the end of the text. */
  g_assert_true (g_str_has_prefix (fixed, "keep me\n"));
  g_assert_cmpstr (fixed + strlen ("keep me\n"), ==, b1);
  g_assert_null (strstr (fixed, "junk"));
  got_keys = e2ee_offer_profile_parse (fixed, &error);
  g_assert_no_error (error);
  assert_same_keys (k1, got_keys);
  /* Stray extra blocks go. */
  g_assert_cmpstr (two_fixed, ==, two_expect);
  g_assert_cmpstr (two_gone, ==, "a\nb\nc");
}

static char *
replace_all (const char *s, const char *from, const char *to)
{
  g_auto (GStrv) parts = g_strsplit (s, from, -1);
  return g_strjoinv (to, parts);
}

/* Splits each line of @s every @every characters with @sep. */
static char *
split_lines (const char *s, gsize every, const char *sep)
{
  GString *out = g_string_new (NULL);
  gsize col = 0;

  for (const char *p = s; *p; p++)
    {
      g_string_append_c (out, *p);
      col = *p == '\n' ? 0 : col + 1;
      if (col == every && p[1] != '\n' && p[1] != '\0')
        {
          g_string_append (out, sep);
          col = 0;
        }
    }
  return g_string_free (out, FALSE);
}

static void
test_profile_html (void)
{
  g_autoptr (GPtrArray) keys = make_keys (2);
  g_autofree char *block = e2ee_offer_profile_block (keys);
  g_autofree char *br = replace_all (block, "\n", "<br>");
  g_autofree char *br_upper = replace_all (block, "\n", "<BR>");
  g_autofree char *br_xhtml = replace_all (block, "\n", "<br/>\n");
  g_autofree char *crlf = replace_all (block, "\n", "\r\n");
  g_autofree char *joined_space = replace_all (block, "\n", " ");
  g_autofree char *joined_none = replace_all (block, "\n", "");
  g_autofree char *paragraphs = replace_all (block, "\n", "</p><p>");
  g_autofree char *nbsp = replace_all (block, " ", "&nbsp;");
  g_autofree char *nbsp_utf8 = replace_all (block, " ", "\xc2\xa0");
  g_autofree char *escaped_br = replace_all (block, "\n", "&lt;br&gt;");
  g_autofree char *escaped_br2 = replace_all (block, "\n", "&amp;lt;BR&amp;gt;\n");
  g_autofree char *rewrapped = split_lines (block, 20, "<br>");
  g_autofree char *wbr = split_lines (block, 7, "<wbr>");
  g_autofree char *numeric = replace_all (block, "-", "&#45;");
  g_autofree char *numeric_hex = replace_all (block, "-", "&#x2D;");
  char *variants[32];
  guint nv = 0;

  variants[nv++] = g_strdup (block);
  variants[nv++] = g_strconcat ("<b>About</b>: I like <i>cats</i> &amp; dogs<br>", br,
                                "<br>Bye &lt;3", NULL);
  variants[nv++] = g_strconcat ("Hi<BR>", br_upper, NULL);
  variants[nv++] = g_strconcat ("<p>", br_xhtml, "</p>", NULL);
  variants[nv++] = g_strconcat ("x\r\n", crlf, "\r\n", NULL);
  variants[nv++] = g_strconcat ("<html xmlns='http://jabber.org/protocol/xhtml-im'>"
                                "<body xmlns='http://www.w3.org/1999/xhtml'><p>Me &amp; you ",
                                joined_space, " end</p></body></html>", NULL);
  variants[nv++] = g_strconcat ("prefix", joined_none, "suffix", NULL);
  variants[nv++] = g_strconcat ("<p>hello</p><p>", paragraphs, "</p>", NULL);
  variants[nv++] = g_strdup (nbsp);
  variants[nv++] = g_strdup (nbsp_utf8);
  variants[nv++] = g_strconcat ("<b>About</b>&lt;br&gt;", escaped_br, NULL);
  variants[nv++] = g_strdup (escaped_br2);
  variants[nv++] = g_strdup (rewrapped);
  variants[nv++] = g_strdup (wbr);
  variants[nv++] = g_strdup (numeric);
  variants[nv++] = g_strdup (numeric_hex);
  variants[nv++] = g_strconcat ("<font color=\"red\">a < b > c & d</font>\n", block,
                                "\n<a href=\"x\">link</a>", NULL);

  for (guint i = 0; i < nv; i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GPtrArray) back = NULL;

      g_test_message ("variant %u: %s", i, variants[i]);
      back = e2ee_offer_profile_parse (variants[i], &error);
      g_assert_no_error (error);
      assert_same_keys (keys, back);
      g_free (variants[i]);
    }
}

/* Builds a profile whose block carries @json as its payload. */
static char *
profile_with_json (const char *json)
{
  g_autofree char *b64 = e2ee_b64url_encode ((const guint8 *) json, strlen (json));

  return g_strconcat ("About me\n" E2EE_PROFILE_BEGIN "\nKeys.\n", b64,
                      "\n" E2EE_PROFILE_END "\n", NULL);
}

static void
test_profile_reject (void)
{
  g_autoptr (GPtrArray) keys = make_keys (2);
  g_autoptr (GPtrArray) one = make_keys (1);
  g_autoptr (GPtrArray) many = make_keys (E2EE_KEYSET_MAX + 1);
  g_autofree char *block = e2ee_offer_profile_block (keys);
  g_autofree char *block1 = e2ee_offer_profile_block (one);
  g_autofree char *json1 = e2ee_keyset_to_json (one);
  g_autofree char *json_many = e2ee_keyset_to_json (many);
  g_autofree char *jwk = e2ee_key_to_jwk (one->pdata[0], FALSE, TRUE);
  g_autofree char *dup_json = g_strdup_printf ("{\"keys\":[%s,%s]}", jwk, jwk);
  g_autofree char *no_end = g_strndup (block, strlen (block) - strlen (E2EE_PROFILE_END));
  g_autofree char *end_only = g_strdup (strchr (block, '\n') + 1);
  g_autofree char *two = g_strconcat (block, "\n", block1, NULL);
  g_autofree char *nested = g_strconcat (E2EE_PROFILE_BEGIN "\n", block, NULL);
  g_autofree char *bad_char = replace_all (block, "\n" E2EE_PROFILE_END, "!\n" E2EE_PROFILE_END);
  g_autofree char *plus = NULL;
  g_autofree char *cut = NULL;
  g_autofree char *off_curve = NULL;
  char *cases[32];
  guint nc = 0;

  /* A base64url '-' or '_' swapped for the standard alphabet. */
  {
    const char *p = strrchr (block, '\n');
    gsize at = (gsize) (p - block);
    plus = g_strdup (block);
    while (at > 0 && plus[at] != '-' && plus[at] != '_' && plus[at] != 'A')
      at--;
    plus[at] = '+';
  }
  /* The payload losing its last characters. */
  {
    const char *end = strstr (block, "\n" E2EE_PROFILE_END);
    g_autofree char *head = g_strndup (block, (gsize) (end - block) - 3);
    cut = g_strconcat (head, end, NULL);
  }
  /* An off-curve point inside an otherwise valid JWK Set. */
  {
    g_autofree char *x = e2ee_b64url_encode (e2ee_key_get_x (one->pdata[0]), 32);
    guint8 y[32];
    g_autofree char *yb = NULL;
    g_autofree char *j = NULL;

    memcpy (y, e2ee_key_get_y (one->pdata[0]), 32);
    y[31] ^= 1;
    yb = e2ee_b64url_encode (y, 32);
    j = g_strdup_printf ("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\","
                         "\"y\":\"%s\",\"kid\":\"%s\"}]}", x, yb,
                         e2ee_key_get_kid (one->pdata[0]));
    off_curve = profile_with_json (j);
  }

  cases[nc++] = g_strdup ("");
  cases[nc++] = g_strdup ("Just a profile, no keys.");
  cases[nc++] = g_strdup (no_end);
  cases[nc++] = g_strdup (end_only);
  cases[nc++] = g_strdup (E2EE_PROFILE_BEGIN "\n" E2EE_PROFILE_END);
  cases[nc++] = g_strdup (E2EE_PROFILE_BEGIN "\nOnly words here.\n" E2EE_PROFILE_END);
  cases[nc++] = g_strdup (two);
  cases[nc++] = g_strdup (nested);
  cases[nc++] = g_strdup (bad_char);
  cases[nc++] = g_strdup (plus);
  cases[nc++] = g_strdup (cut);
  cases[nc++] = g_strdup (off_curve);
  cases[nc++] = profile_with_json ("{\"keys\":[]}");
  cases[nc++] = profile_with_json ("{\"keys\":{}}");
  cases[nc++] = profile_with_json ("[]");
  cases[nc++] = profile_with_json ("not json");
  cases[nc++] = profile_with_json (json_many);
  cases[nc++] = profile_with_json (dup_json);
  {
    g_autofree char *trailing = g_strconcat (json1, "x", NULL);
    cases[nc++] = profile_with_json (trailing);
  }
  {
    /* Padded base64 of the JSON. */
    g_autofree char *p = profile_with_json (json1);
    g_autofree char *q = replace_all (p, "\n" E2EE_PROFILE_END, "==\n" E2EE_PROFILE_END);
    cases[nc++] = g_steal_pointer (&q);
  }

  for (guint i = 0; i < nc; i++)
    {
      GError *error = NULL;
      GPtrArray *back;

      g_test_message ("case %u: %s", i, cases[i]);
      back = e2ee_offer_profile_parse (cases[i], &error);
      g_assert_null (back);
      assert_offer_error (error);
      g_test_message ("  -> %s", error->message);
      g_error_free (error);
      g_free (cases[i]);
    }

  /* The controls: the same building blocks are accepted when intact. */
  {
    g_autoptr (GError) error = NULL;
    g_autofree char *good = profile_with_json (json1);
    g_autoptr (GPtrArray) back = e2ee_offer_profile_parse (good, &error);
    g_assert_no_error (error);
    assert_same_keys (one, back);
  }
}

/* ---- status tag --------------------------------------------------------- */

static void
test_status (void)
{
  g_autoptr (GPtrArray) k1 = make_keys (1);
  g_autoptr (GPtrArray) k2 = make_keys (2);
  g_autofree char *c1 = e2ee_offer_compact_encode (k1);
  g_autofree char *t1 = e2ee_offer_status_tag (k1);
  g_autofree char *t2 = e2ee_offer_status_tag (k2);
  g_autofree char *expect_t1 = g_strconcat ("[e2ee:", c1, "]", NULL);
  struct {
    const char *status;
    GPtrArray *keys;
    const char *expect_head;  /* the result is this, then the tag */
  } cases[] = {
    { "", k1, "" },
    { NULL, k1, "" },
    { "Away", k1, "Away " },
    { "Away ", k1, "Away  " },
    { "x\ny", k2, "x\ny " },
  };
  g_autoptr (GError) error = NULL;

  g_assert_cmpstr (t1, ==, expect_t1);
  g_assert_cmpuint (strlen (t1), <, 127); /* fits ngIRCd's AWAYLEN */

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *tag = e2ee_offer_status_tag (cases[i].keys);
      g_autofree char *expect = g_strconcat (cases[i].expect_head, tag, NULL);
      g_autofree char *got = e2ee_offer_status_replace (cases[i].status, cases[i].keys);
      g_autofree char *swapped = NULL;
      g_autofree char *removed = NULL;
      g_autoptr (GPtrArray) back = NULL;

      g_assert_cmpstr (got, ==, expect);
      back = e2ee_offer_status_parse (got, &error);
      g_assert_no_error (error);
      assert_same_keys (cases[i].keys, back);
      swapped = e2ee_offer_status_replace (got, cases[i].keys == k1 ? k2 : k1);
      g_assert_nonnull (strstr (swapped, cases[i].keys == k1 ? t2 : t1));
      g_assert_null (strstr (swapped, cases[i].keys == k1 ? t1 : t2));
      removed = e2ee_offer_status_replace (swapped, NULL);
      g_assert_cmpstr (removed, ==, cases[i].status ? cases[i].status : "");
    }

  /* A tag the user moved stays where it is; removal takes one space. */
  {
    g_autofree char *mid = g_strdup_printf ("Out %s back at 5", t1);
    g_autofree char *mid2 = g_strdup_printf ("Out %s back at 5", t2);
    g_autofree char *start = g_strdup_printf ("%s back at 5", t1);
    g_autofree char *cut = g_strdup_printf ("Away %.*s", 40, t1);
    g_autofree char *r1 = e2ee_offer_status_replace (mid, k2);
    g_autofree char *r2 = e2ee_offer_status_replace (mid, NULL);
    g_autofree char *r3 = e2ee_offer_status_replace (start, NULL);
    g_autofree char *r4 = e2ee_offer_status_replace (cut, NULL);
    g_autofree char *r5 = e2ee_offer_status_replace (cut, k1);
    g_autofree char *expect5 = g_strdup_printf ("Away %s", t1);

    g_assert_cmpstr (r1, ==, mid2);
    g_assert_cmpstr (r2, ==, "Out back at 5");
    g_assert_cmpstr (r3, ==, "back at 5");
    g_assert_cmpstr (r4, ==, "Away");
    g_assert_cmpstr (r5, ==, expect5);
  }
}

static void
test_status_reject (void)
{
  g_autoptr (GPtrArray) k1 = make_keys (1);
  g_autoptr (GPtrArray) k2 = make_keys (2);
  g_autofree char *t1 = e2ee_offer_status_tag (k1);
  g_autofree char *t2 = e2ee_offer_status_tag (k2);
  g_autofree char *c1 = e2ee_offer_compact_encode (k1);
  g_autofree char *two = g_strdup_printf ("%s %s", t1, t2);
  g_autofree char *cut = g_strndup (t1, strlen (t1) - 1);
  g_autofree char *cut2 = g_strndup (t1, strlen (t1) - 5);
  g_autofree char *space = g_strdup_printf ("[e2ee: %s]", c1);
  g_autofree char *junk = g_strdup_printf ("[e2ee:%sAA]", c1);
  g_autofree char *bang = g_strdup_printf ("[e2ee:%s!]", c1);
  g_autofree char *padded = g_strdup_printf ("[e2ee:%s=]", c1);
  const char *cases[] = { NULL, "", "Away", "[e2ee:]", "[e2ee:AQ]", "[E2EE:AQ]",
                          two, cut, cut2, space, junk, bang, padded };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      GError *error = NULL;
      GPtrArray *back = e2ee_offer_status_parse (cases[i], &error);

      g_test_message ("status case %" G_GSIZE_FORMAT ": %s", i, cases[i]);
      g_assert_null (back);
      assert_offer_error (error);
      g_error_free (error);
    }
}

/* ---- in-band ------------------------------------------------------------ */

static void
test_inband (void)
{
  g_autoptr (GPtrArray) k1 = make_keys (1);
  g_autoptr (GPtrArray) k3 = make_keys (3);
  g_autofree char *c3 = e2ee_offer_compact_encode (k3);
  g_autofree char *offer = e2ee_offer_inband (E2EE_OFFER_KIND_OFFER, k3);
  g_autofree char *answer = e2ee_offer_inband (E2EE_OFFER_KIND_ANSWER, k3);
  g_autofree char *offer1 = e2ee_offer_inband (E2EE_OFFER_KIND_OFFER, k1);
  g_autofree char *expect_head = g_strconcat (E2EE_OFFER_PREFIX, c3, " ", NULL);
  g_autoptr (GError) error = NULL;
  const char *msgs[] = { offer, answer, offer1 };

  g_assert_true (g_str_has_prefix (offer, expect_head));
  g_assert_true (g_str_has_prefix (answer, E2EE_ANSWER_PREFIX));
  /* One line of plain ASCII that no transport rewrites, with words for
   * people who do not have the plugin. */
  for (gsize m = 0; m < G_N_ELEMENTS (msgs); m++)
    {
      const char *human = strchr (msgs[m], ' ');

      g_assert_nonnull (human);
      g_assert_nonnull (strstr (human, "purple-e2ee"));
      for (const char *p = msgs[m]; *p; p++)
        {
          g_assert_true (*p >= 0x20 && *p < 0x7f);
          g_assert_null (strchr ("<>&\"'", *p));
        }
    }
  g_assert_cmpuint (strlen (offer1), <=, 400);
  g_assert_cmpstr (strchr (offer, ' '), !=, strchr (answer, ' '));

  for (gsize m = 0; m < 2; m++)
    {
      E2eeOfferKind kind = m == 0 ? E2EE_OFFER_KIND_ANSWER : E2EE_OFFER_KIND_OFFER;
      g_autoptr (GPtrArray) back = NULL;
      g_autofree char *spaced = g_strconcat (" \n", msgs[m], NULL);
      g_autofree char *bare = g_strndup (msgs[m], (gsize) (strchr (msgs[m], ' ') - msgs[m]));
      g_autofree char *reworded = g_strconcat (bare, "\tPlease install the plugin", NULL);

      g_assert_true (e2ee_offer_inband_detect (msgs[m]));
      back = e2ee_offer_inband_parse (msgs[m], &kind, &error);
      g_assert_no_error (error);
      g_assert_cmpint (kind, ==, m == 0 ? E2EE_OFFER_KIND_OFFER : E2EE_OFFER_KIND_ANSWER);
      assert_same_keys (k3, back);
      g_clear_pointer (&back, g_ptr_array_unref);

      /* Leading white space, no human part, another human part. */
      g_assert_true (e2ee_offer_inband_detect (spaced));
      back = e2ee_offer_inband_parse (spaced, NULL, &error);
      g_assert_no_error (error);
      assert_same_keys (k3, back);
      g_clear_pointer (&back, g_ptr_array_unref);
      back = e2ee_offer_inband_parse (bare, NULL, &error);
      g_assert_no_error (error);
      assert_same_keys (k3, back);
      g_clear_pointer (&back, g_ptr_array_unref);
      back = e2ee_offer_inband_parse (reworded, NULL, &error);
      g_assert_no_error (error);
      assert_same_keys (k3, back);
    }

  g_assert_false (e2ee_offer_inband_detect (NULL));
  g_assert_false (e2ee_offer_inband_detect ("hello ?E2K:AQ"));
  g_assert_false (e2ee_offer_inband_detect ("?E2E:AQ"));
  g_assert_false (e2ee_offer_inband_detect ("?e2k:AQ"));
}

static void
test_inband_reject (void)
{
  g_autoptr (GPtrArray) k2 = make_keys (2);
  g_autofree char *c2 = e2ee_offer_compact_encode (k2);
  g_autofree char *junk = g_strdup_printf ("?E2K:%sAAAA words", c2);
  g_autofree char *bang = g_strdup_printf ("?E2K:%s! words", c2);
  g_autofree char *padded = g_strdup_printf ("?E2A:%s== words", c2);
  g_autofree char *cut = g_strdup_printf ("?E2A:%.*s words", (int) strlen (c2) - 2, c2);
  g_autofree char *wrong = g_strdup_printf ("?E2X:%s words", c2);
  g_autofree char *markup = g_strdup_printf ("?E2K:<b>%s</b> words", c2);
  const char *cases[] = { "", "hello", "?E2K:", "?E2A: AQ", "?E2K:AQ words",
                          junk, bang, padded, cut, wrong, markup };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      GError *error = NULL;
      E2eeOfferKind kind = (E2eeOfferKind) 42;
      GPtrArray *back = e2ee_offer_inband_parse (cases[i], &kind, &error);

      g_test_message ("inband case %" G_GSIZE_FORMAT ": %s", i, cases[i]);
      g_assert_null (back);
      assert_offer_error (error);
      g_assert_cmpint (kind, ==, 42);
      g_error_free (error);
    }
}

/* ---- protocol-v2 attachments -------------------------------------------- */

/* @key with a new signing key and a prekey record listing @versions
 * (0x03: 195 bytes; 0xFF, eight versions: 201 bytes, the largest). */
static E2eeKey *
with_v2_data (const E2eeKey *key, guint8 versions)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (E2eeSignKey) sign = e2ee_sign_key_generate (&error);
  g_autoptr (E2eeEcSecret) secret = NULL;
  g_autoptr (GBytes) record = NULL;
  g_autoptr (E2eeKey) v2caps = e2ee_key_with_caps (key, e2ee_key_get_caps (key) | E2EE_CAPS_V2);

  g_assert_no_error (error);
  g_assert_true (e2ee_prekey_create (sign, key, 0x1234, 7, 1800000000, versions, &secret,
                                     &record, &error));
  g_assert_no_error (error);
  return e2ee_key_with_v2 (v2caps, e2ee_sign_key_get_public (sign), record);
}

static GPtrArray *
make_v2_keys (guint n, guint8 versions)
{
  GPtrArray *keys = make_keys (n);

  for (guint i = 0; i < n; i++)
    {
      E2eeKey *k = with_v2_data (keys->pdata[i], versions);
      e2ee_key_unref (keys->pdata[i]);
      keys->pdata[i] = k;
    }
  return keys;
}

/* Same points, caps and attachments, in the same order. */
static void
assert_same_v2 (GPtrArray *a, GPtrArray *b)
{
  assert_same_keys (a, b);
  for (guint i = 0; i < a->len; i++)
    {
      const E2eeKey *sa = e2ee_key_get_sign_pub (a->pdata[i]);
      const E2eeKey *sb = e2ee_key_get_sign_pub (b->pdata[i]);

      g_assert_true ((sa == NULL) == (sb == NULL));
      g_assert_true ((e2ee_key_get_prekey_record (a->pdata[i]) == NULL) == (sa == NULL));
      g_assert_true ((e2ee_key_get_prekey_record (b->pdata[i]) == NULL) == (sb == NULL));
      if (sa == NULL)
        continue;
      g_assert_true (e2ee_key_equal (sa, sb));
      g_assert_true (g_bytes_equal (e2ee_key_get_prekey_record (a->pdata[i]),
                                    e2ee_key_get_prekey_record (b->pdata[i])));
    }
}

static void
test_compact_v2_roundtrip (void)
{
  static const guint counts[] = { 1, 2, 5, E2EE_KEYSET_MAX };
  static const guint8 versions[] = { 0x03, 0xFF };

  for (gsize v = 0; v < G_N_ELEMENTS (versions); v++)
    for (gsize c = 0; c < G_N_ELEMENTS (counts); c++)
      {
        g_autoptr (GPtrArray) keys = make_v2_keys (counts[c], versions[v]);
        g_autoptr (GPtrArray) back = NULL;
        g_autoptr (GError) error = NULL;
        g_autofree char *b64 = e2ee_offer_compact_encode (keys);
        g_autofree guint8 *raw = NULL;
        gsize raw_len = 0, pos = 1, rlen = versions[v] == 0x03 ? 195 : 201;

        raw = e2ee_b64url_decode (b64, strlen (b64), &raw_len, &error);
        g_assert_no_error (error);
        g_assert_cmpuint (raw_len, ==, 1 + keys->len * (1 + 64 + 64 + 1 + rlen));
        g_assert_cmpuint (raw[0], ==, 2);
        for (guint i = 0; i < keys->len; i++)
          {
            const E2eeKey *k = keys->pdata[i];
            const E2eeKey *sp = e2ee_key_get_sign_pub (k);

            g_assert_cmpuint (raw[pos], ==, e2ee_key_get_caps (k));
            g_assert_cmpuint (raw[pos] & E2EE_CAPS_V2, ==, E2EE_CAPS_V2);
            g_assert_cmpmem (raw + pos + 1, 32, e2ee_key_get_x (k), 32);
            g_assert_cmpmem (raw + pos + 33, 32, e2ee_key_get_y (k), 32);
            g_assert_cmpmem (raw + pos + 65, 32, e2ee_key_get_x (sp), 32);
            g_assert_cmpmem (raw + pos + 97, 32, e2ee_key_get_y (sp), 32);
            g_assert_cmpuint (raw[pos + 129], ==, rlen);
            g_assert_cmpmem (raw + pos + 130, rlen,
                             g_bytes_get_data (e2ee_key_get_prekey_record (k), NULL), rlen);
            pos += 130 + rlen;
          }
        g_test_message ("compact v2, %u key(s), %" G_GSIZE_FORMAT "-byte records: %"
                        G_GSIZE_FORMAT " bytes, %" G_GSIZE_FORMAT " characters",
                        keys->len, rlen, raw_len, strlen (b64));
        g_assert_cmpuint (strlen (b64), ==, e2ee_b64url_encoded_len (raw_len));
        back = decode_str (b64, &error);
        g_assert_no_error (error);
        assert_same_v2 (keys, back);
        if (keys->len == E2EE_KEYSET_MAX && rlen == 201)
          g_assert_cmpuint (raw_len, ==, E2EE_KEYSET_COMPACT_MAX);
      }
}

/* A set without v2 data is written as version 1, byte for byte as before;
 * one with v2 data marks exactly the keys that carry some. */
static void
test_compact_v2_mixed (void)
{
  g_autoptr (GPtrArray) keys = make_keys (3);
  g_autoptr (GPtrArray) back = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *v1 = NULL, *v1_again = NULL, *mixed = NULL;
  g_autofree guint8 *raw = NULL;
  gsize raw_len = 0;
  E2eeKey *k;

  /* Key 2 speaks v2 but has nothing published yet. */
  k = e2ee_key_with_caps (keys->pdata[1], E2EE_CAPS_V1 | E2EE_CAPS_V2 | 0x04);
  e2ee_key_unref (keys->pdata[1]);
  keys->pdata[1] = k;
  v1 = e2ee_offer_compact_encode (keys);
  raw = e2ee_b64url_decode (v1, strlen (v1), &raw_len, NULL);
  g_assert_cmpuint (raw_len, ==, 1 + 3 * 65);
  g_assert_cmpuint (raw[0], ==, 1);
  g_assert_cmpuint (raw[1 + 65], ==, 0x07);
  g_clear_pointer (&raw, g_free);
  back = decode_str (v1, &error);
  g_assert_no_error (error);
  assert_same_v2 (keys, back);
  g_clear_pointer (&back, g_ptr_array_unref);

  /* Key 3 gets attachments: version 2; key 2 loses its v2 bit there (it
   * would announce attachments), key 1 is written as before. */
  k = with_v2_data (keys->pdata[2], 0x03);
  e2ee_key_unref (keys->pdata[2]);
  keys->pdata[2] = k;
  mixed = e2ee_offer_compact_encode (keys);
  raw = e2ee_b64url_decode (mixed, strlen (mixed), &raw_len, NULL);
  g_assert_cmpuint (raw_len, ==, 1 + 65 + 65 + 65 + 65 + 195);
  g_assert_cmpuint (raw[0], ==, 2);
  g_assert_cmpuint (raw[1], ==, e2ee_key_get_caps (keys->pdata[0]));
  g_assert_cmpuint (raw[1 + 65], ==, 0x05);
  g_assert_cmpuint (raw[1 + 130], ==, 0x03);
  back = decode_str (mixed, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (back->len, ==, 3);
  g_assert_null (e2ee_key_get_sign_pub (back->pdata[0]));
  g_assert_null (e2ee_key_get_sign_pub (back->pdata[1]));
  g_assert_cmpuint (e2ee_key_get_caps (back->pdata[1]), ==, 0x05);
  g_assert_nonnull (e2ee_key_get_sign_pub (back->pdata[2]));
  g_assert_true (e2ee_key_equal (e2ee_key_get_sign_pub (back->pdata[2]),
                                 e2ee_key_get_sign_pub (keys->pdata[2])));

  /* Dropping the attachments again gives the version-1 text back. */
  k = e2ee_key_with_v2 (keys->pdata[2], NULL, NULL);
  e2ee_key_unref (keys->pdata[2]);
  keys->pdata[2] = e2ee_key_with_caps (k, E2EE_CAPS_V1);
  e2ee_key_unref (k);
  v1_again = e2ee_offer_compact_encode (keys);
  g_assert_cmpstr (v1_again, ==, v1);
}

static void
test_compact_v2_vectors (void)
{
  g_autofree char *path = e2ee_test_data_path ("vectors/offer-compact-v2.txt");
  g_autofree char *contents = NULL;
  g_auto (GStrv) lines = NULL;
  guint accepted = 0, rejected = 0;

  g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
  lines = g_strsplit (contents, "\n", -1);
  for (guint l = 0; lines[l]; l++)
    {
      g_auto (GStrv) f = NULL;
      g_autoptr (GError) error = NULL;
      g_autoptr (GPtrArray) keys = NULL;

      if (lines[l][0] == '#' || lines[l][0] == '\0')
        continue;
      f = g_strsplit (lines[l], " ", -1);
      g_test_message ("vector %s %s", f[0], f[1]);
      if (g_strcmp0 (f[0], "accept") == 0)
        {
          gsize len, raw_len;
          guint with_v2 = 0;
          g_autofree guint8 *bin = NULL, *raw = NULL;
          g_autofree char *again = NULL;

          g_assert_cmpuint (g_strv_length (f), ==, 6);
          bin = e2ee_test_unhex (f[4], &len);
          raw = e2ee_b64url_decode (f[5], strlen (f[5]), &raw_len, NULL);
          g_assert_cmpmem (bin, len, raw, raw_len);
          keys = decode_str (f[5], &error);
          g_assert_no_error (error);
          g_assert_cmpuint (keys->len, ==, g_ascii_strtoull (f[2], NULL, 10));
          for (guint i = 0; i < keys->len; i++)
            {
              gboolean has = e2ee_key_get_sign_pub (keys->pdata[i]) != NULL;
              with_v2 += has;
              g_assert_cmpuint (!!(e2ee_key_get_caps (keys->pdata[i]) & E2EE_CAPS_V2), ==, has);
            }
          g_assert_cmpuint (with_v2, ==, g_ascii_strtoull (f[3], NULL, 10));
          again = e2ee_offer_compact_encode (keys);
          g_assert_cmpstr (again, ==, f[5]);
          accepted++;
        }
      else
        {
          g_assert_cmpstr (f[0], ==, "reject");
          g_assert_cmpuint (g_strv_length (f), ==, 3);
          keys = decode_str (f[2], &error);
          g_assert_null (keys);
          assert_offer_error (error);
          g_test_message ("  -> %s", error->message);
          rejected++;
        }
    }
  g_assert_cmpuint (accepted, ==, 5);
  g_assert_cmpuint (rejected, ==, 22);
}

/* Rewrites byte @at of the binary form of @b64 (or appends @append). */
static char *
patched (const char *b64, gssize at, guint8 value, gsize cut)
{
  gsize len = 0;
  g_autofree guint8 *raw = e2ee_b64url_decode (b64, strlen (b64), &len, NULL);

  g_assert_nonnull (raw);
  if (at >= 0)
    raw[at] = value;
  return e2ee_b64url_encode (raw, len - cut);
}

static void
test_compact_v2_reject (void)
{
  g_autoptr (GPtrArray) keys = make_v2_keys (2, 0x03);
  g_autofree char *good = e2ee_offer_compact_encode (keys);
  const gsize key_len = 65 + 65 + 195;
  gsize n = strlen (good);
  GError *error = NULL;
  GPtrArray *back;

  /* Every cut fails but the one at the end of the first key. */
  for (gsize cut = 0; cut < n; cut++)
    {
      back = e2ee_offer_compact_decode (good, cut, &error);
      if (cut == e2ee_b64url_encoded_len (1 + key_len))
        {
          g_assert_no_error (error);
          g_assert_cmpuint (back->len, ==, 1);
          g_ptr_array_unref (back);
          continue;
        }
      g_assert_null (back);
      assert_offer_error (error);
      g_clear_error (&error);
    }
  /* Record length byte: 193 and 202 (the data around it unchanged, so the
   * set is also misaligned) and one beyond the end. */
  static const guint8 bad_len[] = { 0, 193, 194, 196, 201, 202, 255 };
  for (gsize i = 0; i < G_N_ELEMENTS (bad_len); i++)
    {
      g_autofree char *t = patched (good, 1 + 129, bad_len[i], 0);
      back = decode_str (t, &error);
      g_assert_null (back);
      assert_offer_error (error);
      g_clear_error (&error);
    }
  /* Label, format byte, signing point; caps bit 2 cleared (the attachments
   * are then trailing garbage); version 1 with v2 data. */
  {
    static const struct { gsize at; guint8 v; } edits[] = {
      { 1 + 130, 'X' }, { 1 + 130 + 14, 2 }, { 1 + 130 + 14, 0 },
      { 1 + 128, 0 }, { 1, 0x01 }, { 1, 0x02 }, { 0, 0x01 }, { 0, 0x03 },
      { 1 + key_len, 0x01 },
    };
    for (gsize i = 0; i < G_N_ELEMENTS (edits); i++)
      {
        g_autofree char *t = patched (good, (gssize) edits[i].at, edits[i].v, 0);
        g_autofree char *orig = patched (good, -1, 0, 0);
        g_assert_cmpstr (orig, ==, good);
        back = decode_str (t, &error);
        g_assert_null (back);
        assert_offer_error (error);
        g_test_message ("edit %" G_GSIZE_FORMAT ": %s", i, error->message);
        g_clear_error (&error);
      }
  }
  /* The same identity key twice, even with other attachments. */
  {
    g_autoptr (GPtrArray) dup = make_v2_keys (1, 0x03);
    g_autofree char *t = NULL;
    g_ptr_array_add (dup, with_v2_data (dup->pdata[0], 0xFF));
    t = e2ee_offer_compact_encode (dup);
    back = decode_str (t, &error);
    g_assert_null (back);
    assert_offer_error (error);
    g_assert_nonnull (strstr (error->message, "same key"));
    g_clear_error (&error);
  }
  /* 17 v2 keys. */
  {
    g_autoptr (GPtrArray) many = make_v2_keys (E2EE_KEYSET_MAX, 0x03);
    g_autofree char *t16 = e2ee_offer_compact_encode (many);
    g_autofree guint8 *raw = NULL;
    g_autofree guint8 *raw17 = NULL;
    g_autofree char *t17 = NULL;
    gsize len = 0;

    raw = e2ee_b64url_decode (t16, strlen (t16), &len, NULL);
    raw17 = g_malloc (len + key_len);
    memcpy (raw17, raw, len);
    memcpy (raw17 + len, raw + 1, key_len); /* a 17th (and repeated) key */
    t17 = e2ee_b64url_encode (raw17, len + key_len);
    back = decode_str (t17, &error);
    g_assert_null (back);
    assert_offer_error (error);
    g_assert_nonnull (strstr (error->message, "16 keys"));
    g_clear_error (&error);
  }
}

/* 16 devices with v2 data through every published form, and back. */
static void
test_v2_all_forms (void)
{
  g_autoptr (GPtrArray) keys = make_v2_keys (E2EE_KEYSET_MAX, 0x03);
  g_autoptr (GPtrArray) from_jwk = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_key_unref);
  g_autoptr (GPtrArray) from_json = NULL, from_profile = NULL, from_status = NULL;
  g_autoptr (GPtrArray) from_offer = NULL, from_answer = NULL, from_compact = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *json = NULL;
  g_autofree char *profile = NULL, *status = NULL, *offer = NULL, *answer = NULL;
  g_autofree char *compact = NULL;
  E2eeOfferKind kind;

  /* Each key alone as a JWK (a PEP item), then the set of them. */
  for (guint i = 0; i < keys->len; i++)
    {
      g_autofree char *jwk = e2ee_key_to_jwk (keys->pdata[i], FALSE, TRUE);
      E2eeKey *k = e2ee_key_from_jwk (jwk, -1, E2EE_KEY_EXPECT_PUBLIC, &error);

      g_assert_no_error (error);
      g_ptr_array_add (from_jwk, k);
    }
  assert_same_v2 (keys, from_jwk);
  json = e2ee_keyset_to_json (from_jwk);
  from_json = e2ee_keyset_parse (json, -1, &error);
  g_assert_no_error (error);
  assert_same_v2 (keys, from_json);
  profile = e2ee_offer_profile_block (from_json);
  from_profile = e2ee_offer_profile_parse (profile, &error);
  g_assert_no_error (error);
  assert_same_v2 (keys, from_profile);
  status = e2ee_offer_status_replace ("out for lunch", from_profile);
  from_status = e2ee_offer_status_parse (status, &error);
  g_assert_no_error (error);
  assert_same_v2 (keys, from_status);
  /* A v1 tag is replaced in place by a v2 one, and removed again. */
  {
    g_autoptr (GPtrArray) v1 = make_keys (2);
    g_autofree char *old = e2ee_offer_status_replace ("back at 3", v1);
    g_autofree char *upgraded = e2ee_offer_status_replace (old, keys);
    g_autofree char *removed = e2ee_offer_status_replace (upgraded, NULL);
    g_autoptr (GPtrArray) parsed = e2ee_offer_status_parse (upgraded, &error);

    g_assert_no_error (error);
    assert_same_v2 (keys, parsed);
    g_assert_true (g_str_has_prefix (upgraded, "back at 3 [e2ee:Ag"));
    g_assert_cmpstr (removed, ==, "back at 3");
  }
  offer = e2ee_offer_inband (E2EE_OFFER_KIND_OFFER, from_status);
  from_offer = e2ee_offer_inband_parse (offer, &kind, &error);
  g_assert_no_error (error);
  g_assert_cmpint (kind, ==, E2EE_OFFER_KIND_OFFER);
  assert_same_v2 (keys, from_offer);
  answer = e2ee_offer_inband (E2EE_OFFER_KIND_ANSWER, from_offer);
  from_answer = e2ee_offer_inband_parse (answer, &kind, &error);
  g_assert_no_error (error);
  g_assert_cmpint (kind, ==, E2EE_OFFER_KIND_ANSWER);
  assert_same_v2 (keys, from_answer);
  compact = e2ee_offer_compact_encode (from_answer);
  from_compact = decode_str (compact, &error);
  g_assert_no_error (error);
  assert_same_v2 (keys, from_compact);
  /* The line printable and free of the characters some transports mangle. */
  for (const char *p = offer; *p; p++)
    g_assert_true (g_ascii_isprint (*p) && !strchr ("<>&\"'", *p));
  g_test_message ("16 v2 keys: JWK Set %" G_GSIZE_FORMAT ", profile block %" G_GSIZE_FORMAT
                  ", compact %" G_GSIZE_FORMAT ", status tag %" G_GSIZE_FORMAT
                  ", offer %" G_GSIZE_FORMAT " bytes", strlen (json), strlen (profile),
                  strlen (compact), strlen (status) - strlen ("out for lunch "),
                  strlen (offer));
  {
    g_autoptr (GPtrArray) one = make_v2_keys (1, 0x03);
    g_autofree char *j1 = e2ee_keyset_to_json (one);
    g_autofree char *o1 = e2ee_offer_inband (E2EE_OFFER_KIND_OFFER, one);
    g_autofree char *c1 = e2ee_offer_compact_encode (one);
    g_autofree char *p1 = e2ee_offer_profile_block (one);
    g_test_message ("1 v2 key: JWK Set %" G_GSIZE_FORMAT ", profile block %" G_GSIZE_FORMAT
                    ", compact %" G_GSIZE_FORMAT ", offer %" G_GSIZE_FORMAT " bytes",
                    strlen (j1), strlen (p1), strlen (c1), strlen (o1));
    g_assert_cmpuint (strlen (c1), ==, e2ee_b64url_encoded_len (1 + 65 + 65 + 195));
  }
}

int
main (int argc, char **argv)
{
  int ret;

  e2ee_test_init (&argc, &argv);
  for (gsize i = 0; i < G_N_ELEMENTS (gen_keys); i++)
    {
      g_autoptr (GError) error = NULL;
      gen_keys[i] = e2ee_key_generate (&error);
      g_assert_no_error (error);
    }

  g_test_add_func ("/offer/compact/roundtrip", test_compact_roundtrip);
  g_test_add_func ("/offer/compact/vectors", test_compact_vectors);
  g_test_add_func ("/offer/compact/reject", test_compact_reject);
  g_test_add_func ("/offer/profile/block", test_profile_block);
  g_test_add_func ("/offer/profile/replace", test_profile_replace);
  g_test_add_func ("/offer/profile/replace-in-place", test_profile_replace_in_place);
  g_test_add_func ("/offer/profile/html", test_profile_html);
  g_test_add_func ("/offer/profile/reject", test_profile_reject);
  g_test_add_func ("/offer/status/roundtrip", test_status);
  g_test_add_func ("/offer/status/reject", test_status_reject);
  g_test_add_func ("/offer/inband/roundtrip", test_inband);
  g_test_add_func ("/offer/inband/reject", test_inband_reject);
  g_test_add_func ("/offer/v2/compact-roundtrip", test_compact_v2_roundtrip);
  g_test_add_func ("/offer/v2/compact-mixed", test_compact_v2_mixed);
  g_test_add_func ("/offer/v2/compact-vectors", test_compact_v2_vectors);
  g_test_add_func ("/offer/v2/compact-reject", test_compact_v2_reject);
  g_test_add_func ("/offer/v2/all-forms", test_v2_all_forms);
  ret = g_test_run ();

  for (gsize i = 0; i < G_N_ELEMENTS (gen_keys); i++)
    e2ee_key_unref (gen_keys[i]);
  return ret;
}
