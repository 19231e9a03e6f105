/* purple-e2ee — protocol v2 state of the session layer: this device's
 * signing key and prekeys per account, and per buddy device the pinned
 * signing key, prekey and ratchet sessions, cached in memory and written
 * through the keyring's saves (e2ee-v2store.h); the sending half of v2
 * (session starts and the envelope).  PROTOCOL.md §4–8.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "e2ee-b64.h"
#include "e2ee-envelope-v2.h"
#include "e2ee-error.h"
#include "e2ee-kdf.h"
#include "e2ee-session-private.h"
#include "e2ee-wipe.h"

/* A broken session is replaced by a new start at most this often per
 * device (seconds): undecryptable input cannot make us start over and
 * over. */
#define RESTART_INTERVAL_S 600

guint64
e2ee_session_now (E2eeContext *ctx)
{
  gint64 now = ctx->clock ? ctx->clock (ctx->clock_data) : g_get_real_time () / G_USEC_PER_SEC;

  return now > 0 ? (guint64) now : 0;
}

void
e2ee_context_set_clock (E2eeContext *ctx, E2eeClockFunc func, gpointer data)
{
  ctx->clock = func;
  ctx->clock_data = data;
}

/* Another program on the keyring changed a row first: what this one made
 * from the row is forgotten, so the next use reads the other's state. */
static void
on_v2_conflict (E2eeAccountRecord *account, E2eeStoreV2Kind kind, const char *name,
                const guint8 *ref, gsize ref_len, gpointer data)
{
  E2eeContext *ctx = data;

  if (kind == E2EE_STORE_V2_OWN)
    g_hash_table_remove (ctx->v2_own, account);
  else
    {
      g_autofree char *conv = e2ee_session_conv_key (account, name);
      g_autofree char *kid = e2ee_b64url_encode (ref, ref_len);
      g_autofree char *key = g_strconcat (conv, "\n", kid, NULL);

      g_hash_table_remove (ctx->v2_peers, key);
    }
}

void
e2ee_session_v2_init (E2eeContext *ctx)
{
  e2ee_v2store_set_conflict_func (ctx->v2, on_v2_conflict, ctx);
}

/* ---- this device ------------------------------------------------------ */

static void
own_put (E2eeContext *ctx, E2eeAccountRecord *account, E2eeV2Own *own)
{
  g_autoptr (GBytes) blob = e2ee_v2own_serialize (own);

  e2ee_v2store_put (ctx->v2, account, E2EE_STORE_V2_OWN, "", NULL, 0, blob);
  e2ee_bytes_free (g_steal_pointer (&blob));
}

E2eeV2Own *
e2ee_session_v2_own (E2eeContext *ctx, E2eeAccountRecord *account, GError **error)
{
  E2eeV2Own *own = g_hash_table_lookup (ctx->v2_own, account);
  gboolean changed = FALSE;

  if (own == NULL)
    {
      GError *local = NULL;
      GBytes *blob = e2ee_v2store_get (ctx->v2, account, E2EE_STORE_V2_OWN, "", NULL, 0, &local);

      if (local != NULL)
        {
          g_propagate_error (error, local);
          return NULL;
        }
      if (blob != NULL)
        {
          own = e2ee_v2own_parse (g_bytes_get_data (blob, NULL), g_bytes_get_size (blob), error);
          e2ee_bytes_free (blob);
          if (own == NULL)
            return NULL;
        }
      else if ((own = e2ee_v2own_new (error)) == NULL)
        return NULL;
      else
        changed = TRUE;
      g_hash_table_insert (ctx->v2_own, account, own);
    }
  {
    gboolean rotated = FALSE;

    if (!e2ee_v2own_maintain (own, account->identity, e2ee_session_now (ctx), &rotated, error))
      return NULL;
    changed = changed || rotated;
  }
  if (changed)
    {
      own_put (ctx, account, own);
      e2ee_session_notify_changed (ctx);
    }
  return own;
}

void
e2ee_session_v2_own_changed (E2eeContext *ctx, E2eeAccountRecord *account, E2eeV2Own *own)
{
  own_put (ctx, account, own);
}

E2eeKey *
e2ee_session_v2_publish_key (E2eeContext *ctx, E2eeAccountRecord *account)
{
  g_autoptr (E2eeKey) pub = e2ee_key_public_copy (account->identity);
  g_autoptr (E2eeKey) caps = e2ee_key_with_caps (pub, E2EE_CAPS_V1 | E2EE_CAPS_V2);
  E2eeV2Own *own = e2ee_session_v2_own (ctx, account, NULL);
  const E2eeOwnPrekey *pk = own ? e2ee_v2own_current (own) : NULL;

  if (pk == NULL)
    return g_steal_pointer (&caps);
  return e2ee_key_with_v2 (caps, e2ee_sign_key_get_public (own->sign_key), pk->record);
}

/* ---- buddies' devices ------------------------------------------------- */

static char *
peer_key (E2eeAccountRecord *account, const char *buddy, const E2eeKey *device)
{
  g_autofree char *conv = e2ee_session_conv_key (account, buddy);

  return g_strconcat (conv, "\n", e2ee_key_get_kid (device), NULL);
}

E2eeV2Peer *
e2ee_session_v2_peer (E2eeContext *ctx, E2eeAccountRecord *account, const char *buddy,
                      const E2eeKey *device, GError **error)
{
  g_autofree char *key = peer_key (account, buddy, device);
  E2eeV2Peer *peer = g_hash_table_lookup (ctx->v2_peers, key);
  GError *local = NULL;
  GBytes *blob;

  if (peer != NULL)
    return peer;
  blob = e2ee_v2store_get (ctx->v2, account, E2EE_STORE_V2_PEER, buddy,
                           e2ee_key_get_thumbprint (device), E2EE_THUMBPRINT_LEN, &local);
  if (local != NULL)
    {
      g_propagate_error (error, local);
      return NULL;
    }
  if (blob != NULL)
    {
      peer = e2ee_v2peer_parse (g_bytes_get_data (blob, NULL), g_bytes_get_size (blob), error);
      e2ee_bytes_free (blob);
      if (peer == NULL)
        return NULL;
    }
  else
    peer = e2ee_v2peer_new ();
  g_hash_table_insert (ctx->v2_peers, g_steal_pointer (&key), peer);
  return peer;
}

void
e2ee_session_v2_peer_changed (E2eeContext *ctx, E2eeAccountRecord *account, const char *buddy,
                              const E2eeKey *device, E2eeV2Peer *peer)
{
  GBytes *blob = e2ee_v2peer_serialize (peer);

  e2ee_v2store_put (ctx->v2, account, E2EE_STORE_V2_PEER, buddy,
                    e2ee_key_get_thumbprint (device), E2EE_THUMBPRINT_LEN, blob);
  e2ee_bytes_free (blob);
}

void
e2ee_session_v2_learn_set (E2eeContext *ctx, E2eeAccountRecord *account, const char *buddy_name,
                           GPtrArray *keys)
{
  E2eeBuddyRecord *buddy = e2ee_account_lookup_buddy (account, buddy_name);
  guint64 now = e2ee_session_now (ctx);
  gboolean any = FALSE;

  for (guint i = 0; buddy && keys && i < keys->len; i++)
    {
      const E2eeKey *key = keys->pdata[i];
      E2eeDeviceRecord *dev = e2ee_buddy_find_device (buddy, key);
      E2eeV2Peer *peer;

      if (dev == NULL || dev->trust == E2EE_TRUST_REJECTED
          || e2ee_key_get_sign_pub (key) == NULL)
        continue;
      peer = e2ee_session_v2_peer (ctx, account, buddy_name, dev->key, NULL);
      if (peer != NULL && e2ee_v2peer_learn (peer, key, now))
        {
          e2ee_session_v2_peer_changed (ctx, account, buddy_name, dev->key, peer);
          any = TRUE;
        }
    }
  if (any)
    e2ee_session_notify_changed (ctx);
}

/* The key of an own device as we republish it: with the v2 data it last
 * showed us. */
E2eeKey *
e2ee_session_v2_device_key (E2eeContext *ctx, E2eeAccountRecord *account, const char *buddy,
                            const E2eeKey *device)
{
  E2eeV2Peer *peer = e2ee_session_v2_peer (ctx, account, buddy, device, NULL);

  if (peer == NULL || peer->sign_pub == NULL || peer->prekey == NULL)
    return e2ee_key_ref ((E2eeKey *) device);
  return e2ee_key_with_v2 (device, peer->sign_pub, peer->prekey);
}

gboolean
e2ee_context_session_weak (E2eeContext *ctx, E2eeAccountRecord *account, const char *buddy_name)
{
  E2eeBuddyRecord *buddy = e2ee_account_lookup_buddy (account, buddy_name);

  for (guint i = 0; buddy && i < buddy->devices->len; i++)
    {
      E2eeDeviceRecord *dev = buddy->devices->pdata[i];
      g_autofree char *key = peer_key (account, buddy_name, dev->key);
      E2eeV2Peer *peer = g_hash_table_lookup (ctx->v2_peers, key);

      if (peer && peer->sessions->len > 0 && e2ee_ratchet_is_weak (peer->sessions->pdata[0]))
        return TRUE;
    }
  return FALSE;
}

/* ---- starting sessions ---------------------------------------------- */

static gboolean
restart_allowed (const E2eeV2Peer *peer, gint64 now)
{
  return (peer->sessions->len == 0 || peer->failures > 0) && now >= peer->next_restart;
}

static gboolean
start_session (E2eeContext *ctx, E2eeAccountRecord *account, const char *buddy,
               const E2eeKey *device, E2eeV2Peer *peer, GError **error)
{
  guint64 now = e2ee_session_now (ctx);
  g_autoptr (E2eePrekey) prekey = e2ee_v2peer_prekey (peer, device, now);
  g_autofree char *self_id = e2ee_kdf_account_id (account->protocol, account->name);
  g_autofree char *peer_id = e2ee_kdf_account_id (account->protocol, buddy);
  E2eeX3dhParty self = { account->identity, self_id, e2ee_v2_device_tag (account->identity),
                         E2EE_V2_VERSIONS };
  E2eeX3dhParty other = { device, peer_id, e2ee_v2_device_tag (device), E2EE_V2_VERSIONS };
  E2eeX3dhResult x3dh;
  E2eeEcSecret *ephemeral = NULL;
  g_autoptr (E2eeKey) self_pub = NULL;
  E2eeRatchet *session;

  if (prekey == NULL && peer->prekey_seen)
    {
      /* Once a device has shown a prekey, a missing one is an attacker's
       * doing or an old publication: no weaker start (downgrade). */
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_V2_NO_PREKEY,
                   "device %.8s of %s published a signed prekey before, but none valid is "
                   "known now, so no session is started with it; it publishes a new one "
                   "when it is next online", e2ee_key_get_kid (device), buddy);
      return FALSE;
    }
  if (prekey != NULL)
    other.versions = prekey->versions;
  if (!e2ee_x3dh_initiate (&self, &other, prekey, &ephemeral, &x3dh, error))
    return FALSE;
  self_pub = e2ee_key_public_copy (account->identity);
  session = e2ee_ratchet_new_initiator (&x3dh, ephemeral, self_pub, E2EE_V2_VERSIONS,
                                        self.device, other.device);
  e2ee_x3dh_result_clear (&x3dh);
  e2ee_v2peer_add_session (peer, session, TRUE);
  peer->failures = 0;
  peer->next_restart = (gint64) now + RESTART_INTERVAL_S;
  return TRUE;
}

/* The session to send to @device on: the current one, or a new start when
 * there is none or the current one looks broken (rate-limited). */
static E2eeRatchet *
sending_session (E2eeContext *ctx, E2eeAccountRecord *account, const char *buddy,
                 const E2eeKey *device, E2eeV2Peer *peer, GError **error)
{
  gint64 now = (gint64) e2ee_session_now (ctx);
  gboolean restart = peer->sessions->len == 0 || restart_allowed (peer, now);

  GError *local = NULL;

  if (restart && !start_session (ctx, account, buddy, device, peer, &local))
    {
      /* A new start that cannot be made now (no valid prekey) does not
       * stop us sending on the session we have: it may well still work. */
      if (peer->sessions->len == 0)
        {
          g_propagate_error (error, local);
          return NULL;
        }
      g_clear_error (&local);
      peer->next_restart = now + RESTART_INTERVAL_S;
    }
  return peer->sessions->pdata[0];
}

typedef struct {
  const char *buddy;
  const E2eeKey *device;
  E2eeV2Peer *peer;
} Recipient;

static void
add_recipients (E2eeContext *ctx, E2eeAccountRecord *account, E2eeBuddyRecord *buddy,
                GArray *out, GPtrArray *sessions, gboolean required, GError **error)
{
  for (guint i = 0; buddy && i < buddy->devices->len && sessions->len < E2EE_ENVELOPE_V2_MAX_SLOTS; i++)
    {
      E2eeDeviceRecord *dev = buddy->devices->pdata[i];
      Recipient r = { buddy->name, dev->key, NULL };
      g_autoptr (GError) local = NULL;
      E2eeRatchet *session;

      if (!e2ee_session_trust_usable (dev->trust) || e2ee_key_equal (dev->key, account->identity))
        continue;
      r.peer = e2ee_session_v2_peer (ctx, account, buddy->name, dev->key, &local);
      session = r.peer ? sending_session (ctx, account, buddy->name, dev->key, r.peer, &local)
                       : NULL;
      if (session == NULL)
        {
          /* One unreachable device does not stop the others; if none of
           * the buddy's is reachable the send fails (below). */
          if (required && error && *error == NULL)
            *error = g_steal_pointer (&local);
          continue;
        }
      g_array_append_val (out, r);
      g_ptr_array_add (sessions, session);
    }
}

GBytes *
e2ee_session_v2_seal (E2eeContext *ctx, E2eeAccountRecord *account, const char *buddy_name,
                      const char *text, GError **error)
{
  E2eeBuddyRecord *buddy = e2ee_account_lookup_buddy (account, buddy_name);
  E2eeBuddyRecord *self = NULL;
  g_autoptr (GArray) recipients = g_array_new (FALSE, TRUE, sizeof (Recipient));
  g_autoptr (GPtrArray) sessions = g_ptr_array_new ();
  GError *first = NULL;
  GBytes *envelope;
  guint n_buddy;

  if (e2ee_session_v2_own (ctx, account, error) == NULL)
    return NULL;
  add_recipients (ctx, account, buddy, recipients, sessions, TRUE, &first);
  n_buddy = recipients->len;
  if (n_buddy == 0)
    {
      if (first == NULL)
        first = g_error_new (E2EE_ERROR, E2EE_ERROR_NO_KEY,
                             "no device of %s can be reached", buddy_name);
      g_propagate_error (error, first);
      return NULL;
    }
  g_clear_error (&first);
  if (g_strcmp0 (buddy_name, account->name) != 0)
    self = e2ee_account_lookup_buddy (account, account->name);
  add_recipients (ctx, account, self, recipients, sessions, FALSE, NULL);
  envelope = e2ee_envelope_v2_seal ((E2eeRatchet **) sessions->pdata, sessions->len, text,
                                    ctx->pad_block, error);
  /* Sealing advanced every session (also on failure): their states go
   * into the next save, which the caller makes before anything leaves. */
  for (guint i = 0; i < recipients->len; i++)
    {
      Recipient *r = &g_array_index (recipients, Recipient, i);
      e2ee_session_v2_peer_changed (ctx, account, r->buddy, r->device, r->peer);
    }
  return envelope;
}

GBytes *
e2ee_session_v2_heal (E2eeContext *ctx, E2eeAccountRecord *account, const char *buddy_name)
{
  E2eeBuddyRecord *buddy = e2ee_account_lookup_buddy (account, buddy_name);
  gint64 now = (gint64) e2ee_session_now (ctx);
  gboolean due = FALSE;

  for (guint i = 0; buddy && i < buddy->devices->len && !due; i++)
    {
      E2eeDeviceRecord *dev = buddy->devices->pdata[i];
      g_autofree char *key = peer_key (account, buddy_name, dev->key);
      E2eeV2Peer *peer = g_hash_table_lookup (ctx->v2_peers, key);

      due = e2ee_session_trust_usable (dev->trust) && peer != NULL
            && restart_allowed (peer, now);
    }
  /* An empty message (shown as nothing) carries the new start. */
  return due ? e2ee_session_v2_seal (ctx, account, buddy_name, "", NULL) : NULL;
}

gboolean
e2ee_context_prepare_sessions (E2eeContext *ctx, E2eeAccountRecord *account,
                               const char *buddy_name, GError **error)
{
  E2eeBuddyRecord *buddy = e2ee_account_lookup_buddy (account, buddy_name);
  gboolean any = FALSE;

  for (guint i = 0; buddy && i < buddy->devices->len; i++)
    {
      E2eeDeviceRecord *dev = buddy->devices->pdata[i];
      g_autofree char *key = peer_key (account, buddy_name, dev->key);
      E2eeV2Peer *peer = g_hash_table_lookup (ctx->v2_peers, key);
      E2eeRatchet *session = peer && peer->sessions->len ? peer->sessions->pdata[0] : NULL;

      if (session == NULL || !e2ee_ratchet_key_due (session))
        continue;
      if (!e2ee_ratchet_prepare (session, error))
        return FALSE;
      e2ee_session_v2_peer_changed (ctx, account, buddy_name, dev->key, peer);
      any = TRUE;
    }
  return !any || e2ee_session_commit (ctx, error);
}
