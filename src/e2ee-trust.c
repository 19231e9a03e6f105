/* purple-e2ee — the trust state machine: learning key sets, trust
 * decisions, own devices, strangers and withheld messages.  The table of
 * states is in docs/SECURITY.md §2.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "e2ee-error.h"
#include "e2ee-session-private.h"

/* Most device records one buddy can have (pinned, undecided and rejected). */
#define MAX_DEVICES_PER_BUDDY 64

gboolean
e2ee_name_is_valid (const char *name)
{
  gsize len;

  if (name == NULL || *name == '\0')
    return FALSE;
  len = strlen (name);
  if (len > E2EE_NAME_MAX || !g_utf8_validate (name, (gssize) len, NULL))
    return FALSE;
  for (const char *p = name; *p; p++)
    if ((guchar) *p < 0x20 || *p == 0x7f)
      return FALSE;
  return TRUE;
}

gboolean
e2ee_session_check_name (const char *name, GError **error)
{
  if (e2ee_name_is_valid (name))
    return TRUE;
  g_set_error (error, E2EE_ERROR, E2EE_ERROR_NAME,
               "invalid name (empty, not UTF-8, with control characters, or longer "
               "than %d bytes)", E2EE_NAME_MAX);
  return FALSE;
}

gboolean
e2ee_session_is_own (const E2eeAccountRecord *account, const char *buddy)
{
  return g_strcmp0 (account->name, buddy) == 0;
}

char *
e2ee_session_conv_key (const E2eeAccountRecord *account, const char *buddy)
{
  return g_strdup_printf ("%s\n%s\n%s", account->protocol, account->name, buddy);
}

/* The name of another buddy record of @account (the own one included)
 * that holds @key, or NULL. */
static const char *
pinned_elsewhere (E2eeAccountRecord *account, const char *buddy_name, const E2eeKey *key)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, account->buddies);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      E2eeBuddyRecord *other = value;
      E2eeDeviceRecord *dev;

      /* A key refused (or forgotten by /e2ee reset) there is not pinned. */
      if (strcmp (other->name, buddy_name) != 0
          && (dev = e2ee_buddy_find_device (other, key)) != NULL
          && dev->trust != E2EE_TRUST_REJECTED)
        return other->name;
    }
  return NULL;
}

/* Refuses the whole set if one key of it belongs to someone else: a key
 * is one device of one account, so the same key under a second name is
 * somebody relaying (unknown key share). */
static gboolean
check_keys_belong (E2eeAccountRecord *account, const char *buddy_name, GPtrArray *keys,
                   GError **error)
{
  gboolean own = e2ee_session_is_own (account, buddy_name);

  for (guint i = 0; i < keys->len; i++)
    {
      const E2eeKey *key = keys->pdata[i];
      const char *where;

      if (e2ee_key_equal (key, account->identity))
        {
          if (own)
            continue;
          g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEY_ELSEWHERE,
                       "%s published YOUR OWN key as theirs; their key set was refused "
                       "and nothing was pinned", buddy_name);
          return FALSE;
        }
      if ((where = pinned_elsewhere (account, buddy_name, key)) != NULL)
        {
          g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEY_ELSEWHERE,
                       "%s published a key that is already pinned for %s; their key "
                       "set was refused and nothing was pinned (someone may be "
                       "relaying %s's messages under another name)",
                       buddy_name, e2ee_session_is_own (account, where)
                       ? "your own account" : where, where);
          return FALSE;
        }
    }
  return TRUE;
}

/* Makes room for one more device of @buddy by dropping the undecided
 * device seen longest ago that never sent a message (nothing of it is
 * withheld, no replay state is lost): those are what junk offers leave.
 * FALSE if there is none (every device is decided or has spoken). */
static gboolean
evict_unseen (E2eeBuddyRecord *buddy)
{
  gint victim = -1;

  for (guint i = 0; i < buddy->devices->len; i++)
    {
      E2eeDeviceRecord *dev = buddy->devices->pdata[i];

      if (dev->trust != E2EE_TRUST_UNDECIDED || dev->replay_init)
        continue;
      if (victim < 0
          || dev->first_seen
             < ((E2eeDeviceRecord *) buddy->devices->pdata[victim])->first_seen)
        victim = (gint) i;
    }
  if (victim < 0)
    return FALSE;
  g_ptr_array_remove_index (buddy->devices, (guint) victim);
  return TRUE;
}

static GPtrArray *
copy_keys (GPtrArray *keys)
{
  GPtrArray *copy = g_ptr_array_new_full (keys->len, (GDestroyNotify) e2ee_key_unref);

  for (guint i = 0; i < keys->len; i++)
    g_ptr_array_add (copy, e2ee_key_ref (keys->pdata[i]));
  return copy;
}

E2eeLearnResult
e2ee_context_learn_keys_full (E2eeContext *ctx, E2eeAccountRecord *account,
                              const char *buddy_name, GPtrArray *keys, gboolean contact,
                              GPtrArray **new_devices, GError **error)
{
  E2eeBuddyRecord *buddy;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  gboolean first_contact, known_seen = FALSE, own, evicted = FALSE;
  guint dropped = 0;
  GPtrArray *fresh;
  E2eeLearnResult result = E2EE_LEARN_NOTHING_NEW;
  g_autofree char *conv = NULL;

  if (new_devices)
    *new_devices = NULL;
  if (!e2ee_session_check_name (buddy_name, error))
    return E2EE_LEARN_INVALID;
  if (!check_keys_belong (account, buddy_name, keys, error))
    return E2EE_LEARN_REFUSED;
  own = e2ee_session_is_own (account, buddy_name);
  conv = e2ee_session_conv_key (account, buddy_name);
  buddy = e2ee_account_lookup_buddy (account, buddy_name);
  if (!own && !contact
      && (buddy == NULL || (buddy->devices->len == 0 && !buddy->key_changed)))
    {
      /* Anyone can send offers: a stranger's stay out of the keyring. */
      if (keys->len == 0)
        return E2EE_LEARN_NOTHING_NEW;
      g_autoptr (GPtrArray) copy = copy_keys (keys);
      e2ee_strangers_put (e2ee_session_strangers (ctx), conv, copy);
      return E2EE_LEARN_STRANGER;
    }
  e2ee_strangers_remove (e2ee_session_strangers (ctx), conv);
  buddy = e2ee_account_ensure_buddy (account, buddy_name);
  /* Rejected is not absent: any device record, whatever its trust, means
   * the buddy has had a key, so a new one is a change, never a first
   * contact.  Our own account's devices are never trusted on first use. */
  /* A name marked as having had a key (key_changed without devices, see
   * e2ee_context_mark_had_key) gets no first contact either. */
  first_contact = !own && buddy->devices->len == 0 && !buddy->key_changed;
  fresh = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_key_unref);

  for (guint i = 0; i < keys->len; i++)
    {
      E2eeKey *key = keys->pdata[i];
      E2eeDeviceRecord *dev;

      if (e2ee_key_equal (key, account->identity))
        continue; /* our own key in our own account's set */
      dev = e2ee_buddy_find_device (buddy, key);
      if (dev != NULL)
        {
          dev->last_seen = now;
          if (e2ee_session_trust_usable (dev->trust))
            known_seen = TRUE;
          continue;
        }
      /* Offers are unauthenticated: without a cap, anyone could grow the
       * keyring (and every later save and load) without bound by sending
       * offers with ever new keys.  At the cap, the oldest undecided
       * device that never spoke makes room, so junk cannot keep the real
       * new device out for good. */
      if (buddy->devices->len + fresh->len >= MAX_DEVICES_PER_BUDDY)
        {
          if (!evict_unseen (buddy))
            {
              dropped++;
              continue;
            }
          evicted = TRUE;
        }
      g_ptr_array_add (fresh, e2ee_key_ref (key));
    }
  if (evicted)
    e2ee_session_notify_changed (ctx);
  if (dropped > 0 && fresh->len == 0)
    {
      g_ptr_array_unref (fresh);
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_DEVICE_LIMIT,
                   "%s already has %d devices that are decided or have sent messages; "
                   "%u new key(s) offered for %s were NOT recorded.  Reject the devices "
                   "you do not know (/e2ee status lists them, /e2ee reject DEVICE) to "
                   "make room", buddy_name, MAX_DEVICES_PER_BUDDY, dropped, buddy_name);
      return E2EE_LEARN_REFUSED;
    }

  if (fresh->len > 0)
    {
      /* First contact pins every key (trust on first use).  Later, a set
       * that still holds a trusted key only adds devices, which wait for
       * the user; a set that holds none of them replaces the identity,
       * which blocks sending until the user decides. */
      E2eeTrust trust = first_contact ? E2EE_TRUST_TOFU : E2EE_TRUST_UNDECIDED;

      for (guint i = 0; i < fresh->len; i++)
        g_ptr_array_add (buddy->devices, e2ee_device_record_new (fresh->pdata[i], trust, now));
      if (own)
        result = E2EE_LEARN_OWN_DEVICE;
      else if (first_contact)
        result = E2EE_LEARN_FIRST_CONTACT;
      else if (known_seen)
        result = E2EE_LEARN_NEW_DEVICE;
      else
        {
          result = E2EE_LEARN_KEY_CHANGED;
          buddy->key_changed = TRUE;
        }
      e2ee_session_notify_changed (ctx);
    }
  /* Signing keys are pinned, prekeys refreshed, for devices on record. */
  e2ee_session_v2_learn_set (ctx, account, buddy_name, keys);

  if (new_devices)
    *new_devices = fresh;
  else
    g_ptr_array_unref (fresh);
  return result;
}

E2eeLearnResult
e2ee_context_learn_keys (E2eeContext *ctx, E2eeAccountRecord *account,
                         const char *buddy_name, GPtrArray *keys, GPtrArray **new_devices)
{
  return e2ee_context_learn_keys_full (ctx, account, buddy_name, keys, TRUE, new_devices,
                                       NULL);
}

E2eeLearnResult
e2ee_context_promote_stranger (E2eeContext *ctx, E2eeAccountRecord *account,
                               const char *buddy_name, GPtrArray **new_devices,
                               GError **error)
{
  g_autofree char *conv = NULL;
  g_autoptr (GPtrArray) keys = NULL;

  if (new_devices)
    *new_devices = NULL;
  if (!e2ee_session_check_name (buddy_name, error))
    return E2EE_LEARN_INVALID;
  conv = e2ee_session_conv_key (account, buddy_name);
  keys = e2ee_strangers_take (e2ee_session_strangers (ctx), conv);
  if (keys == NULL)
    return E2EE_LEARN_NOTHING_NEW;
  return e2ee_context_learn_keys_full (ctx, account, buddy_name, keys, TRUE, new_devices,
                                       error);
}

guint
e2ee_context_strangers_count (E2eeContext *ctx)
{
  return e2ee_strangers_size (e2ee_session_strangers (ctx));
}

/* ---- trust decisions ------------------------------------------------- */

static gboolean
kid_in (const char *kid, gpointer data)
{
  GPtrArray *devices = data;

  for (guint i = 0; i < devices->len; i++)
    if (strcmp (e2ee_key_get_kid (((E2eeDeviceRecord *) devices->pdata[i])->key), kid) == 0)
      return TRUE;
  return FALSE;
}

gboolean
e2ee_context_set_trust (E2eeContext *ctx, E2eeAccountRecord *account, const char *buddy_name,
                        const char *kid, E2eeTrust trust, GError **error)
{
  E2eeBuddyRecord *buddy;
  g_autoptr (GPtrArray) chosen = g_ptr_array_new ();
  gboolean accepting = e2ee_session_trust_usable (trust);

  if (!e2ee_session_check_name (buddy_name, error))
    return FALSE;
  if (trust != E2EE_TRUST_UNDECIDED && trust != E2EE_TRUST_REJECTED && !accepting)
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_FAILED, "unknown trust value");
      return FALSE;
    }
  if (kid == NULL && e2ee_session_is_own (account, buddy_name))
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_NO_KEY,
                           "devices of your own account are accepted one at a time: "
                           "give the device's fingerprint");
      return FALSE;
    }
  buddy = e2ee_account_lookup_buddy (account, buddy_name);
  for (guint i = 0; buddy && i < buddy->devices->len; i++)
    {
      E2eeDeviceRecord *dev = buddy->devices->pdata[i];
      gboolean match = kid ? g_str_has_prefix (e2ee_key_get_kid (dev->key), kid)
                           : dev->trust == E2EE_TRUST_UNDECIDED;
      if (match)
        g_ptr_array_add (chosen, dev);
    }
  if (chosen->len > 1)
    {
      /* One decision, one device: a bare "trust" must not also accept a
       * device someone slipped in next to the one the user looked at. */
      GString *kids = g_string_new (NULL);

      for (guint i = 0; i < chosen->len; i++)
        g_string_append_printf (kids, "%s%.8s", i ? ", " : "",
                                e2ee_key_get_kid (((E2eeDeviceRecord *) chosen->pdata[i])->key));
      if (kid != NULL)
        g_set_error (error, E2EE_ERROR, E2EE_ERROR_AMBIGUOUS,
                     "several devices of %s match (%s); give more of the fingerprint",
                     buddy_name, kids->str);
      else
        g_set_error (error, E2EE_ERROR, E2EE_ERROR_AMBIGUOUS,
                     "%u devices of %s await a decision (%s); compare each one's safety "
                     "number (/e2ee verify) and accept one with /e2ee trust DEVICE",
                     chosen->len, buddy_name, kids->str);
      g_string_free (kids, TRUE);
      return FALSE;
    }
  if (chosen->len == 0)
    {
      if (kid == NULL && buddy && buddy->devices->len > 0)
        g_set_error (error, E2EE_ERROR, E2EE_ERROR_NO_KEY,
                     "no device of %s awaits a decision; name one with /e2ee trust "
                     "DEVICE (/e2ee status lists them)", buddy_name);
      else
        g_set_error (error, E2EE_ERROR, E2EE_ERROR_NO_KEY,
                     "no matching key is known for %s", buddy_name);
      return FALSE;
    }
  if (accepting && buddy->key_changed)
    {
      /* Accepting a replacement retires the keys it replaced. */
      for (guint i = 0; i < buddy->devices->len; i++)
        {
          E2eeDeviceRecord *dev = buddy->devices->pdata[i];
          if (!g_ptr_array_find (chosen, dev, NULL) && e2ee_session_trust_usable (dev->trust))
            dev->trust = E2EE_TRUST_REJECTED;
        }
      buddy->key_changed = FALSE;
    }
  for (guint i = 0; i < chosen->len; i++)
    ((E2eeDeviceRecord *) chosen->pdata[i])->trust = trust;
  if (trust == E2EE_TRUST_REJECTED)
    {
      /* What a rejected device sent is never shown. */
      g_autofree char *conv = e2ee_session_conv_key (account, buddy_name);
      g_ptr_array_unref (e2ee_withheld_take (e2ee_session_withheld (ctx), conv, kid_in, chosen));
    }
  e2ee_session_notify_changed (ctx);
  return TRUE;
}

gboolean
e2ee_context_set_own_trust (E2eeContext *ctx, E2eeAccountRecord *account, const char *kid,
                            E2eeTrust trust, GError **error)
{
  if (kid == NULL || *kid == '\0')
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_NO_KEY,
                           "give the fingerprint of the device of your own account");
      return FALSE;
    }
  return e2ee_context_set_trust (ctx, account, account->name, kid, trust, error);
}

GPtrArray *
e2ee_context_own_devices (E2eeContext *ctx, E2eeAccountRecord *account)
{
  E2eeBuddyRecord *self = e2ee_account_lookup_buddy (account, account->name);
  GPtrArray *out = g_ptr_array_new ();

  (void) ctx;
  for (guint i = 0; self && i < self->devices->len; i++)
    {
      E2eeDeviceRecord *dev = self->devices->pdata[i];
      if (!e2ee_key_equal (dev->key, account->identity))
        g_ptr_array_add (out, dev);
    }
  return out;
}

gboolean
e2ee_context_verify_all (E2eeContext *ctx, E2eeAccountRecord *account, const char *buddy_name,
                         guint *n_verified, GError **error)
{
  E2eeBuddyRecord *buddy;
  guint n = 0;

  if (n_verified)
    *n_verified = 0;
  if (!e2ee_session_check_name (buddy_name, error))
    return FALSE;
  buddy = e2ee_account_lookup_buddy (account, buddy_name);
  /* Only devices trusted on first use: a new, changed or own pending
   * device has not been compared just because its number was listed. */
  for (guint i = 0; buddy && i < buddy->devices->len; i++)
    {
      E2eeDeviceRecord *dev = buddy->devices->pdata[i];
      if (dev->trust == E2EE_TRUST_TOFU)
        {
          dev->trust = E2EE_TRUST_VERIFIED;
          n++;
        }
    }
  if (n_verified)
    *n_verified = n;
  if (n == 0)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_NO_KEY,
                   "no device of %s is trusted on first use; verify devices one at a "
                   "time with /e2ee verify DEVICE after comparing its whole safety "
                   "number", buddy_name);
      return FALSE;
    }
  e2ee_session_notify_changed (ctx);
  return TRUE;
}

gboolean
e2ee_context_reset (E2eeContext *ctx, E2eeAccountRecord *account, const char *buddy_name,
                    GError **error)
{
  g_autofree char *conv = NULL;
  E2eeBuddyRecord *buddy;
  guint forgotten = 0;

  if (!e2ee_session_check_name (buddy_name, error))
    return FALSE;
  conv = e2ee_session_conv_key (account, buddy_name);
  g_ptr_array_unref (e2ee_withheld_take (e2ee_session_withheld (ctx), conv, NULL, NULL));
  e2ee_strangers_remove (e2ee_session_strangers (ctx), conv);
  /* Forgetting is not a way back to a first contact: the record stays
   * with its policy, and every device stays as REJECTED with its replay
   * state, so the buddy still has had a key (nothing goes in plaintext),
   * an old envelope stays a replay if the device is accepted again, and
   * the next key is a change that waits for /e2ee trust DEVICE. */
  buddy = e2ee_account_lookup_buddy (account, buddy_name);
  for (guint i = 0; buddy && i < buddy->devices->len; i++)
    {
      E2eeDeviceRecord *dev = buddy->devices->pdata[i];

      if (dev->trust != E2EE_TRUST_REJECTED)
        {
          dev->trust = E2EE_TRUST_REJECTED;
          forgotten++;
        }
    }
  if (forgotten == 0)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_NO_KEY,
                   "no keys are known for %s", buddy_name);
      return FALSE;
    }
  e2ee_session_notify_changed (ctx);
  return TRUE;
}

gboolean
e2ee_context_mark_had_key (E2eeContext *ctx, E2eeAccountRecord *account,
                           const char *buddy_name, GError **error)
{
  E2eeBuddyRecord *buddy;
  g_autofree char *conv = NULL;

  if (!e2ee_session_check_name (buddy_name, error))
    return FALSE;
  if (e2ee_session_is_own (account, buddy_name))
    return TRUE; /* own devices are never trusted on first use anyway */
  buddy = e2ee_account_ensure_buddy (account, buddy_name);
  if (buddy->devices->len > 0 || buddy->key_changed)
    return TRUE; /* it has had a key already */
  /* key_changed without a device: sending blocks, and the first key
   * learned is a change that waits for the user's decision. */
  buddy->key_changed = TRUE;
  /* A key set cached while the name was a stranger is no first contact. */
  conv = e2ee_session_conv_key (account, buddy_name);
  e2ee_strangers_remove (e2ee_session_strangers (ctx), conv);
  e2ee_session_notify_changed (ctx);
  return TRUE;
}

/* ---- withheld messages ----------------------------------------------- */

static gboolean
kid_trusted (const char *kid, gpointer data)
{
  E2eeDeviceRecord *dev = e2ee_buddy_find_device_by_kid (data, kid);

  return dev != NULL && e2ee_session_trust_usable (dev->trust);
}

GPtrArray *
e2ee_context_take_withheld (E2eeContext *ctx, E2eeAccountRecord *account,
                            const char *buddy_name)
{
  E2eeBuddyRecord *buddy;
  g_autofree char *conv = NULL;
  GPtrArray *out;

  if (!e2ee_name_is_valid (buddy_name)
      || (buddy = e2ee_account_lookup_buddy (account, buddy_name)) == NULL)
    return g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_withheld_message_free);
  conv = e2ee_session_conv_key (account, buddy_name);
  out = e2ee_withheld_take (e2ee_session_withheld (ctx), conv, kid_trusted, buddy);
  for (guint i = 0; i < out->len; i++)
    {
      E2eeWithheldMessage *m = out->pdata[i];
      m->sender_trust = e2ee_buddy_find_device_by_kid (buddy, m->sender_kid)->trust;
    }
  return out;
}

guint
e2ee_context_withheld_count (E2eeContext *ctx, E2eeAccountRecord *account,
                             const char *buddy_name)
{
  g_autofree char *conv = NULL;

  if (buddy_name == NULL)
    return e2ee_withheld_count (e2ee_session_withheld (ctx), NULL);
  conv = e2ee_session_conv_key (account, buddy_name);
  return e2ee_withheld_count (e2ee_session_withheld (ctx), conv);
}
