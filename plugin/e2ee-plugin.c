/* purple-e2ee — the libpurple plugin: registration, keyring, signal wiring.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <string.h>
#include <glib/gstdio.h>
#include <locale.h>

#include "e2ee-plugin.h"
#include "e2ee-error.h"
#include "e2ee-gcrypt.h"
#include "e2ee-wipe.h"

/* A short delay coalesces the bursts of changes one message causes
 * (replay state, last_seen) into one write. */

static struct {
  PurplePlugin *plugin;
  char *path;
  E2eeContext *ctx;
  char *inactive_reason;
  guint save_timer;
  gboolean asking;
  GHashTable *contacts;   /* "protocol\naccount\nbuddy": the user wrote to them */
  gboolean locked;        /* inactive only because the passphrase is missing */
} state;

PurplePlugin *
e2ee_plugin_get (void)
{
  return state.plugin;
}

E2eeContext *
e2ee_plugin_context (void)
{
  return state.ctx;
}

const char *
e2ee_plugin_inactive_reason (void)
{
  if (state.ctx != NULL)
    return NULL;
  return state.inactive_reason != NULL ? state.inactive_reason
                                       : _("the keyring is not open");
}

char *
e2ee_plugin_normalize (PurpleAccount *account, const char *who)
{
  const char *norm;

  g_return_val_if_fail (who != NULL, NULL);

  norm = purple_normalize (account, who);
  if (norm == NULL || *norm == '\0')
    return g_utf8_strdown (who, -1);
  return g_strdup (norm);
}

static void
set_inactive (const char *reason)
{
  g_free (state.inactive_reason);
  state.inactive_reason = g_strdup (reason);
  state.locked = FALSE;
}

gboolean
e2ee_plugin_is_locked (void)
{
  return state.ctx == NULL && state.locked;
}

void
e2ee_plugin_save_now (void)
{
  g_autoptr (GError) error = NULL;

  if (state.save_timer != 0)
    {
      purple_timeout_remove (state.save_timer);
      state.save_timer = 0;
    }
  if (state.ctx == NULL)
    return;
  if (!e2ee_keyring_save (e2ee_context_get_keyring (state.ctx), &error))
    {
      purple_debug_error (E2EE_DEBUG_CAT, "saving the keyring failed: %s\n",
                          error->message);
      purple_notify_error (state.plugin, _("purple-e2ee"),
                           _("The encryption keyring could not be saved."),
                           error->message);
    }
}

/* Committed now, before the envelope leaves or the message is shown (the
 * session calls this before it returns them, and withholds them when the
 * commit fails). */
static gboolean
context_commit_cb (E2eeContext *ctx, gpointer user_data, GError **error)
{
  if (state.save_timer != 0)
    {
      purple_timeout_remove (state.save_timer);
      state.save_timer = 0;
    }
  if (e2ee_keyring_save (e2ee_context_get_keyring (ctx), error))
    {
      e2ee_dialogs_refresh_titles ();
      return TRUE;
    }
  purple_debug_error (E2EE_DEBUG_CAT, "saving the keyring failed: %s\n",
                      error && *error ? (*error)->message : "?");
  return FALSE;
}

/* The name others know this account by, which the key derivation binds:
 * the bare JID on XMPP; on IRC the nick (the username is nick@server, and
 * buddies see only the nick). */
static char *
own_name (PurpleAccount *account)
{
  const char *username = purple_account_get_username (account);
  g_autofree char *nick = NULL;
  g_autofree char *full = NULL;
  E2eeKeyring *keyring;
  E2eeAccountRecord *old;
  const char *at;

  if (g_strcmp0 (purple_account_get_protocol_id (account), "prpl-irc") != 0
      || (at = strchr (username, '@')) == NULL)
    return e2ee_plugin_normalize (account, username);
  {
    g_autofree char *raw = g_strndup (username, at - username);

    nick = e2ee_plugin_normalize (account, raw);
  }
  full = e2ee_plugin_normalize (account, username);
  /* Keyrings written before kept IRC identities under nick@server: carry
   * such a record over to the nick once, so the identity stays the same. */
  keyring = e2ee_context_get_keyring (state.ctx);
  if (e2ee_keyring_lookup_account (keyring, "prpl-irc", nick) == NULL
      && (old = e2ee_keyring_lookup_account (keyring, "prpl-irc", full)) != NULL)
    {
      g_free (old->name);
      old->name = g_strdup (nick);
      e2ee_plugin_save_now ();
    }
  return g_steal_pointer (&nick);
}

/* An imported keyring (an earlier version's file, or a backup) had other
 * devices of this account trusted; they wait for the user's confirmation
 * again, because the earlier version trusted them on first use. */
static void
announce_own_reconfirm (PurpleAccount *account, E2eeAccountRecord *record)
{
  g_autofree char *text = g_strdup_printf (
      g_dngettext (GETTEXT_PACKAGE, "%u other device of your account %s was trusted by an earlier version "
                "without your confirmation.  It gets none of your messages until you "
                "accept it: /e2ee own lists it, /e2ee own accept DEVICE accepts it.",
                "%u other devices of your account %s were trusted by an earlier version "
                "without your confirmation.  They get none of your messages until you "
                "accept them: /e2ee own lists them, /e2ee own accept DEVICE accepts one.",
                record->own_reconfirm),
      record->own_reconfirm, purple_account_get_username (account));

  record->own_reconfirm = 0;
  e2ee_plugin_save_now ();
  purple_notify_warning (state.plugin, _("purple-e2ee"),
                         _("Confirm your own devices again"), text);
}

E2eeAccountRecord *
e2ee_plugin_account (PurpleAccount *account)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *name = NULL;
  E2eeAccountRecord *record;
  gboolean created = FALSE;

  if (state.ctx == NULL || account == NULL)
    return NULL;

  name = own_name (account);
  /* A new identity is saved before it is returned: one that cannot reach
   * the disk is neither published nor used. */
  record = e2ee_context_ensure_account_saved (state.ctx,
                                              purple_account_get_protocol_id (account),
                                              name, &created, &error);
  if (record == NULL)
    {
      purple_debug_error (E2EE_DEBUG_CAT, "no identity for %s: %s\n", name,
                          error->message);
      return NULL;
    }
  if (created)
    purple_debug_info (E2EE_DEBUG_CAT, "created an identity key for %s (%s)\n",
                       name, e2ee_key_get_kid (record->identity));
  if (record->own_reconfirm > 0)
    announce_own_reconfirm (account, record);
  return record;
}

static char *
contact_key (PurpleAccount *account, const char *buddy)
{
  return g_strdup_printf ("%s\n%s\n%s", purple_account_get_protocol_id (account),
                          purple_account_get_username (account), buddy);
}

gboolean
e2ee_plugin_is_contact (PurpleAccount *account, const char *buddy)
{
  g_autofree char *key = NULL;

  if (purple_find_buddy (account, buddy) != NULL)
    return TRUE;
  if (state.contacts == NULL)
    return FALSE;
  key = contact_key (account, buddy);
  return g_hash_table_contains (state.contacts, key);
}

void
e2ee_plugin_add_contact (PurpleAccount *account, const char *buddy)
{
  g_autoptr (GError) error = NULL;
  E2eeAccountRecord *record = e2ee_plugin_account (account);
  GPtrArray *new_devices = NULL;
  E2eeLearnResult result;

  if (state.contacts == NULL)
    state.contacts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_hash_table_add (state.contacts, contact_key (account, buddy));
  if (state.ctx == NULL || record == NULL)
    return;
  /* An offer they sent before is pinned now. */
  result = e2ee_context_promote_stranger (state.ctx, record, buddy, &new_devices, &error);
  if (result == E2EE_LEARN_REFUSED)
    e2ee_ui_report_receive_error (account, buddy, error);
  else
    e2ee_ui_report_learned (account, buddy, result, new_devices);
  if (new_devices != NULL)
    g_ptr_array_unref (new_devices);
  e2ee_report_stranger_promoted (account, buddy);
}

static void
buddy_added_cb (PurpleBuddy *buddy, gpointer data)
{
  PurpleAccount *account = purple_buddy_get_account (buddy);
  g_autofree char *name = e2ee_plugin_normalize (account, purple_buddy_get_name (buddy));

  e2ee_plugin_add_contact (account, name);
}

static void
activate (E2eeKeyring *keyring)
{
  state.ctx = e2ee_context_new (keyring);
  e2ee_context_set_default_policy (state.ctx, e2ee_prefs_get_policy ());
  e2ee_context_set_padding (state.ctx, e2ee_prefs_get_pad_block ());
  e2ee_context_set_commit_func (state.ctx, context_commit_cb, NULL);
  set_inactive (NULL);
  purple_debug_info (E2EE_DEBUG_CAT, "keyring open (%s)\n",
                     e2ee_keyring_is_protected (keyring) ? "protected" : "not protected");
  e2ee_publish_all ();
}

static gboolean
try_open (const char *passphrase, GError **error)
{
  E2eeKeyring *keyring;

  keyring = e2ee_keyring_load (state.path, passphrase, error);
  if (keyring == NULL)
    return FALSE;
  activate (keyring);
  return TRUE;
}

static void
unlock_ok_cb (gpointer data, const char *text)
{
  g_autoptr (GError) error = NULL;
  char *passphrase = g_strdup (text != NULL ? text : "");

  state.asking = FALSE;
  if (state.ctx == NULL && !try_open (passphrase, &error))
    {
      /* Nothing is written while locked, so a wrong passphrase costs nothing. */
      gboolean wrong = g_error_matches (error, E2EE_ERROR, E2EE_ERROR_KEYRING_PASSPHRASE);

      set_inactive (wrong ? _("the keyring passphrase was wrong") : error->message);
      state.locked = wrong;
      purple_notify_error (state.plugin, _("purple-e2ee"),
                           _("The encryption keyring stays locked."),
                           _("The passphrase was not accepted.  Nothing was changed; "
                             "encrypted messages cannot be sent or read until you "
                             "unlock it (Tools or Plugins menu: purple-e2ee, "
                             "Unlock keyring)."));
    }
  e2ee_string_free (passphrase);
}

static void
unlock_cancel_cb (gpointer data, const char *text)
{
  state.asking = FALSE;
  set_inactive (_("the keyring is locked"));
  state.locked = TRUE;
}

void
e2ee_plugin_request_unlock (void)
{
  if (state.ctx != NULL || state.asking)
    return;
  state.asking = TRUE;
  purple_request_input (state.plugin, _("purple-e2ee"),
                        _("Unlock the encryption keyring"),
                        _("Your end-to-end encryption keys are protected by a "
                          "passphrase.  Until you enter it, encrypted messages can "
                          "be neither sent nor read."),
                        NULL, FALSE, TRUE, NULL,
                        _("_Unlock"), G_CALLBACK (unlock_ok_cb),
                        _("_Cancel"), G_CALLBACK (unlock_cancel_cb),
                        NULL, NULL, NULL, NULL);
}

static void
set_passphrase_cb (gpointer data, const char *text)
{
  g_autoptr (GError) error = NULL;
  const char *pass = (text != NULL && *text != '\0') ? text : NULL;

  if (state.ctx == NULL)
    return;
  if (!e2ee_keyring_set_passphrase (e2ee_context_get_keyring (state.ctx), pass, &error))
    {
      purple_notify_error (state.plugin, _("purple-e2ee"),
                           _("The passphrase could not be set."), error->message);
      return;
    }
  e2ee_plugin_save_now ();
  purple_notify_info (state.plugin, _("purple-e2ee"),
                      pass != NULL ? _("The keyring is now protected by your passphrase.")
                                   : _("The keyring passphrase was removed."),
                      NULL);
}

static void
action_unlock (PurplePluginAction *action)
{
  if (state.ctx != NULL)
    purple_notify_info (state.plugin, _("purple-e2ee"),
                        _("The keyring is already open."), NULL);
  else
    e2ee_plugin_request_unlock ();
}

static void
action_passphrase (PurplePluginAction *action)
{
  if (state.ctx == NULL)
    {
      e2ee_plugin_request_unlock ();
      return;
    }
  purple_request_input (state.plugin, _("purple-e2ee"),
                        _("Protect the keyring with a passphrase"),
                        _("You will be asked for it each time the plugin starts.  "
                          "Leave it empty to remove the protection."),
                        NULL, FALSE, TRUE, NULL,
                        _("_Set"), G_CALLBACK (set_passphrase_cb),
                        _("_Cancel"), NULL, NULL, NULL, NULL, NULL);
}

static GList *
plugin_actions (PurplePlugin *plugin, gpointer context)
{
  GList *list = NULL;

  list = g_list_append (list, purple_plugin_action_new (_("Show my fingerprints"),
                                                        e2ee_ui_action_fingerprints));
  list = g_list_append (list, purple_plugin_action_new (_("Manage known keys"),
                                                        e2ee_ui_action_known_keys));
  list = g_list_append (list, purple_plugin_action_new (_("Set keyring passphrase..."),
                                                        action_passphrase));
  list = g_list_append (list, purple_plugin_action_new (_("Unlock keyring..."),
                                                        action_unlock));
  return list;
}

static gboolean
prepare_folder (const char *dir, GError **error)
{
  if (g_mkdir_with_parents (dir, 0700) != 0 || g_chmod (dir, 0700) != 0)
    {
      int saved = errno;

      g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_IO, "%s: %s", dir,
                   g_strerror (saved));
      return FALSE;
    }
  return TRUE;
}

static void
setup_gettext (void)
{
  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
}

static gboolean
plugin_load (PurplePlugin *plugin)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = NULL;

  setup_gettext ();
  state.plugin = plugin;

  if (!e2ee_gcrypt_init (&error))
    {
      purple_debug_error (E2EE_DEBUG_CAT, "%s\n", error->message);
      plugin->error = g_strdup (error->message);
      return FALSE;
    }

  dir = g_build_filename (purple_user_dir (), "purple-e2ee", NULL);
  state.path = g_build_filename (dir, "keyring.json", NULL);

  e2ee_prefs_init ();
  e2ee_prefs_connect (plugin);
  e2ee_messages_connect (plugin);
  e2ee_publish_connect (plugin);
  e2ee_enforce_connect (plugin);
  e2ee_inband_connect (plugin);
  e2ee_xmpp_connect (plugin);
  e2ee_dialogs_connect (plugin);
  purple_signal_connect (purple_blist_get_handle (), "buddy-added", plugin,
                         PURPLE_CALLBACK (buddy_added_cb), NULL);
  e2ee_commands_register (plugin);

  if (!prepare_folder (dir, &error))
    {
      set_inactive (error->message);
      purple_notify_error (plugin, _("purple-e2ee"),
                           _("The encryption keyring folder cannot be used."),
                           error->message);
    }
  else if (e2ee_keyring_file_is_protected (state.path))
    {
      set_inactive (_("the keyring is locked"));
      state.locked = TRUE;
      e2ee_plugin_request_unlock ();
    }
  else if (!try_open (NULL, &error))
    {
      /* A damaged or foreign-readable file is left exactly as it is: the
       * plugin stays inactive rather than start over with new keys. */
      set_inactive (error->message);
      purple_notify_error (plugin, _("purple-e2ee"),
                           _("The encryption keyring could not be opened."),
                           error->message);
    }
  return TRUE;
}

static gboolean
plugin_unload (PurplePlugin *plugin)
{
  if (state.ctx != NULL)
    {
      e2ee_publish_withdraw_all ();
      e2ee_plugin_save_now ();
    }
  if (state.save_timer != 0)
    purple_timeout_remove (state.save_timer);
  state.save_timer = 0;

  e2ee_commands_unregister ();
  purple_request_close_with_handle (plugin);
  purple_notify_close_with_handle (plugin);
  purple_signals_disconnect_by_handle (plugin);
  purple_prefs_disconnect_by_handle (plugin);
  e2ee_messages_reset ();
  e2ee_publish_reset ();
  e2ee_inband_reset ();
  e2ee_report_reset ();
  e2ee_xmpp_reset ();
  e2ee_dialogs_reset ();

  g_clear_pointer (&state.ctx, e2ee_context_free);
  g_clear_pointer (&state.path, g_free);
  g_clear_pointer (&state.inactive_reason, g_free);
  g_clear_pointer (&state.contacts, g_hash_table_destroy);
  state.asking = FALSE;
  state.plugin = NULL;
  return TRUE;
}

static PurplePluginUiInfo prefs_info = {
  e2ee_prefs_frame,
  0,
  NULL,
  NULL, NULL, NULL, NULL
};

static PurplePluginInfo info = {
  PURPLE_PLUGIN_MAGIC,
  PURPLE_MAJOR_VERSION,
  PURPLE_MINOR_VERSION,
  PURPLE_PLUGIN_STANDARD,
  NULL,                         /* no UI requirement: Pidgin, Finch, others */
  0,
  NULL,
  PURPLE_PRIORITY_DEFAULT,
  E2EE_PLUGIN_ID,
  N_("purple-e2ee"),
  "0.1.0",
  N_("End-to-end encrypted instant messages"),
  N_("Encrypts your instant messages end to end on any protocol (XMPP, IRC "
     "and others) with per-device P-256 keys, published in your profile or "
     "status or exchanged in-band.  Warns when a buddy's key changes and never "
     "sends in plaintext when encryption is required."),
  "purple-e2ee developers",
  "",
  plugin_load,
  plugin_unload,
  NULL,
  NULL,
  NULL,
  &prefs_info,
  plugin_actions,
  NULL, NULL, NULL, NULL
};

static void
init_plugin (PurplePlugin *plugin)
{
  setup_gettext ();
  info.name = (char *) _(info.name);
  info.summary = (char *) _(info.summary);
  info.description = (char *) _(info.description);
}

PURPLE_INIT_PLUGIN (purple_e2ee, init_plugin, info)
