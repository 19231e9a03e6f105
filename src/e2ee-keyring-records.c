/* The records' plain parts: enumerations, constructors, look-ups that
 * need no database (e2ee-keyring.h).
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "e2ee-keyring.h"
#include "e2ee-store-records.h"
#include "e2ee-wipe.h"

static const char *const trust_names[] = { "undecided", "tofu", "verified", "rejected" };
static const char *const policy_names[] = { "default", "off", "opportunistic", "required" };

const char *
e2ee_trust_to_string (E2eeTrust trust)
{
  return (guint) trust < G_N_ELEMENTS (trust_names) ? trust_names[trust] : NULL;
}

gboolean
e2ee_trust_from_string (const char *text, E2eeTrust *out)
{
  for (guint i = 0; text != NULL && i < G_N_ELEMENTS (trust_names); i++)
    if (strcmp (text, trust_names[i]) == 0)
      {
        *out = (E2eeTrust) i;
        return TRUE;
      }
  return FALSE;
}

const char *
e2ee_policy_to_string (E2eePolicy policy)
{
  return (guint) policy < G_N_ELEMENTS (policy_names) ? policy_names[policy] : NULL;
}

gboolean
e2ee_policy_from_string (const char *text, E2eePolicy *out)
{
  for (guint i = 0; text != NULL && i < G_N_ELEMENTS (policy_names); i++)
    if (strcmp (text, policy_names[i]) == 0)
      {
        *out = (E2eePolicy) i;
        return TRUE;
      }
  return FALSE;
}

E2eeDeviceRecord *
e2ee_device_record_new (E2eeKey *key, E2eeTrust trust, gint64 now)
{
  E2eeDeviceRecord *device;

  g_return_val_if_fail (key != NULL, NULL);
  device = g_new0 (E2eeDeviceRecord, 1);
  device->key = e2ee_key_ref (key);
  device->trust = trust;
  device->first_seen = now;
  device->last_seen = now;
  return device;
}

void
e2ee_device_record_free (E2eeDeviceRecord *device)
{
  if (device == NULL)
    return;
  if (device->key != NULL)
    e2ee_key_unref (device->key);
  e2ee_wipe (device, sizeof *device);   /* the derived keys are secrets */
  g_free (device);
}

E2eeAccountRecord *
e2ee_account_record_new (const char *protocol, const char *name, E2eeKey *identity)
{
  E2eeAccountRecord *account = g_new0 (E2eeAccountRecord, 1);

  account->protocol = g_strdup (protocol);
  account->name = g_strdup (name);
  account->identity = identity != NULL ? e2ee_key_ref (identity) : NULL;
  /* The key is the record's own name, freed with the record. */
  account->buddies = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                            (GDestroyNotify) e2ee_records_buddy_free);
  return account;
}

void
e2ee_account_record_free (E2eeAccountRecord *account)
{
  if (account == NULL)
    return;
  g_hash_table_unref (account->buddies);
  if (account->identity != NULL)
    e2ee_key_unref (account->identity);
  g_free (account->protocol);
  g_free (account->name);
  g_free (account);
}


E2eeDeviceRecord *
e2ee_buddy_find_device (E2eeBuddyRecord *buddy, const E2eeKey *key)
{
  g_return_val_if_fail (buddy != NULL && key != NULL, NULL);
  for (guint i = 0; i < buddy->devices->len; i++)
    if (e2ee_key_equal (((E2eeDeviceRecord *) buddy->devices->pdata[i])->key, key))
      return buddy->devices->pdata[i];
  return NULL;
}

E2eeDeviceRecord *
e2ee_buddy_find_device_by_kid (E2eeBuddyRecord *buddy, const char *kid)
{
  g_return_val_if_fail (buddy != NULL && kid != NULL, NULL);
  for (guint i = 0; i < buddy->devices->len; i++)
    if (strcmp (e2ee_key_get_kid (((E2eeDeviceRecord *) buddy->devices->pdata[i])->key), kid) == 0)
      return buddy->devices->pdata[i];
  return NULL;
}

