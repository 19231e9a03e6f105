/* Writes a random v2 conversation between two C sessions as JSON, in the
 * layout of tests/vectors/v2-conversation.json, for v2-webcrypto.mjs to
 * replay: random sends both ways, loss, duplicates, reordering, and a new
 * session start half-way.  Randomness comes from the test stream, so the
 * WebCrypto side can reproduce every byte.
 * Usage: v2-transcript OUT.json SEED STEPS
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdlib.h>
#include <string.h>

#include "e2ee-error.h"
#include "e2ee-ratchet.h"
#include "e2ee-wipe.h"
#include "../e2ee-test-util.h"
#include "../e2ee-test-rng.h"
#include "../e2ee-test-ratchet.h"

typedef struct {
  guint id;
  gboolean to_b;
} Flight;

static JsonArray *events;
static GPtrArray *wire;

static void
add_send (const char *who, const char *text, GBytes *c)
{
  JsonObject *e = json_object_new ();
  g_autofree char *hex = e2ee_test_hex (g_bytes_get_data (c, NULL), g_bytes_get_size (c));

  json_object_set_string_member (e, "send", who);
  json_object_set_int_member (e, "id", wire->len);
  json_object_set_string_member (e, "plaintext", text);
  json_object_set_string_member (e, "wire", hex);
  json_array_add_object_element (events, e);
  g_ptr_array_add (wire, g_bytes_ref (c));
}

static void
deliver (Pair *p, const Flight *f)
{
  JsonObject *e = json_object_new ();
  E2eeRatchetOpened info = { 0 };
  GBytes *c = wire->pdata[f->id];
  GError *error = NULL;
  GBytes *pt = e2ee_ratchet_open (f->to_b ? p->b : p->a, g_bytes_get_data (c, NULL),
                                  g_bytes_get_size (c), T0, &info, &error);
  const char *result = "opened";

  if (pt == NULL)
    {
      g_assert (error && error->domain == E2EE_ERROR);
      switch (error->code)
        {
        case E2EE_ERROR_V2_DUPLICATE: result = "duplicate"; break;
        case E2EE_ERROR_AEAD_TAG: result = "tag"; break;
        case E2EE_ERROR_V2_SKIP_LIMIT: result = "skip-limit"; break;
        default: g_error ("unexpected: %s", error->message);
        }
      g_error_free (error);
    }
  json_object_set_string_member (e, "deliver", f->to_b ? "bob" : "alice");
  json_object_set_int_member (e, "id", f->id);
  json_object_set_string_member (e, "result", result);
  if (pt)
    {
      json_object_set_int_member (e, "n", info.n);
      json_object_set_boolean_member (e, "new_chain", info.new_chain);
      json_object_set_boolean_member (e, "skipped_key", info.skipped);
    }
  json_array_add_object_element (events, e);
  e2ee_bytes_free (pt);
}

int
main (int argc, char **argv)
{
  Pair p = { 0 };
  g_autoptr (GBytes) first = NULL;
  g_autoptr (GRand) rand = NULL;
  g_autoptr (GArray) net = g_array_new (FALSE, FALSE, sizeof (Flight));
  g_autofree char *label = NULL, *stream = NULL, *first_hex = NULL, *text = NULL;
  JsonObject *o = json_object_new ();
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  JsonNode *root;
  char *ja, *jb;
  guint seed, steps, sent = 0;
  GError *error = NULL;

  if (argc != 4)
    {
      g_printerr ("usage: %s OUT.json SEED STEPS\n", argv[0]);
      return 2;
    }
  if (!gcry_control (GCRYCTL_INITIALIZATION_FINISHED_P))
    {
      gcry_check_version (NULL);
      gcry_control (GCRYCTL_INITIALIZATION_FINISHED, 0);
    }
  seed = (guint) strtoul (argv[2], NULL, 10);
  steps = (guint) strtoul (argv[3], NULL, 10);
  rand = g_rand_new_with_seed (seed);
  label = g_strdup_printf ("transcript %u", seed);
  stream = g_strconcat (label, " run", NULL);
  events = json_array_new ();
  wire = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  pair_start (&p, E2EE_X3DH_MODE_PREKEY, label, &first);
  first_hex = e2ee_test_hex (g_bytes_get_data (first, NULL), g_bytes_get_size (first));

  for (guint step = 0; step < steps; step++)
    {
      guint r = g_rand_int_range (rand, 0, 100);

      if (step == steps / 2)
        {
          /* A new session start: what is in flight for the old one is lost. */
          g_autoptr (GBytes) again = NULL;
          JsonObject *e = json_object_new ();
          g_autofree char *hex = NULL;
          g_array_set_size (net, 0);
          pair_session (&p, "restart", &again);
          hex = e2ee_test_hex (g_bytes_get_data (again, NULL), g_bytes_get_size (again));
          json_object_set_string_member (e, "restart", "alice");
          json_object_set_string_member (e, "plaintext", "restart");
          json_object_set_string_member (e, "wire", hex);
          json_array_add_object_element (events, e);
        }
      else if (r < 45 || net->len == 0)
        {
          gboolean to_b = g_rand_boolean (rand);
          Flight f = { wire->len, to_b };
          g_autoptr (GBytes) c = NULL;

          g_free (text);
          text = g_strdup_printf ("message %u", sent++);
          c = e2ee_ratchet_seal (to_b ? p.a : p.b, (const guint8 *) text, strlen (text), &error);
          g_assert_no_error (error);
          add_send (to_b ? "alice" : "bob", text, c);
          if (g_rand_int_range (rand, 0, 100) >= 10)
            g_array_append_val (net, f);
          if (g_rand_int_range (rand, 0, 100) < 15)
            g_array_append_val (net, f);
        }
      else
        {
          guint k = g_rand_int_range (rand, 0, net->len);
          Flight f = g_array_index (net, Flight, k);
          g_array_remove_index_fast (net, k);
          deliver (&p, &f);
        }
    }
  while (net->len > 0)
    {
      Flight f = g_array_index (net, Flight, 0);
      g_array_remove_index (net, 0);
      deliver (&p, &f);
    }

  ja = e2ee_key_to_jwk (p.ik_a, TRUE, FALSE);
  jb = e2ee_key_to_jwk (p.ik_b, TRUE, FALSE);
  json_object_set_string_member (o, "stream_label", stream);
  json_object_set_string_member (o, "alice_identity_jwk", ja);
  json_object_set_string_member (o, "bob_identity_jwk", jb);
  json_object_set_string_member (o, "alice_account", "prpl-jabber:alice@example.org");
  json_object_set_string_member (o, "bob_account", "prpl-jabber:bob@example.org");
  json_object_set_int_member (o, "alice_device", DEV_A);
  json_object_set_int_member (o, "bob_device", DEV_B);
  json_object_set_string_member (o, "first_plaintext", "hello");
  json_object_set_string_member (o, "first_wire", first_hex);
  json_object_set_array_member (o, "events", events);
  e2ee_string_free (ja);
  e2ee_string_free (jb);
  root = json_node_new (JSON_NODE_OBJECT);
  json_node_take_object (root, o);
  json_generator_set_root (gen, root);
  if (!json_generator_to_file (gen, argv[1], &error))
    g_error ("%s", error->message);
  json_node_unref (root);
  g_ptr_array_unref (wire);
  pair_free (&p);
  return 0;
}
