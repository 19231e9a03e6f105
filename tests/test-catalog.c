/* The bad-input catalog: malformed inputs for every parser that sees
 * attacker data, each with the exact error it must give.  Inputs that go
 * through e2ee_context_receive() must also leave the receiving keyring
 * database byte for byte as it was (compared through a save before and
 * after), never hand out plaintext, and a genuine message must still open
 * afterwards.  Plus the resource bounds: fragment floods, message size and
 * keyring size.  The v2 envelope itself (every field of it, the ratchet
 * header, the body, duplicates) has its own catalog: test-catalog-v2.c.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <glib/gstdio.h>
#include <sqlite3.h>
#include <string.h>
#include <unistd.h>

#include "e2ee-b64.h"
#include "e2ee-envelope.h"
#include "e2ee-envelope-v2.h"
#include "e2ee-error.h"
#include "e2ee-offer.h"
#include "e2ee-prekey.h"
#include "e2ee-session.h"
#include "e2ee-test-util.h"
#include "e2ee-wipe.h"

/* libgcrypt's entropy collector keeps its one-time state until exit. */
const char *__lsan_default_suppressions (void);
const char *
__lsan_default_suppressions (void)
{
  return "leak:libgcrypt.so\n";
}

/* Every plaintext sealed here contains this, so a leak of it into a result
 * or an error message is caught. */
#define SECRET "SECRET-7f3a"
#define ALICE "alice@example.test"
#define BOB "bob@example.test"
#define PROTO "prpl-jabber"

/* P-256 group order n, big-endian. */
static const char order_hex[] =
  "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";

typedef enum {
  K_ARMOR,        /* e2ee_armor_decode */
  K_JWK_PUBLIC,   /* e2ee_key_from_jwk, public expected */
  K_JWK_PRIVATE,  /* e2ee_key_from_jwk, private expected */
  K_KEYSET,       /* e2ee_keyset_parse */
  K_COMPACT,      /* e2ee_offer_compact_decode */
  K_STATUS,       /* e2ee_offer_status_parse */
  K_PROFILE,      /* e2ee_offer_profile_parse */
  K_INBAND,       /* e2ee_offer_inband_parse */
  K_KEYRING,      /* e2ee_keyring_load of a file holding the input */
  K_RECEIVE,      /* e2ee_context_receive at Bob */
} Kind;

typedef struct _Case Case;
/* Builds the input (may first deliver setup messages); returns bytes. */
typedef GBytes *(*BuildFunc) (const Case *c);

struct _Case {
  const char *name;
  Kind kind;
  const char *text;       /* the input, or NULL to call build */
  BuildFunc build;
  gint code;              /* expected E2EE_ERROR code */
  const char *from;       /* K_RECEIVE: sender (default Alice) */
  guint mode;             /* K_KEYRING: file mode (default 0600) */
};

/* ------------------------------------------------------------------ */
/* The two parties */

static struct {
  char *dir;
  E2eeContext *alice_ctx, *bob_ctx;
  E2eeAccountRecord *alice, *bob;
} fx;

static char *
tmp_path (const char *name)
{
  return g_build_filename (fx.dir, name, NULL);
}

/* Seconds on the receiver's fragment clock: one per message, unless a
 * test holds it still. */
static gint64 clock_now = 1000;
static gboolean clock_held;

static void
receive (const char *from, const char *text, E2eeRecvResult *r)
{
  e2ee_context_receive (fx.bob_ctx, fx.bob, from, text,
                        clock_held ? clock_now : clock_now++, r);
}

static const char *
case_from (const Case *c)
{
  return c->from ? c->from : ALICE;
}

static void
fixture_init (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *bob_path = NULL;
  g_autoptr (GPtrArray) a_keys = NULL, b_keys = NULL;
  char **pieces;
  E2eeRecvResult r;

  fx.dir = g_dir_make_tmp ("e2ee-catalog-XXXXXX", &error);
  g_assert_no_error (error);
  bob_path = tmp_path ("bob.json");
  fx.alice_ctx = e2ee_context_new (e2ee_keyring_new ("/nonexistent/alice.json"));
  fx.bob_ctx = e2ee_context_new (e2ee_keyring_new (bob_path));
  fx.alice = e2ee_context_ensure_account (fx.alice_ctx, PROTO, ALICE, NULL, &error);
  g_assert_no_error (error);
  fx.bob = e2ee_context_ensure_account (fx.bob_ctx, PROTO, BOB, NULL, &error);
  g_assert_no_error (error);
  a_keys = e2ee_context_own_keyset (fx.alice_ctx, fx.alice);
  b_keys = e2ee_context_own_keyset (fx.bob_ctx, fx.bob);
  g_assert_cmpint (e2ee_context_learn_keys (fx.bob_ctx, fx.bob, ALICE, a_keys, NULL),
                   ==, E2EE_LEARN_FIRST_CONTACT);
  g_assert_cmpint (e2ee_context_learn_keys (fx.alice_ctx, fx.alice, BOB, b_keys, NULL),
                   ==, E2EE_LEARN_FIRST_CONTACT);

  /* One genuine message first: the session exists, so the cases below
   * start from a settled state. */
  pieces = e2ee_context_encrypt (fx.alice_ctx, fx.alice, BOB, "hello " SECRET, 0, &error);
  g_assert_no_error (error);
  receive (ALICE, pieces[0], &r);
  g_assert_no_error (r.error);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_MESSAGE);
  e2ee_recv_result_clear (&r);
  g_strfreev (pieces);
}

static void
fixture_clear (void)
{
  g_autoptr (GDir) d = g_dir_open (fx.dir, 0, NULL);
  const char *name;

  while (d && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *p = tmp_path (name);
      g_unlink (p);
    }
  g_rmdir (fx.dir);
  g_free (fx.dir);
  e2ee_context_free (fx.alice_ctx);
  e2ee_context_free (fx.bob_ctx);
}

/* Bob's keyring database (bob.sqlite and its -wal file) as it is on disk
 * after a save. */
static GBytes *
bob_snapshot (void)
{
  g_autoptr (GError) error = NULL;
  GByteArray *all = g_byte_array_new ();
  static const char *const names[] = { "bob.sqlite", "bob.sqlite-wal" };

  g_assert_true (e2ee_keyring_save (e2ee_context_get_keyring (fx.bob_ctx), &error));
  g_assert_no_error (error);
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *path = tmp_path (names[i]);
      g_autofree char *data = NULL;
      gsize len = 0;

      if (g_file_get_contents (path, &data, &len, NULL))
        g_byte_array_append (all, (const guint8 *) data, (guint) len);
      else
        g_assert_cmpuint (i, ==, 1);  /* the database itself must be there */
    }
  return g_byte_array_free_to_bytes (all);
}

/* What Bob's database holds, in bytes: every row of every table as a
 * reader sees it (a database file grows by pages and its -wal file until
 * a checkpoint, whatever it holds). */
static gsize
bob_live_bytes (void)
{
  g_autoptr (GBytes) saved = bob_snapshot ();
  g_autofree char *path = tmp_path ("bob.sqlite");
  sqlite3 *db = NULL;
  sqlite3_stmt *tables = NULL;
  gsize total = 0;

  g_assert_cmpint (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (db, "SELECT name FROM sqlite_master WHERE type = 'table'",
                                       -1, &tables, NULL), ==, SQLITE_OK);
  while (sqlite3_step (tables) == SQLITE_ROW)
    {
      char *sql = sqlite3_mprintf ("SELECT * FROM \"%w\"", sqlite3_column_text (tables, 0));
      sqlite3_stmt *rows = NULL;

      g_assert_cmpint (sqlite3_prepare_v2 (db, sql, -1, &rows, NULL), ==, SQLITE_OK);
      while (sqlite3_step (rows) == SQLITE_ROW)
        for (int i = 0; i < sqlite3_column_count (rows); i++)
          total += sqlite3_column_type (rows, i) == SQLITE_INTEGER
                   ? 8 : (gsize) sqlite3_column_bytes (rows, i);
      sqlite3_finalize (rows);
      sqlite3_free (sql);
    }
  sqlite3_finalize (tables);
  sqlite3_close (db);
  return total;
}

/* ------------------------------------------------------------------ */
/* Input builders */

static GBytes *
text_bytes (char *owned)
{
  return g_bytes_new_take (owned, strlen (owned));
}

/* A fresh envelope Alice sends Bob (binary). */
static GBytes *
alice_envelope (const char *text)
{
  g_autoptr (GError) error = NULL;
  char **pieces = e2ee_context_encrypt (fx.alice_ctx, fx.alice, BOB, text, 0, &error);
  GBytes *raw;

  g_assert_no_error (error);
  raw = e2ee_armor_decode (pieces[0], &error);
  g_assert_no_error (error);
  g_strfreev (pieces);
  return raw;
}

static GBytes *
armored (GBytes *raw)
{
  char *s = e2ee_armor_encode (raw);
  g_bytes_unref (raw);
  return text_bytes (s);
}

static GBytes *b_genuine (const Case *c) { return armored (alice_envelope ("genuine " SECRET)); }

static GBytes *
b_html_entity (const Case *c)
{
  GBytes *wire = b_genuine (c);
  g_autofree char *s = g_strndup (g_bytes_get_data (wire, NULL), g_bytes_get_size (wire));
  gsize mid = strlen (s) / 2;

  g_bytes_unref (wire);
  return text_bytes (g_strdup_printf ("%.*s&amp;%s", (int) mid, s, s + mid));
}

static GBytes *
b_html_br (const Case *c)
{
  GBytes *wire = b_genuine (c);
  g_autofree char *s = g_strndup (g_bytes_get_data (wire, NULL), g_bytes_get_size (wire));
  gsize mid = strlen (s) / 2;

  g_bytes_unref (wire);
  return text_bytes (g_strdup_printf ("%.*s<br>%s", (int) mid, s, s + mid));
}

static GBytes *
b_wrapped (const Case *c)
{
  GBytes *wire = b_genuine (c);
  g_autofree char *s = g_strndup (g_bytes_get_data (wire, NULL), g_bytes_get_size (wire));
  gsize mid = strlen (s) / 2;

  g_bytes_unref (wire);
  return text_bytes (g_strdup_printf ("%.*s\n%s", (int) mid, s, s + mid));
}

static GBytes *
b_armor_padding (const Case *c)
{
  GBytes *wire = b_genuine (c);
  g_autofree char *s = g_strndup (g_bytes_get_data (wire, NULL), g_bytes_get_size (wire));

  g_bytes_unref (wire);
  return text_bytes (g_strconcat (s, "==", NULL));
}

static GBytes *
b_frag_huge (const Case *c)
{
  GString *s = g_string_new ("?E2F:0000beef:1/2:");

  for (int i = 0; i < 97 * 1024; i++)
    g_string_append_c (s, 'A');
  return text_bytes (g_string_free (s, FALSE));
}

static GBytes *
b_frag_flood (const Case *c)
{
  /* Four messages left incomplete fill this buddy's share; the fifth is
   * refused (the other buddies are tested in /catalog/bounds). */
  for (guint i = 0; i < 4; i++)
    {
      g_autofree char *f = g_strdup_printf ("?E2F:f100%04x:1/3:junk", i);
      E2eeRecvResult r;

      receive (case_from (c), f, &r);
      g_assert_no_error (r.error);
      g_assert_cmpint (r.kind, ==, E2EE_RECV_PENDING);
      e2ee_recv_result_clear (&r);
    }
  return text_bytes (g_strdup ("?E2F:f1000099:1/3:junk"));
}

static GBytes *
b_frag_conflict (const Case *c)
{
  E2eeRecvResult r;

  receive (case_from (c), "?E2F:c0ffee00:1/2:first", &r);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_PENDING);
  e2ee_recv_result_clear (&r);
  return text_bytes (g_strdup ("?E2F:c0ffee00:1/2:other"));
}

static GBytes *
b_frag_count (const Case *c)
{
  E2eeRecvResult r;

  receive (case_from (c), "?E2F:c0ffee01:1/2:first", &r);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_PENDING);
  e2ee_recv_result_clear (&r);
  return text_bytes (g_strdup ("?E2F:c0ffee01:2/3:second"));
}

/* Compact key set bytes: version, then per key caps || x || y. */
static char *
compact_with (guint8 version, guint8 caps, gboolean bad_point, guint copies, gsize cut)
{
  const E2eeKey *k = fx.alice->identity;
  GByteArray *b = g_byte_array_new ();
  char *s;

  g_byte_array_append (b, &version, 1);
  for (guint i = 0; i < copies; i++)
    {
      guint8 y[32];
      memcpy (y, e2ee_key_get_y (k), 32);
      if (bad_point)
        y[31] ^= 0x01;
      g_byte_array_append (b, &caps, 1);
      g_byte_array_append (b, e2ee_key_get_x (k), 32);
      g_byte_array_append (b, y, 32);
    }
  g_assert_cmpuint (cut, <=, b->len);
  s = e2ee_b64url_encode (b->data, b->len - cut);
  g_byte_array_unref (b);
  return s;
}

static GBytes *
offer (char *compact)
{
  char *s = g_strconcat (E2EE_OFFER_PREFIX, compact, " key offer", NULL);
  g_free (compact);
  return text_bytes (s);
}

static GBytes *b_offer_point (const Case *c) { return offer (compact_with (1, 1, TRUE, 1, 0)); }
static GBytes *b_offer_version (const Case *c) { return offer (compact_with (2, 1, FALSE, 1, 0)); }
static GBytes *b_offer_dup (const Case *c) { return offer (compact_with (1, 1, FALSE, 2, 0)); }
static GBytes *b_offer_flood (const Case *c) { return offer (compact_with (1, 1, FALSE, 17, 0)); }
static GBytes *b_offer_partial (const Case *c) { return offer (compact_with (1, 1, FALSE, 1, 7)); }
static GBytes *b_offer_caps (const Case *c) { return offer (compact_with (1, 2, FALSE, 1, 0)); }
static GBytes *b_compact_point (const Case *c) { return text_bytes (compact_with (1, 1, TRUE, 1, 0)); }

static GBytes *
b_compact_plus_byte (const Case *c)
{
  /* One key and one byte more. */
  const E2eeKey *k = fx.alice->identity;
  guint8 raw[1 + 65 + 1] = { 1, 1 };
  memcpy (raw + 2, e2ee_key_get_x (k), 32);
  memcpy (raw + 34, e2ee_key_get_y (k), 32);
  raw[66] = 0;
  return text_bytes (e2ee_b64url_encode (raw, sizeof raw));
}

static GBytes *
b_status_twice (const Case *c)
{
  g_autofree char *compact = compact_with (1, 1, FALSE, 1, 0);
  return text_bytes (g_strdup_printf ("[e2ee:%s] away [e2ee:%s]", compact, compact));
}

static GBytes *
b_status_cut (const Case *c)
{
  g_autofree char *compact = compact_with (1, 1, FALSE, 1, 0);
  return text_bytes (g_strdup_printf ("away [e2ee:%.40s", compact));
}

static GPtrArray *
alice_set (void)
{
  return e2ee_context_own_keyset (fx.alice_ctx, fx.alice);
}

static GBytes *
b_profile_no_end (const Case *c)
{
  g_autoptr (GPtrArray) keys = alice_set ();
  g_autofree char *block = e2ee_offer_profile_block (keys);
  char *end = strstr (block, E2EE_PROFILE_END);

  *end = '\0';
  return text_bytes (g_strconcat ("About me.\n", block, NULL));
}

static GBytes *
b_profile_twice (const Case *c)
{
  g_autoptr (GPtrArray) keys = alice_set ();
  g_autofree char *block = e2ee_offer_profile_block (keys);
  return text_bytes (g_strdup_printf ("%s\nand again\n%s", block, block));
}

static GBytes *
b_profile_mangled (const Case *c)
{
  g_autoptr (GPtrArray) keys = alice_set ();
  g_autofree char *block = e2ee_offer_profile_block (keys);
  g_autofree char *end = g_strrstr (block, "\n" E2EE_PROFILE_END)
                         ? g_strdup (g_strrstr (block, "\n" E2EE_PROFILE_END)) : NULL;

  /* A server that replaced a character of the payload with '?'. */
  *g_strrstr (block, "\n" E2EE_PROFILE_END) = '\0';
  block[strlen (block) - 3] = '?';
  return text_bytes (g_strconcat (block, end, NULL));
}

/* A JWK from parts: x, y, d as base64url strings (NULL: left out). */
static char *
jwk_text (const char *crv, const char *x, const char *y, const char *d, const char *extra)
{
  GString *s = g_string_new ("{\"kty\":\"EC\"");

  if (crv)
    g_string_append_printf (s, ",\"crv\":\"%s\"", crv);
  if (x)
    g_string_append_printf (s, ",\"x\":\"%s\"", x);
  if (y)
    g_string_append_printf (s, ",\"y\":\"%s\"", y);
  if (d)
    g_string_append_printf (s, ",\"d\":\"%s\"", d);
  if (extra)
    g_string_append (s, extra);
  g_string_append_c (s, '}');
  return g_string_free (s, FALSE);
}

static char *
b64_of (const guint8 *data, gsize len)
{
  return e2ee_b64url_encode (data, len);
}

static char *
alice_x (void)
{
  return b64_of (e2ee_key_get_x (fx.alice->identity), 32);
}

static char *
alice_y (void)
{
  return b64_of (e2ee_key_get_y (fx.alice->identity), 32);
}

static GBytes *
b_jwk_missing_y (const Case *c)
{
  g_autofree char *x = alice_x ();
  return text_bytes (jwk_text ("P-256", x, NULL, NULL, NULL));
}

static GBytes *
b_jwk_public (const Case *c)
{
  g_autofree char *x = alice_x (), *y = alice_y ();
  return text_bytes (jwk_text ("P-256", x, y, NULL, NULL));
}

static GBytes *
b_jwk_curve (const Case *c)
{
  g_autofree char *x = alice_x (), *y = alice_y ();
  return text_bytes (jwk_text ("P-384", x, y, NULL, NULL));
}

static GBytes *
b_jwk_kty (const Case *c)
{
  g_autofree char *x = alice_x (), *y = alice_y ();
  g_autofree char *s = jwk_text ("P-256", x, y, NULL, NULL);
  return text_bytes (g_strconcat ("{\"kty\":\"RSA\"", s + strlen ("{\"kty\":\"EC\""), NULL));
}

static GBytes *
b_jwk_padded (const Case *c)
{
  g_autofree char *x = alice_x (), *y = alice_y ();
  g_autofree char *xp = g_strconcat (x, "=", NULL);
  return text_bytes (jwk_text ("P-256", xp, y, NULL, NULL));
}

static GBytes *
b_jwk_std_b64 (const Case *c)
{
  /* Standard base64 alphabet ('+', '/') instead of base64url. */
  g_autofree char *y = alice_y ();
  return text_bytes (jwk_text ("P-256", "+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+", y, NULL, NULL));
}

static GBytes *
b_jwk_short (const Case *c)
{
  g_autofree char *x = b64_of (e2ee_key_get_x (fx.alice->identity), 31), *y = alice_y ();
  return text_bytes (jwk_text ("P-256", x, y, NULL, NULL));
}

static GBytes *
b_jwk_long (const Case *c)
{
  guint8 x33[33] = { 0 };
  g_autofree char *x = NULL, *y = alice_y ();

  memcpy (x33 + 1, e2ee_key_get_x (fx.alice->identity), 32);
  x = b64_of (x33, 33);
  return text_bytes (jwk_text ("P-256", x, y, NULL, NULL));
}

static GBytes *
b_jwk_range (const Case *c)
{
  guint8 ff[32];
  g_autofree char *x = NULL, *y = alice_y ();

  memset (ff, 0xff, sizeof ff);
  x = b64_of (ff, 32);
  return text_bytes (jwk_text ("P-256", x, y, NULL, NULL));
}

static GBytes *
b_jwk_off_curve (const Case *c)
{
  guint8 y[32];
  g_autofree char *xs = alice_x (), *ys = NULL;

  memcpy (y, e2ee_key_get_y (fx.alice->identity), 32);
  y[31] ^= 0x01;
  ys = b64_of (y, 32);
  return text_bytes (jwk_text ("P-256", xs, ys, NULL, NULL));
}

static GBytes *
b_jwk_infinity (const Case *c)
{
  guint8 zero[32] = { 0 };
  g_autofree char *z = b64_of (zero, 32);
  return text_bytes (jwk_text ("P-256", z, z, NULL, NULL));
}

static char *
alice_d (void)
{
  g_autofree char *jwk = e2ee_key_to_jwk (fx.alice->identity, TRUE, FALSE);
  g_autoptr (JsonParser) p = json_parser_new ();
  char *d;

  g_assert_true (json_parser_load_from_data (p, jwk, -1, NULL));
  d = g_strdup (json_object_get_string_member (json_node_get_object (json_parser_get_root (p)), "d"));
  e2ee_wipe (jwk, strlen (jwk));
  return d;
}

static GBytes *
b_jwk_unexpected_d (const Case *c)
{
  g_autofree char *x = alice_x (), *y = alice_y ();
  char *d = alice_d ();
  GBytes *out = text_bytes (jwk_text ("P-256", x, y, d, NULL));
  e2ee_string_free (d);
  return out;
}

static GBytes *
b_jwk_mismatch (const Case *c)
{
  g_autofree char *jwk = e2ee_key_to_jwk (fx.bob->identity, TRUE, FALSE);
  g_autoptr (JsonParser) p = json_parser_new ();
  g_autofree char *x = alice_x (), *y = alice_y ();
  const char *d;
  GBytes *out;

  /* Bob's scalar with Alice's point. */
  g_assert_true (json_parser_load_from_data (p, jwk, -1, NULL));
  d = json_object_get_string_member (json_node_get_object (json_parser_get_root (p)), "d");
  out = text_bytes (jwk_text ("P-256", x, y, d, NULL));
  e2ee_wipe (jwk, strlen (jwk));
  return out;
}

static GBytes *
b_jwk_d_zero (const Case *c)
{
  guint8 zero[32] = { 0 };
  g_autofree char *x = alice_x (), *y = alice_y (), *d = b64_of (zero, 32);
  return text_bytes (jwk_text ("P-256", x, y, d, NULL));
}

static GBytes *
b_jwk_d_order (const Case *c)
{
  gsize len;
  g_autofree guint8 *n = e2ee_test_unhex (order_hex, &len);
  g_autofree char *x = alice_x (), *y = alice_y (), *d = b64_of (n, len);
  return text_bytes (jwk_text ("P-256", x, y, d, NULL));
}

static GBytes *
b_jwk_dup_member (const Case *c)
{
  g_autofree char *x = alice_x (), *y = alice_y ();
  g_autofree char *extra = g_strdup_printf (",\"x\":\"%s\"", x);
  return text_bytes (jwk_text ("P-256", x, y, NULL, extra));
}

static GBytes *
b_jwk_escaped_name (const Case *c)
{
  g_autofree char *x = alice_x (), *y = alice_y ();
  g_autofree char *s = jwk_text ("P-256", NULL, y, NULL, NULL);
  /* "\u0078" is "x" spelled with an escape. */
  return text_bytes (g_strdup_printf ("{\"\\u0078\":\"%s\",%s", x, s + 1));
}

static GBytes *
b_jwk_nul (const Case *c)
{
  g_autofree char *x = alice_x (), *y = alice_y ();
  g_autofree char *s = jwk_text ("P-256", x, y, NULL, NULL);
  gsize len = strlen (s);
  guint8 *d = g_malloc (len + 8);

  /* The JSON, a NUL, then a second "y": only a length-aware parser sees it. */
  memcpy (d, s, len);
  memcpy (d + len, "\0{\"y\":1}", 8);
  return g_bytes_new_take (d, len + 8);
}

/* RFC 8259 strictness (PROTOCOL.md 2.1): Alice's valid public JWK with
 * one lexical defect that json-glib alone would accept. */
static GBytes *
strict_jwk (const char *crv, const char *x_suffix, const char *extra)
{
  g_autofree char *x = alice_x (), *y = alice_y ();
  g_autofree char *xs = g_strconcat (x, x_suffix, NULL);

  return text_bytes (jwk_text (crv, xs, y, NULL, extra));
}
#define STRICT(fn, crv, xs, extra) \
  static GBytes *fn (const Case *c) { return strict_jwk (crv, xs, extra); }
STRICT (b_json_crv_nul, "P-256\\u0000junk", "", NULL)
STRICT (b_json_x_nul, "P-256", "\\u0000zz", NULL)
STRICT (b_json_leading_zero, "P-256", "", ",\"e2ee_v\":[01]")
STRICT (b_json_negative_zero_digits, "P-256", "", ",\"alg\":-01")
STRICT (b_json_trailing_dot, "P-256", "", ",\"alg\":1.")
STRICT (b_json_leading_dot, "P-256", "", ",\"alg\":.5")
STRICT (b_json_empty_exponent, "P-256", "", ",\"alg\":1e")
STRICT (b_json_plus_sign, "P-256", "", ",\"alg\":+1")
STRICT (b_json_raw_tab, "P-256", "", ",\"use\":\"a\tb\"")
STRICT (b_json_raw_newline, "P-256", "", ",\"use\":\"a\nb\"")
STRICT (b_json_bad_escape, "P-256", "", ",\"use\":\"\\x41\"")
STRICT (b_json_short_u_escape, "P-256", "", ",\"use\":\"\\u41\"")
STRICT (b_json_lone_surrogate, "P-256", "", ",\"use\":\"\\ud800\"")
STRICT (b_json_bad_utf8, "P-256", "", ",\"use\":\"\xff\"")
STRICT (b_json_literal, "P-256", "", ",\"ext\":tru")
STRICT (b_json_trailing_comma, "P-256", "", ",")

static GBytes *
b_keyset_x_nul (const Case *c)
{
  g_autofree char *x = alice_x (), *y = alice_y ();

  return text_bytes (g_strdup_printf ("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\","
                                      "\"x\":\"%s\\u0000zz\",\"y\":\"%s\"}]}", x, y));
}

static GBytes *
b_jwk_nested (const Case *c)
{
  GString *s = g_string_new ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"ext\":");
  for (int i = 0; i < 200; i++)
    g_string_append_c (s, '[');
  for (int i = 0; i < 200; i++)
    g_string_append_c (s, ']');
  g_string_append_c (s, '}');
  return text_bytes (g_string_free (s, FALSE));
}

static GBytes *
b_jwk_huge_caps (const Case *c)
{
  g_autofree char *x = alice_x (), *y = alice_y ();
  return text_bytes (jwk_text ("P-256", x, y, NULL, ",\"e2ee_v\":[99999999999999999999999]"));
}

static GBytes *
b_jwk_bad_kid (const Case *c)
{
  g_autofree char *x = alice_x (), *y = alice_y ();
  g_autofree char *extra = g_strdup_printf (",\"kid\":\"%s\"", e2ee_key_get_kid (fx.bob->identity));
  return text_bytes (jwk_text ("P-256", x, y, NULL, extra));
}

static char *
set_entry (const E2eeKey *key)
{
  return e2ee_key_to_jwk (key, FALSE, TRUE);
}

static GBytes *
b_set_many (const Case *c)
{
  GString *s = g_string_new ("{\"keys\":[");
  for (int i = 0; i < E2EE_KEYSET_MAX + 1; i++)
    {
      g_autoptr (E2eeKey) k = e2ee_key_generate (NULL);
      g_autofree char *e = set_entry (k);
      g_string_append_printf (s, "%s%s", i ? "," : "", e);
    }
  g_string_append (s, "]}");
  return text_bytes (g_string_free (s, FALSE));
}

static GBytes *
b_set_dup (const Case *c)
{
  g_autofree char *e = set_entry (fx.alice->identity);
  return text_bytes (g_strdup_printf ("{\"keys\":[%s,%s]}", e, e));
}

static GBytes *
b_set_private (const Case *c)
{
  char *e = e2ee_key_to_jwk (fx.alice->identity, TRUE, TRUE);
  GBytes *out = text_bytes (g_strdup_printf ("{\"keys\":[%s]}", e));
  e2ee_string_free (e);
  return out;
}

static GBytes *
b_set_no_kid (const Case *c)
{
  g_autofree char *e = e2ee_key_to_jwk (fx.alice->identity, FALSE, FALSE);
  return text_bytes (g_strdup_printf ("{\"keys\":[%s]}", e));
}

/* Protocol-v2 attachments (e2ee_sig, e2ee_pk) of Alice's identity key: a
 * signing key and a genuine signed prekey record, made once. */
static struct {
  E2eeKey *sign_pub;
  GBytes *record;
} v2;

static void
v2_parts (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (E2eeSignKey) sk = NULL;
  g_autoptr (E2eeEcSecret) secret = NULL;

  if (v2.sign_pub != NULL)
    return;
  sk = e2ee_sign_key_generate (&error);
  g_assert_no_error (error);
  g_assert_true (e2ee_prekey_create (sk, fx.alice->identity, 1, 1, 1800000000, 0x03,
                                     &secret, &v2.record, &error));
  v2.sign_pub = e2ee_key_ref (e2ee_sign_key_get_public (sk));
}

/* base64url of the signing key's X || Y with byte @flip (-1: none) ^ 1. */
static char *
v2_sig (gssize flip)
{
  guint8 xy[64];

  v2_parts ();
  memcpy (xy, e2ee_key_get_x (v2.sign_pub), 32);
  memcpy (xy + 32, e2ee_key_get_y (v2.sign_pub), 32);
  if (flip >= 0)
    xy[flip] ^= 1;
  return b64_of (xy, sizeof xy);
}

/* base64url of the record cut or zero-extended to @len, byte @at set to
 * @value (-1: none). */
static char *
v2_pk (gsize len, gssize at, guint8 value)
{
  gsize n;
  const guint8 *rec;
  g_autofree guint8 *buf = NULL;

  v2_parts ();
  rec = g_bytes_get_data (v2.record, &n);
  buf = g_malloc0 (MAX (n, len));
  memcpy (buf, rec, n);
  if (at >= 0)
    buf[at] = value;
  return b64_of (buf, len);
}

/* Alice's public JWK with e2ee_v @v and the given members (NULL: left out). */
static GBytes *
v2_jwk (const char *v, const char *sig, const char *pk)
{
  g_autofree char *x = alice_x (), *y = alice_y ();
  GString *extra = g_string_new (NULL);
  g_autofree char *text = NULL;

  g_string_append_printf (extra, ",\"e2ee_v\":%s", v);
  if (sig)
    g_string_append_printf (extra, ",\"e2ee_sig\":\"%s\"", sig);
  if (pk)
    g_string_append_printf (extra, ",\"e2ee_pk\":\"%s\"", pk);
  text = jwk_text ("P-256", x, y, NULL, extra->str);
  g_string_free (extra, TRUE);
  return text_bytes (g_steal_pointer (&text));
}

static GBytes *
b_v2_sig_only (const Case *c)
{
  g_autofree char *sig = v2_sig (-1);
  return v2_jwk ("[1,2]", sig, NULL);
}

static GBytes *
b_v2_pk_only (const Case *c)
{
  g_autofree char *pk = v2_pk (195, -1, 0);
  return v2_jwk ("[1,2]", NULL, pk);
}

static GBytes *
b_v2_without_v2 (const Case *c)
{
  g_autofree char *sig = v2_sig (-1), *pk = v2_pk (195, -1, 0);
  return v2_jwk ("[1]", sig, pk);
}

static GBytes *
b_v2_sig_off_curve (const Case *c)
{
  g_autofree char *sig = v2_sig (63), *pk = v2_pk (195, -1, 0);
  return v2_jwk ("[1,2]", sig, pk);
}

static GBytes *
b_v2_sig_identity (const Case *c)
{
  guint8 xy[64];
  g_autofree char *sig = NULL, *pk = v2_pk (195, -1, 0);

  memcpy (xy, e2ee_key_get_x (fx.alice->identity), 32);
  memcpy (xy + 32, e2ee_key_get_y (fx.alice->identity), 32);
  sig = b64_of (xy, sizeof xy);
  return v2_jwk ("[1,2]", sig, pk);
}

static GBytes *
b_v2_pk_193 (const Case *c)
{
  g_autofree char *sig = v2_sig (-1), *pk = v2_pk (193, -1, 0);
  return v2_jwk ("[1,2]", sig, pk);
}

static GBytes *
b_v2_pk_202 (const Case *c)
{
  g_autofree char *sig = v2_sig (-1), *pk = v2_pk (202, -1, 0);
  return v2_jwk ("[1,2]", sig, pk);
}

static GBytes *
b_v2_pk_label (const Case *c)
{
  g_autofree char *sig = v2_sig (-1), *pk = v2_pk (195, 0, 'Q');
  return v2_jwk ("[1,2]", sig, pk);
}

static GBytes *
b_v2_pk_format (const Case *c)
{
  g_autofree char *sig = v2_sig (-1), *pk = v2_pk (195, 14, 2);
  return v2_jwk ("[1,2]", sig, pk);
}

static GBytes *
b_v2_set_entry (const Case *c)
{
  g_autoptr (GBytes) entry = b_v2_pk_193 (c);
  gsize n;
  const char *e = g_bytes_get_data (entry, &n);

  /* The entry with its kid, as a one-key set. */
  return text_bytes (g_strdup_printf ("{\"keys\":[%.*s,\"kid\":\"%s\"}]}", (int) n - 1, e,
                                      e2ee_key_get_kid (fx.alice->identity)));
}

/* The binary compact form of Alice's key with v2 data, then: byte @at
 * (-1: none) set to @value, or XORed with it when @flip; @extra zero bytes
 * appended; @cut bytes taken off the end. */
static char *
v2_compact (gssize at, guint8 value, gboolean flip, gsize extra, gsize cut)
{
  g_autoptr (E2eeKey) caps = NULL, key = NULL;
  g_autoptr (GPtrArray) keys = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_key_unref);
  g_autofree char *good = NULL;
  g_autofree guint8 *raw = NULL;
  gsize len = 0;

  v2_parts ();
  caps = e2ee_key_with_caps (fx.alice->identity, E2EE_CAPS_V1 | E2EE_CAPS_V2);
  key = e2ee_key_with_v2 (caps, v2.sign_pub, v2.record);
  g_ptr_array_add (keys, e2ee_key_public_copy (key));
  good = e2ee_offer_compact_encode (keys);
  raw = e2ee_b64url_decode (good, strlen (good), &len, NULL);
  g_assert_nonnull (raw);
  raw = g_realloc (raw, len + extra);
  memset (raw + len, 0, extra);
  len += extra;
  if (at >= 0)
    raw[at] = flip ? raw[at] ^ value : value;
  return b64_of (raw, len - cut);
}

/* Byte 130 is the record length; 131.. the record. */
static GBytes *b_v2c_len_193 (const Case *c) { return text_bytes (v2_compact (130, 193, FALSE, 0, 2)); }
static GBytes *b_v2c_len_202 (const Case *c) { return text_bytes (v2_compact (130, 202, FALSE, 7, 0)); }
static GBytes *b_v2c_trailing (const Case *c) { return text_bytes (v2_compact (-1, 0, FALSE, 1, 0)); }
static GBytes *b_v2c_cut (const Case *c) { return text_bytes (v2_compact (-1, 0, FALSE, 0, 1)); }
static GBytes *b_v2c_label (const Case *c) { return text_bytes (v2_compact (131, 'Q', FALSE, 0, 0)); }
static GBytes *b_v2c_sig_point (const Case *c) { return text_bytes (v2_compact (129, 1, TRUE, 0, 0)); }
static GBytes *b_v2c_no_v2_data (const Case *c) { return text_bytes (compact_with (2, 1, FALSE, 1, 0)); }
static GBytes *b_v2c_in_v1 (const Case *c) { return text_bytes (v2_compact (0, 1, FALSE, 0, 0)); }

static GBytes *
b_v2_status (const Case *c)
{
  g_autofree char *compact = v2_compact (129, 1, TRUE, 0, 0);
  return text_bytes (g_strdup_printf ("away [e2ee:%s]", compact));
}

static GBytes *b_v2_offer (const Case *c) { return offer (v2_compact (130, 193, FALSE, 0, 2)); }

static GBytes *
b_v2_profile (const Case *c)
{
  g_autoptr (GBytes) json = b_v2_set_entry (c);
  gsize n;
  const guint8 *j = g_bytes_get_data (json, &n);
  g_autofree char *b64 = b64_of (j, n);

  return text_bytes (g_strdup_printf (E2EE_PROFILE_BEGIN "\nKeys.\n%s\n" E2EE_PROFILE_END, b64));
}

/* The v2 cases above are one edit away from inputs that parse. */
static void
test_v2_bases_valid (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *sig = v2_sig (-1), *pk = v2_pk (195, -1, 0);
  g_autoptr (GBytes) jwk = v2_jwk ("[1,2]", sig, pk);
  g_autoptr (E2eeKey) key = e2ee_key_from_jwk (g_bytes_get_data (jwk, NULL),
                                               (gssize) g_bytes_get_size (jwk),
                                               E2EE_KEY_EXPECT_PUBLIC, &error);
  g_autofree char *compact = v2_compact (-1, 0, FALSE, 0, 0);
  g_autoptr (GPtrArray) keys = NULL;

  g_assert_no_error (error);
  g_assert_true (e2ee_key_equal (e2ee_key_get_sign_pub (key), v2.sign_pub));
  keys = e2ee_offer_compact_decode (compact, strlen (compact), &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (e2ee_key_get_prekey_record (keys->pdata[0]), v2.record));
}

/* Keyring files: the valid one in tests/catalog with one edit. */
static char *
keyring_template (void)
{
  g_autofree char *path = e2ee_test_data_path ("catalog/keyring-valid.json");
  char *text = NULL;

  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  return text;
}

static GBytes *
keyring_edit (const char *from, const char *to)
{
  g_autofree char *text = keyring_template ();
  char *at = strstr (text, from);

  g_assert_nonnull (at);
  *at = '\0';
  return text_bytes (g_strconcat (text, to, at + strlen (from), NULL));
}

static GBytes *b_ring_valid (const Case *c) { return text_bytes (keyring_template ()); }
static GBytes *b_ring_version (const Case *c) { return keyring_edit ("\"version\" : 1", "\"version\" : 2"); }
static GBytes *b_ring_dup (const Case *c) { return keyring_edit ("\"version\" : 1", "\"version\" : 1, \"version\" : 1"); }
static GBytes *b_ring_huge (const Case *c) { return keyring_edit ("\"last_counter\" : ", "\"last_counter\" : 99999999999999999999"); }
static GBytes *b_ring_trust (const Case *c) { return keyring_edit ("\"tofu\"", "\"trusted\""); }
static GBytes *b_ring_comment (const Case *c) { return keyring_edit ("\"version\" : 1", "/* c */ \"version\" : 1"); }
static GBytes *b_ring_trailing (const Case *c) { return keyring_edit ("\n}\n", "\n}\n{}"); }
static GBytes *b_ring_unknown (const Case *c) { return keyring_edit ("\"version\" : 1", "\"version\" : 1, \"extra\" : 1"); }

static GBytes *
b_ring_point (const Case *c)
{
  /* Alice's y with its last character changed: off the curve. */
  return keyring_edit ("UUq5Uv5vJtV-HtGdwJNROUO2vC48FHz0QXf0UTNOl5M",
                       "UUq5Uv5vJtV-HtGdwJNROUO2vC48FHz0QXf0UTNOl5A");
}

static GBytes *
b_ring_truncated (const Case *c)
{
  g_autofree char *text = keyring_template ();
  return text_bytes (g_strndup (text, strlen (text) / 2));
}

static GBytes *
b_ring_nested (const Case *c)
{
  GString *s = g_string_new ("{\"format\":\"purple-e2ee-keyring\",\"version\":1,\"accounts\":");
  for (int i = 0; i < 100; i++)
    g_string_append_c (s, '[');
  for (int i = 0; i < 100; i++)
    g_string_append_c (s, ']');
  g_string_append_c (s, '}');
  return text_bytes (g_string_free (s, FALSE));
}

static GBytes *
b_ring_nul (const Case *c)
{
  GBytes *t = b_ring_valid (c);
  gsize len;
  guint8 *d = g_bytes_unref_to_data (t, &len);

  d[len / 3] = '\0';
  return g_bytes_new_take (d, len);
}

/* ------------------------------------------------------------------ */
/* The catalog */

#define T(name, kind, text, code) { name, kind, text, NULL, code, NULL, 0 }
#define B(name, kind, build, code) { name, kind, NULL, build, code, NULL, 0 }
#define R(name, build, code) { name, K_RECEIVE, NULL, build, code, NULL, 0 }
#define RT(name, text, code) { name, K_RECEIVE, text, NULL, code, NULL, 0 }
#define RF(name, from, build, code) { name, K_RECEIVE, NULL, build, code, from, 0 }

static const Case cases[] = {
  R ("armor/html-entity", b_html_entity, E2EE_ERROR_ARMOR),
  R ("armor/html-line-break", b_html_br, E2EE_ERROR_ARMOR),
  R ("armor/line-wrapped", b_wrapped, E2EE_ERROR_ARMOR),
  R ("armor/padding-characters", b_armor_padding, E2EE_ERROR_ARMOR),
  RT ("armor/non-base64", "?E2E:AQEBAAAA*AAAAAAAAAAA", E2EE_ERROR_ARMOR),
  RT ("armor/length-1-mod-4", "?E2E:AQEBA", E2EE_ERROR_ARMOR),
  RT ("armor/non-ascii", "?E2E:AQEB\xc3\xa9" "AAA", E2EE_ERROR_ARMOR),
  RT ("armor/empty", "?E2E:", E2EE_ERROR_V2_ENVELOPE),
  /* Fragments through the receive path. */
  RT ("fragment/upper-case-id", "?E2F:0000ABCD:1/2:abc", E2EE_ERROR_FRAGMENT),
  RT ("fragment/index-zero", "?E2F:0000abcd:0/2:abc", E2EE_ERROR_FRAGMENT),
  RT ("fragment/index-above-count", "?E2F:0000abcd:3/2:abc", E2EE_ERROR_FRAGMENT),
  RT ("fragment/too-many-pieces", "?E2F:0000abcd:1/257:abc", E2EE_ERROR_FRAGMENT),
  RT ("fragment/huge-count", "?E2F:0000abcd:1/99999999999999999999:abc", E2EE_ERROR_FRAGMENT),
  RT ("fragment/leading-zero", "?E2F:0000abcd:01/2:abc", E2EE_ERROR_FRAGMENT),
  RT ("fragment/sign", "?E2F:0000abcd:+1/2:abc", E2EE_ERROR_FRAGMENT),
  RT ("fragment/control-byte", "?E2F:0000abcd:1/2:a\x01z", E2EE_ERROR_FRAGMENT),
  RT ("fragment/non-ascii", "?E2F:0000abcd:1/2:a\xc3\xa9z", E2EE_ERROR_FRAGMENT),
  RT ("fragment/inner-newline", "?E2F:0000abcd:1/2:ab\ncd", E2EE_ERROR_FRAGMENT),
  RT ("fragment/empty-chunk", "?E2F:0000abcd:1/2:", E2EE_ERROR_FRAGMENT),
  RT ("fragment/short-id", "?E2F:abcd:1/2:abc", E2EE_ERROR_FRAGMENT),
  RT ("fragment/not-an-envelope", "?E2F:0000abcd:1/1:hello " SECRET, E2EE_ERROR_FRAGMENT),
  R ("fragment/repeated-index-other-content", b_frag_conflict, E2EE_ERROR_FRAGMENT),
  R ("fragment/count-changes", b_frag_count, E2EE_ERROR_FRAGMENT),
  R ("fragment/larger-than-limit", b_frag_huge, E2EE_ERROR_FRAGMENT_LIMIT),
  RF ("fragment/flood", "flooder@example.test", b_frag_flood, E2EE_ERROR_FRAGMENT_LIMIT),
  /* In-band offers through the receive path: no key is learned. */
  RT ("offer/not-base64", "?E2K:@@@@ key offer", E2EE_ERROR_OFFER),
  RT ("offer/empty", "?E2K:", E2EE_ERROR_OFFER),
  R ("offer/invalid-point", b_offer_point, E2EE_ERROR_OFFER),
  R ("offer/wrong-version", b_offer_version, E2EE_ERROR_OFFER),
  R ("offer/duplicated-key", b_offer_dup, E2EE_ERROR_OFFER),
  R ("offer/too-many-keys", b_offer_flood, E2EE_ERROR_OFFER),
  R ("offer/partial-key", b_offer_partial, E2EE_ERROR_OFFER),
  R ("offer/caps-without-v1", b_offer_caps, E2EE_ERROR_OFFER),
  RT ("offer/answer-html-mangled", "?E2A:AQE&amp;xyz key answer", E2EE_ERROR_OFFER),
  /* Direct parser calls. */
  T ("armor/no-prefix", K_ARMOR, "E2E:AQEB", E2EE_ERROR_ARMOR),
  T ("jwk/not-json", K_JWK_PUBLIC, "kty=EC", E2EE_ERROR_JWK_SYNTAX),
  T ("jwk/array", K_JWK_PUBLIC, "[{\"kty\":\"EC\"}]", E2EE_ERROR_JWK_SYNTAX),
  T ("jwk/trailing-data", K_JWK_PUBLIC, "{\"kty\":\"EC\"} {}", E2EE_ERROR_JWK_SYNTAX),
  T ("jwk/non-string-member", K_JWK_PUBLIC, "{\"kty\":1,\"crv\":\"P-256\",\"x\":\"A\",\"y\":\"A\"}", E2EE_ERROR_JWK_SYNTAX),
  B ("jwk/duplicated-member", K_JWK_PUBLIC, b_jwk_dup_member, E2EE_ERROR_JWK_SYNTAX),
  B ("jwk/escaped-member-name", K_JWK_PUBLIC, b_jwk_escaped_name, E2EE_ERROR_JWK_SYNTAX),
  B ("jwk/embedded-nul", K_JWK_PUBLIC, b_jwk_nul, E2EE_ERROR_JWK_SYNTAX),
  B ("jwk/deeply-nested", K_JWK_PUBLIC, b_jwk_nested, E2EE_ERROR_JWK_SYNTAX),
  B ("jwk/json-crv-escaped-nul", K_JWK_PUBLIC, b_json_crv_nul, E2EE_ERROR_JWK_SYNTAX),
  B ("jwk/json-x-escaped-nul", K_JWK_PUBLIC, b_json_x_nul, E2EE_ERROR_JWK_SYNTAX),
  B ("jwk/json-leading-zero", K_JWK_PUBLIC, b_json_leading_zero, E2EE_ERROR_JWK_SYNTAX),
  B ("jwk/json-negative-leading-zero", K_JWK_PUBLIC, b_json_negative_zero_digits, E2EE_ERROR_JWK_SYNTAX),
  B ("jwk/json-trailing-dot", K_JWK_PUBLIC, b_json_trailing_dot, E2EE_ERROR_JWK_SYNTAX),
  B ("jwk/json-leading-dot", K_JWK_PUBLIC, b_json_leading_dot, E2EE_ERROR_JWK_SYNTAX),
  B ("jwk/json-empty-exponent", K_JWK_PUBLIC, b_json_empty_exponent, E2EE_ERROR_JWK_SYNTAX),
  B ("jwk/json-plus-sign", K_JWK_PUBLIC, b_json_plus_sign, E2EE_ERROR_JWK_SYNTAX),
  B ("jwk/json-raw-tab", K_JWK_PUBLIC, b_json_raw_tab, E2EE_ERROR_JWK_SYNTAX),
  B ("jwk/json-raw-newline", K_JWK_PUBLIC, b_json_raw_newline, E2EE_ERROR_JWK_SYNTAX),
  B ("jwk/json-invalid-escape", K_JWK_PUBLIC, b_json_bad_escape, E2EE_ERROR_JWK_SYNTAX),
  B ("jwk/json-short-u-escape", K_JWK_PUBLIC, b_json_short_u_escape, E2EE_ERROR_JWK_SYNTAX),
  B ("jwk/json-lone-surrogate", K_JWK_PUBLIC, b_json_lone_surrogate, E2EE_ERROR_JWK_SYNTAX),
  B ("jwk/json-invalid-utf8", K_JWK_PUBLIC, b_json_bad_utf8, E2EE_ERROR_JWK_SYNTAX),
  B ("jwk/json-bad-literal", K_JWK_PUBLIC, b_json_literal, E2EE_ERROR_JWK_SYNTAX),
  B ("jwk/json-trailing-comma", K_JWK_PUBLIC, b_json_trailing_comma, E2EE_ERROR_JWK_SYNTAX),
  B ("keyset/json-x-escaped-nul", K_KEYSET, b_keyset_x_nul, E2EE_ERROR_JWK_SET),
  B ("jwk/huge-number", K_JWK_PUBLIC, b_jwk_huge_caps, E2EE_ERROR_JWK_SYNTAX),
  B ("jwk/missing-y", K_JWK_PUBLIC, b_jwk_missing_y, E2EE_ERROR_JWK_MISSING),
  B ("jwk/kty-rsa", K_JWK_PUBLIC, b_jwk_kty, E2EE_ERROR_JWK_KTY),
  B ("jwk/wrong-curve", K_JWK_PUBLIC, b_jwk_curve, E2EE_ERROR_JWK_CRV),
  B ("jwk/base64-padding", K_JWK_PUBLIC, b_jwk_padded, E2EE_ERROR_JWK_BASE64),
  B ("jwk/standard-base64", K_JWK_PUBLIC, b_jwk_std_b64, E2EE_ERROR_JWK_BASE64),
  B ("jwk/coordinate-31-bytes", K_JWK_PUBLIC, b_jwk_short, E2EE_ERROR_JWK_LENGTH),
  B ("jwk/coordinate-33-bytes", K_JWK_PUBLIC, b_jwk_long, E2EE_ERROR_JWK_LENGTH),
  B ("jwk/coordinate-above-p", K_JWK_PUBLIC, b_jwk_range, E2EE_ERROR_JWK_RANGE),
  B ("jwk/invalid-point", K_JWK_PUBLIC, b_jwk_off_curve, E2EE_ERROR_JWK_NOT_ON_CURVE),
  B ("jwk/point-at-infinity", K_JWK_PUBLIC, b_jwk_infinity, E2EE_ERROR_JWK_INFINITY),
  B ("jwk/unexpected-private", K_JWK_PUBLIC, b_jwk_unexpected_d, E2EE_ERROR_JWK_UNEXPECTED_PRIVATE),
  B ("jwk/private-missing-d", K_JWK_PRIVATE, b_jwk_public, E2EE_ERROR_JWK_MISSING),
  B ("jwk/private-mismatch", K_JWK_PRIVATE, b_jwk_mismatch, E2EE_ERROR_JWK_KEY_MISMATCH),
  B ("jwk/private-zero", K_JWK_PRIVATE, b_jwk_d_zero, E2EE_ERROR_JWK_RANGE),
  B ("jwk/private-group-order", K_JWK_PRIVATE, b_jwk_d_order, E2EE_ERROR_JWK_RANGE),
  B ("jwk/kid-not-thumbprint", K_JWK_PUBLIC, b_jwk_bad_kid, E2EE_ERROR_JWK_SET),
  T ("keyset/no-keys-member", K_KEYSET, "{\"key\":[]}", E2EE_ERROR_JWK_SET),
  T ("keyset/empty", K_KEYSET, "{\"keys\":[]}", E2EE_ERROR_JWK_SET),
  T ("keyset/entry-not-object", K_KEYSET, "{\"keys\":[1]}", E2EE_ERROR_JWK_SET),
  T ("keyset/deeply-nested", K_KEYSET, "{\"keys\":[{\"a\":[[[[1]]]]}]}", E2EE_ERROR_JWK_SET),
  B ("keyset/too-many-keys", K_KEYSET, b_set_many, E2EE_ERROR_JWK_SET),
  B ("keyset/duplicated-key", K_KEYSET, b_set_dup, E2EE_ERROR_JWK_SET),
  B ("keyset/private-key", K_KEYSET, b_set_private, E2EE_ERROR_JWK_UNEXPECTED_PRIVATE),
  B ("keyset/entry-without-kid", K_KEYSET, b_set_no_kid, E2EE_ERROR_JWK_SET),
  /* Protocol-v2 attachments of a published key (PROTOCOL.md 3). */
  B ("jwk/v2-signing-key-without-record", K_JWK_PUBLIC, b_v2_sig_only, E2EE_ERROR_V2_BUNDLE),
  B ("jwk/v2-record-without-signing-key", K_JWK_PUBLIC, b_v2_pk_only, E2EE_ERROR_V2_BUNDLE),
  B ("jwk/v2-data-without-version-2", K_JWK_PUBLIC, b_v2_without_v2, E2EE_ERROR_V2_BUNDLE),
  B ("jwk/v2-signing-key-off-curve", K_JWK_PUBLIC, b_v2_sig_off_curve, E2EE_ERROR_V2_BUNDLE),
  B ("jwk/v2-signing-key-is-identity", K_JWK_PUBLIC, b_v2_sig_identity, E2EE_ERROR_V2_BUNDLE),
  B ("jwk/v2-record-193-bytes", K_JWK_PUBLIC, b_v2_pk_193, E2EE_ERROR_V2_BUNDLE),
  B ("jwk/v2-record-202-bytes", K_JWK_PUBLIC, b_v2_pk_202, E2EE_ERROR_V2_BUNDLE),
  B ("jwk/v2-record-bad-label", K_JWK_PUBLIC, b_v2_pk_label, E2EE_ERROR_V2_BUNDLE),
  B ("jwk/v2-record-format-2", K_JWK_PUBLIC, b_v2_pk_format, E2EE_ERROR_V2_BUNDLE),
  B ("keyset/v2-entry-bad-record", K_KEYSET, b_v2_set_entry, E2EE_ERROR_V2_BUNDLE),
  B ("compact/v2-record-193-bytes", K_COMPACT, b_v2c_len_193, E2EE_ERROR_OFFER),
  B ("compact/v2-record-202-bytes", K_COMPACT, b_v2c_len_202, E2EE_ERROR_OFFER),
  B ("compact/v2-trailing-byte", K_COMPACT, b_v2c_trailing, E2EE_ERROR_OFFER),
  B ("compact/v2-record-cut", K_COMPACT, b_v2c_cut, E2EE_ERROR_OFFER),
  B ("compact/v2-record-bad-label", K_COMPACT, b_v2c_label, E2EE_ERROR_OFFER),
  B ("compact/v2-signing-key-off-curve", K_COMPACT, b_v2c_sig_point, E2EE_ERROR_OFFER),
  B ("compact/v2-without-v2-data", K_COMPACT, b_v2c_no_v2_data, E2EE_ERROR_OFFER),
  B ("compact/v2-data-in-version-1", K_COMPACT, b_v2c_in_v1, E2EE_ERROR_OFFER),
  B ("status/v2-signing-key-off-curve", K_STATUS, b_v2_status, E2EE_ERROR_OFFER),
  B ("inband/v2-record-193-bytes", K_INBAND, b_v2_offer, E2EE_ERROR_OFFER),
  B ("profile/v2-entry-bad-record", K_PROFILE, b_v2_profile, E2EE_ERROR_OFFER),
  B ("compact/invalid-point", K_COMPACT, b_compact_point, E2EE_ERROR_OFFER),
  B ("compact/trailing-byte", K_COMPACT, b_compact_plus_byte, E2EE_ERROR_OFFER),
  T ("compact/empty", K_COMPACT, "", E2EE_ERROR_OFFER),
  B ("status/two-tags", K_STATUS, b_status_twice, E2EE_ERROR_OFFER),
  B ("status/cut-tag", K_STATUS, b_status_cut, E2EE_ERROR_OFFER),
  T ("status/no-tag", K_STATUS, "out for lunch", E2EE_ERROR_OFFER),
  B ("profile/no-end-line", K_PROFILE, b_profile_no_end, E2EE_ERROR_OFFER),
  B ("profile/two-blocks", K_PROFILE, b_profile_twice, E2EE_ERROR_OFFER),
  B ("profile/mangled-payload", K_PROFILE, b_profile_mangled, E2EE_ERROR_OFFER),
  T ("profile/no-block", K_PROFILE, "<b>About me</b>", E2EE_ERROR_OFFER),
  T ("inband/not-an-offer", K_INBAND, "hello", E2EE_ERROR_OFFER),
  /* Keyring files. */
  B ("keyring/truncated", K_KEYRING, b_ring_truncated, E2EE_ERROR_KEYRING_CORRUPT),
  B ("keyring/newer-version", K_KEYRING, b_ring_version, E2EE_ERROR_KEYRING_VERSION),
  B ("keyring/duplicated-member", K_KEYRING, b_ring_dup, E2EE_ERROR_KEYRING_CORRUPT),
  B ("keyring/huge-number", K_KEYRING, b_ring_huge, E2EE_ERROR_KEYRING_CORRUPT),
  B ("keyring/unknown-trust", K_KEYRING, b_ring_trust, E2EE_ERROR_KEYRING_CORRUPT),
  B ("keyring/comment", K_KEYRING, b_ring_comment, E2EE_ERROR_KEYRING_CORRUPT),
  B ("keyring/trailing-data", K_KEYRING, b_ring_trailing, E2EE_ERROR_KEYRING_CORRUPT),
  B ("keyring/unknown-member", K_KEYRING, b_ring_unknown, E2EE_ERROR_KEYRING_CORRUPT),
  B ("keyring/invalid-point", K_KEYRING, b_ring_point, E2EE_ERROR_KEYRING_CORRUPT),
  B ("keyring/deeply-nested", K_KEYRING, b_ring_nested, E2EE_ERROR_KEYRING_CORRUPT),
  B ("keyring/embedded-nul", K_KEYRING, b_ring_nul, E2EE_ERROR_KEYRING_CORRUPT),
  T ("keyring/not-json", K_KEYRING, "keyring", E2EE_ERROR_KEYRING_CORRUPT),
  { "keyring/readable-by-others", K_KEYRING, NULL, b_ring_valid, E2EE_ERROR_KEYRING_PERMISSIONS, NULL, 0644 },
};

/* ------------------------------------------------------------------ */
/* Running one case */

static void
assert_no_secret (const GError *error)
{
  g_assert_nonnull (error);
  g_assert_null (strstr (error->message, SECRET));
  g_assert_null (strstr (error->message, "hidden"));
}

static void
check_keys_result (GPtrArray *keys, GError *error, const Case *c)
{
  if (keys != NULL)
    g_ptr_array_unref (keys);
  g_assert_null (keys);
  g_assert_error (error, E2EE_ERROR, c->code);
  assert_no_secret (error);
  g_error_free (error);
}

static void
run_receive (const Case *c, GBytes *input)
{
  g_autofree char *text = g_strndup (g_bytes_get_data (input, NULL), g_bytes_get_size (input));
  const char *from = case_from (c);
  E2eeBuddyRecord *buddy;
  g_autoptr (GBytes) before = bob_snapshot ();
  g_autoptr (GBytes) after = NULL;
  gboolean had_buddy = e2ee_account_lookup_buddy (fx.bob, from) != NULL;
  E2eeRecvResult r;

  receive (from, text, &r);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_ERROR);
  g_assert_error (r.error, E2EE_ERROR, c->code);
  assert_no_secret (r.error);
  g_assert_null (r.plaintext);
  g_assert_null (r.reply);
  g_assert_null (r.new_devices);
  e2ee_recv_result_clear (&r);

  /* The keyring, as it would go to disk, is exactly what it was. */
  after = bob_snapshot ();
  g_assert_true (g_bytes_equal (before, after));
  buddy = e2ee_account_lookup_buddy (fx.bob, from);
  g_assert_true ((buddy != NULL) == had_buddy);

  /* Alice still gets through. */
  {
    g_autoptr (GBytes) wire = armored (alice_envelope ("still " SECRET));
    g_autofree char *genuine = g_strndup (g_bytes_get_data (wire, NULL), g_bytes_get_size (wire));

    receive (ALICE, genuine, &r);
    g_assert_no_error (r.error);
    g_assert_cmpint (r.kind, ==, E2EE_RECV_MESSAGE);
    g_assert_cmpstr (r.plaintext, ==, "still " SECRET);
    e2ee_recv_result_clear (&r);
  }
}

static void
run_keyring (const Case *c, GBytes *input)
{
  g_autofree char *name = g_strdelimit (g_strdup_printf ("ring-%s.json", c->name), "/", '-');
  g_autofree char *path = tmp_path (name);
  g_autoptr (GError) error = NULL;
  g_autofree char *back = NULL;
  gsize back_len = 0;
  E2eeKeyring *k;

  g_assert_true (g_file_set_contents (path, g_bytes_get_data (input, NULL),
                                      (gssize) g_bytes_get_size (input), NULL));
  g_assert_cmpint (g_chmod (path, c->mode ? (int) c->mode : 0600), ==, 0);
  k = e2ee_keyring_load (path, NULL, &error);
  if (k != NULL)
    e2ee_keyring_free (k);
  g_assert_null (k);
  g_assert_error (error, E2EE_ERROR, c->code);
  g_assert_null (strstr (error->message, "LhoO6K")); /* Bob's private scalar */

  /* A failed load leaves the file alone. */
  g_assert_true (g_file_get_contents (path, &back, &back_len, NULL));
  g_assert_cmpmem (back, back_len, g_bytes_get_data (input, NULL), g_bytes_get_size (input));
  g_unlink (path);
}

static void
run_case (gconstpointer data)
{
  const Case *c = data;
  g_autoptr (GBytes) input = c->text ? g_bytes_new_static (c->text, strlen (c->text))
                                     : c->build (c);
  gsize len = g_bytes_get_size (input);
  g_autofree char *str = g_malloc (len + 1);
  GError *error = NULL;

  memcpy (str, g_bytes_get_data (input, NULL), len);
  str[len] = '\0';

  switch (c->kind)
    {
    case K_ARMOR:
      {
        GBytes *b = e2ee_armor_decode (str, &error);
        g_assert_null (b);
        g_assert_error (error, E2EE_ERROR, c->code);
        break;
      }
    case K_JWK_PUBLIC:
    case K_JWK_PRIVATE:
      {
        E2eeKey *k = e2ee_key_from_jwk (str, (gssize) len,
                                        c->kind == K_JWK_PUBLIC ? E2EE_KEY_EXPECT_PUBLIC
                                                                : E2EE_KEY_EXPECT_PRIVATE,
                                        &error);
        g_assert_null (k);
        g_assert_error (error, E2EE_ERROR, c->code);
        break;
      }
    case K_KEYSET:
      {
        GPtrArray *keys = e2ee_keyset_parse (str, (gssize) len, &error);
        check_keys_result (keys, error, c);
        error = NULL;
      }
      break;
    case K_COMPACT:
      {
        GPtrArray *keys = e2ee_offer_compact_decode (str, len, &error);
        check_keys_result (keys, error, c);
        error = NULL;
      }
      break;
    case K_STATUS:
      {
        GPtrArray *keys = e2ee_offer_status_parse (str, &error);
        check_keys_result (keys, error, c);
        error = NULL;
      }
      break;
    case K_PROFILE:
      {
        GPtrArray *keys = e2ee_offer_profile_parse (str, &error);
        check_keys_result (keys, error, c);
        error = NULL;
      }
      break;
    case K_INBAND:
      {
        GPtrArray *keys = e2ee_offer_inband_parse (str, NULL, &error);
        check_keys_result (keys, error, c);
        error = NULL;
      }
      break;
    case K_KEYRING:
      run_keyring (c, input);
      break;
    case K_RECEIVE:
      run_receive (c, input);
      break;
    }
  if (error)
    {
      assert_no_secret (error);
      g_error_free (error);
    }
}

/* ------------------------------------------------------------------ */
/* Resource bounds */

/* A buddy flooding junk fragments fills only its own share of the
 * reassembly buffers: Alice's fragmented message, sent in the middle of
 * the flood, still arrives whole. */
static void
test_bounds_flood (void)
{
  const char *flooder = "flood2@example.test";
  g_autoptr (GError) error = NULL;
  char **pieces = e2ee_context_encrypt (fx.alice_ctx, fx.alice, BOB,
                                        "through the flood " SECRET, 60, &error);
  guint accepted = 0, refused = 0, n = g_strv_length (pieces);
  E2eeRecvResult r;
  gboolean done = FALSE;

  g_assert_no_error (error);
  g_assert_cmpuint (n, >, 2);
  clock_held = TRUE; /* no buffer times out during the flood */
  for (guint i = 0; i < 2000; i++)
    {
      g_autofree char *junk = g_strdup_printf ("?E2F:%08x:1/200:%0500u", i, i);

      receive (flooder, junk, &r);
      if (r.kind == E2EE_RECV_PENDING)
        accepted++;
      else
        {
          g_assert_error (r.error, E2EE_ERROR, E2EE_ERROR_FRAGMENT_LIMIT);
          refused++;
        }
      e2ee_recv_result_clear (&r);

      /* Alice's pieces go out between the junk. */
      if (i % 300 == 7 && i / 300 < n)
        {
          receive (ALICE, pieces[i / 300], &r);
          g_assert_no_error (r.error);
          if (i / 300 + 1 < n)
            g_assert_cmpint (r.kind, ==, E2EE_RECV_PENDING);
          else
            {
              g_assert_cmpint (r.kind, ==, E2EE_RECV_MESSAGE);
              g_assert_cmpstr (r.plaintext, ==, "through the flood " SECRET);
              done = TRUE;
            }
          e2ee_recv_result_clear (&r);
        }
    }
  /* Pieces left over after the loop, if the message is long. */
  for (guint i = (2000 - 8) / 300 + 1; i < n; i++)
    {
      receive (ALICE, pieces[i], &r);
      g_assert_no_error (r.error);
      if (i + 1 == n)
        {
          g_assert_cmpint (r.kind, ==, E2EE_RECV_MESSAGE);
          done = TRUE;
        }
      e2ee_recv_result_clear (&r);
    }
  clock_held = FALSE;
  g_assert_true (done);
  /* The flooder got its small share and nothing more. */
  g_assert_cmpuint (accepted, ==, 4);
  g_assert_cmpuint (refused, ==, 2000 - 4);
  g_strfreev (pieces);
}

/* Many flooding buddies together cannot hold more than the global
 * budget, and what is held is bounded in bytes. */
static void
test_bounds_total (void)
{
  g_autoptr (E2eeReassembler) r = e2ee_reassembler_new (4, 64, 96 * 1024, 120);
  guint accepted = 0;

  for (guint b = 0; b < 100; b++)
    for (guint i = 0; i < 10; i++)
      {
        g_autofree char *key = g_strdup_printf ("acct\nbuddy%u", b);
        g_autofree char *f = g_strdup_printf ("?E2F:%08x:1/2:%01000u", i, i);
        char *complete = NULL;
        GError *error = NULL;

        if (e2ee_reassembler_add (r, key, f, 0, &complete, &error))
          accepted++;
        else
          {
            g_assert_error (error, E2EE_ERROR, E2EE_ERROR_FRAGMENT_LIMIT);
            g_error_free (error);
          }
        g_assert_null (complete);
      }
  g_assert_cmpuint (accepted, ==, 64);
  g_assert_cmpuint (e2ee_reassembler_pending (r, NULL), ==, 64);
  g_assert_cmpuint (e2ee_reassembler_buffered_bytes (r), <=, 64 * 1000);
  /* They time out, and then there is room again. */
  g_assert_cmpuint (e2ee_reassembler_expire (r, 121), ==, 64);
  g_assert_cmpuint (e2ee_reassembler_buffered_bytes (r), ==, 0);
}

/* In-band offers are unauthenticated: one buddy sending offer after
 * offer with new keys adds a bounded number of device records, so the
 * keyring (and every save and load of it) stays bounded. */
static void
test_bounds_offer_flood (void)
{
  const char *from = "offers@example.test";
  E2eeBuddyRecord *buddy;
  gsize size_mid = 0, size_end;
  guint learned = 0;

  for (guint round = 0; round < 12; round++)
    {
      g_autoptr (GPtrArray) keys = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_key_unref);
      g_autofree char *text = NULL;
      E2eeRecvResult r;

      for (guint i = 0; i < E2EE_KEYSET_MAX; i++)
        {
          g_autoptr (E2eeKey) k = e2ee_key_generate (NULL);
          g_ptr_array_add (keys, e2ee_key_public_copy (k));
        }
      text = e2ee_offer_inband (E2EE_OFFER_KIND_ANSWER, keys);
      receive (from, text, &r);
      g_assert_no_error (r.error);
      g_assert_cmpint (r.kind, ==, E2EE_RECV_OFFER);
      learned += r.new_devices ? r.new_devices->len : 0;
      e2ee_recv_result_clear (&r);
      if (round == 5)
        size_mid = bob_live_bytes ();
    }
  buddy = e2ee_account_lookup_buddy (fx.bob, from);
  g_assert_nonnull (buddy);
  /* 192 keys were offered; far fewer are kept, and the database stopped
   * growing. */
  g_assert_cmpuint (buddy->devices->len, <, 12 * E2EE_KEYSET_MAX);
  g_assert_cmpuint (buddy->devices->len, <=, 64);
  /* Each new key made room by dropping the oldest junk that never spoke. */
  g_assert_cmpuint (learned, ==, 12 * E2EE_KEYSET_MAX);
  size_end = bob_live_bytes ();
  g_assert_cmpuint (size_end, ==, size_mid);
  g_assert_true (e2ee_context_reset (fx.bob_ctx, fx.bob, from, NULL));
}

/* A message over the size limit is refused when sealed (before any
 * session moves: the largest one still goes through). */
static void
test_bounds_message_size (void)
{
  gsize big = E2EE_V2_MAX_PLAINTEXT + 1;
  g_autofree char *text = g_malloc (big + 1);
  g_autoptr (GError) error = NULL;
  char **pieces;

  memset (text, 'a', big);
  text[big] = '\0';
  pieces = e2ee_context_encrypt (fx.alice_ctx, fx.alice, BOB, text, 0, &error);
  g_assert_null (pieces);
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_V2_ENVELOPE);
  g_clear_error (&error);

  /* The largest allowed message goes through. */
  text[E2EE_V2_MAX_PLAINTEXT] = '\0';
  pieces = e2ee_context_encrypt (fx.alice_ctx, fx.alice, BOB, text, 0, &error);
  g_assert_no_error (error);
  {
    E2eeRecvResult r;
    receive (ALICE, pieces[0], &r);
    g_assert_no_error (r.error);
    g_assert_cmpint (r.kind, ==, E2EE_RECV_MESSAGE);
    g_assert_cmpuint (strlen (r.plaintext), ==, E2EE_V2_MAX_PLAINTEXT);
    e2ee_recv_result_clear (&r);
  }
  g_strfreev (pieces);
}

/* A keyring file above the size limit is refused before it is read (a
 * sparse file: nothing is written to disk). */
static void
test_bounds_keyring_size (void)
{
  g_autofree char *path = tmp_path ("huge.json");
  g_autoptr (GError) error = NULL;
  E2eeKeyring *k;
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (ftruncate (fd, (off_t) E2EE_KEYRING_MAX_BYTES + 1), ==, 0);
  close (fd);
  k = e2ee_keyring_load (path, NULL, &error);
  g_assert_null (k);
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_LIMIT);
  g_unlink (path);
}

/* A protected keyring without or with a wrong passphrase. */
static void
test_keyring_passphrase (void)
{
  g_autofree char *path = tmp_path ("sealed.json");
  g_autoptr (GError) error = NULL;
  E2eeKeyring *k = e2ee_keyring_new (path);
  g_autoptr (E2eeKey) id = e2ee_key_generate (NULL);
  E2eeKeyring *loaded;

  e2ee_keyring_add_account (k, PROTO, "sealed@example.test", id);
  g_assert_true (e2ee_keyring_set_passphrase (k, "correct horse", &error));
  g_assert_true (e2ee_keyring_save (k, &error));
  g_assert_no_error (error);
  e2ee_keyring_free (k);

  loaded = e2ee_keyring_load (path, NULL, &error);
  g_assert_null (loaded);
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_PASSPHRASE);
  g_clear_error (&error);
  loaded = e2ee_keyring_load (path, "wrong horse", &error);
  g_assert_null (loaded);
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_PASSPHRASE);
}

int
main (int argc, char **argv)
{
  int status;

  e2ee_test_init (&argc, &argv);
  fixture_init ();
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *path = g_strconcat ("/catalog/", cases[i].name, NULL);
      g_test_add_data_func (path, &cases[i], run_case);
    }
  g_test_add_func ("/catalog/v2/bases-valid", test_v2_bases_valid);
  g_test_add_func ("/catalog/bounds/fragment-flood-other-buddy", test_bounds_flood);
  g_test_add_func ("/catalog/bounds/fragment-total", test_bounds_total);
  g_test_add_func ("/catalog/bounds/offer-flood", test_bounds_offer_flood);
  g_test_add_func ("/catalog/bounds/message-size", test_bounds_message_size);
  g_test_add_func ("/catalog/bounds/keyring-size", test_bounds_keyring_size);
  g_test_add_func ("/catalog/keyring/passphrase", test_keyring_passphrase);
  status = g_test_run ();
  fixture_clear ();
  g_clear_pointer (&v2.sign_pub, e2ee_key_unref);
  g_clear_pointer (&v2.record, g_bytes_unref);
  return status;
}
