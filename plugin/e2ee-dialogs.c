/* purple-e2ee — decisions as purple_request dialogs (key changes, new
 * devices, own devices, verification), the buddy menu entry and the
 * conversation title showing the encryption state.  Only libpurple's
 * request, blist and conversation APIs, so Pidgin and Finch both show them.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include "e2ee-plugin.h"
#include "e2ee-error.h"
#include "e2ee-fingerprint.h"

/* Open decision dialogs in all: beyond this, the system lines and /e2ee
 * commands remain the way to decide. */
#define DIALOGS_MAX 4
#define SHORT_KID 8

typedef struct {
  PurpleAccount *account;
  char *buddy;      /* normalised; the account's own name for own devices */
  char *kid;        /* the whole kid */
  gboolean own;
  void *handle;     /* the request's UI handle */
} Pending;

static GList *pending;   /* Pending*, at most one per buddy, DIALOGS_MAX in all */
static guint refresh_id;

static void
pending_free (Pending *p)
{
  g_free (p->buddy);
  g_free (p->kid);
  g_free (p);
}

static Pending *
pending_for (PurpleAccount *account, const char *buddy)
{
  for (GList *l = pending; l != NULL; l = l->next)
    {
      Pending *p = l->data;

      if (p->account == account && g_strcmp0 (p->buddy, buddy) == 0)
        return p;
    }
  return NULL;
}

static E2eeDeviceRecord *
device_of (E2eeAccountRecord *record, const char *buddy, const char *kid)
{
  E2eeBuddyRecord *br = record != NULL ? e2ee_account_lookup_buddy (record, buddy) : NULL;

  return br != NULL ? e2ee_buddy_find_device_by_kid (br, kid) : NULL;
}

static void open_next (PurpleAccount *account, const char *buddy);

/* The user answered (or the dialog was closed): forget it, offer the
 * buddy's next undecided device. */
static void
finish (Pending *p)
{
  PurpleAccount *account = p->account;
  g_autofree char *buddy = g_strdup (p->buddy);

  pending = g_list_remove (pending, p);
  pending_free (p);
  open_next (account, buddy);
  e2ee_dialogs_refresh_titles ();
}

static gboolean
still_pending (Pending *p)
{
  return g_list_find (pending, p) != NULL;
}

static void
decide (Pending *p, E2eeTrust trust)
{
  E2eeContext *ctx = e2ee_plugin_context ();
  E2eeAccountRecord *record = ctx != NULL ? e2ee_plugin_account (p->account) : NULL;
  g_autoptr (GError) error = NULL;
  gboolean ok;

  if (record == NULL)
    return;
  if (p->own)
    ok = e2ee_context_set_own_trust (ctx, record, p->kid, trust, &error);
  else
    ok = e2ee_context_set_trust (ctx, record, p->buddy, p->kid, trust, &error);
  if (!ok)
    {
      e2ee_ui_say (p->account, p->buddy, FALSE, _("No change: %s"), error->message);
      return;
    }
  purple_debug_info (E2EE_DEBUG_CAT, "dialog: device %.8s of %s set to %d\n",
                     p->kid, p->buddy, (int) trust);
  if (p->own)
    e2ee_publish_account (p->account);
  if (trust == E2EE_TRUST_REJECTED)
    e2ee_ui_say (p->account, p->buddy, FALSE,
                 _("Rejected device %.8s: it gets none of your messages and nothing "
                   "it sends is shown."), p->kid);
  else
    {
      e2ee_ui_say (p->account, p->buddy, FALSE,
                   _("Accepted device %.8s: your messages are encrypted to it."),
                   p->kid);
      e2ee_report_release (p->account, p->buddy);
    }
}

static void
accept_cb (gpointer data, int action)
{
  Pending *p = data;

  if (!still_pending (p))
    return;
  decide (p, p->own ? E2EE_TRUST_VERIFIED : E2EE_TRUST_TOFU);
  finish (p);
}

static void
reject_cb (gpointer data, int action)
{
  Pending *p = data;

  if (!still_pending (p))
    return;
  decide (p, E2EE_TRUST_REJECTED);
  finish (p);
}

static void
later_cb (gpointer data, int action)
{
  Pending *p = data;

  if (!still_pending (p))
    return;
  /* Nothing changes; the next undecided device is not offered now either. */
  pending = g_list_remove (pending, p);
  pending_free (p);
}

static void
open_dialog (PurpleAccount *account, const char *buddy, E2eeKey *key,
             E2eeLearnResult why)
{
  E2eeAccountRecord *record = e2ee_plugin_account (account);
  g_autofree char *fp = NULL, *sn = NULL, *secondary = NULL, *primary = NULL;
  const char *kid = e2ee_key_get_kid (key);
  PurpleConversation *conv;
  Pending *p;

  if (record == NULL || record->identity == NULL || kid == NULL
      || pending_for (account, buddy) != NULL
      || g_list_length (pending) >= DIALOGS_MAX)
    return;
  fp = e2ee_fingerprint_hex (key);
  sn = e2ee_safety_number (record->identity, key);
  if (why == E2EE_LEARN_OWN_DEVICE)
    primary = g_strdup_printf (_("A NEW DEVICE claims to be your own account %s"),
                               purple_account_get_username (account));
  else if (why == E2EE_LEARN_KEY_CHANGED)
    primary = g_strdup_printf (_("%s's encryption key has CHANGED"), buddy);
  else
    primary = g_strdup_printf (_("%s has a NEW DEVICE"), buddy);
  secondary = g_strdup_printf (_("Device: %.8s\nFingerprint: %s\nSafety number: %s\n\n"
                                 "Compare the safety number with the owner of the "
                                 "device (in person or by phone) before you accept "
                                 "it.  Until you decide, it gets none of your "
                                 "messages and nothing it sends is shown."),
                               kid, fp, sn);
  p = g_new0 (Pending, 1);
  p->account = account;
  p->buddy = g_strdup (buddy);
  p->kid = g_strdup (kid);
  p->own = why == E2EE_LEARN_OWN_DEVICE;
  pending = g_list_append (pending, p);
  conv = e2ee_ui_find_conv (account, buddy, FALSE);
  p->handle = purple_request_action (e2ee_plugin_get (), _("purple-e2ee"), primary,
                                     secondary, 2, account, buddy, conv, p, 3,
                                     _("_Accept"), PURPLE_CALLBACK (accept_cb),
                                     _("_Reject"), PURPLE_CALLBACK (reject_cb),
                                     _("Decide _later"), PURPLE_CALLBACK (later_cb));
  if (p->handle == NULL && still_pending (p))
    {
      /* No UI for requests. */
      pending = g_list_remove (pending, p);
      pending_free (p);
    }
}

/* The buddy's next device still awaiting a decision, if any. */
static void
open_next (PurpleAccount *account, const char *buddy)
{
  E2eeContext *ctx = e2ee_plugin_context ();
  E2eeAccountRecord *record = ctx != NULL ? e2ee_plugin_account (account) : NULL;
  E2eeBuddyRecord *br = record != NULL ? e2ee_account_lookup_buddy (record, buddy) : NULL;
  gboolean own = record != NULL && g_strcmp0 (record->name, buddy) == 0;

  for (guint i = 0; br != NULL && i < br->devices->len; i++)
    {
      E2eeDeviceRecord *dev = g_ptr_array_index (br->devices, i);

      if (dev->trust == E2EE_TRUST_UNDECIDED)
        {
          open_dialog (account, buddy, dev->key,
                       own ? E2EE_LEARN_OWN_DEVICE
                           : br->key_changed ? E2EE_LEARN_KEY_CHANGED
                                             : E2EE_LEARN_NEW_DEVICE);
          return;
        }
    }
}

void
e2ee_dialogs_report_learned (PurpleAccount *account, const char *who,
                             E2eeLearnResult result, GPtrArray *new_devices)
{
  E2eeAccountRecord *record = e2ee_plugin_account (account);
  gboolean own = record != NULL && g_strcmp0 (record->name, who) == 0;

  if (own && new_devices != NULL)
    result = E2EE_LEARN_OWN_DEVICE;
  if (result != E2EE_LEARN_KEY_CHANGED && result != E2EE_LEARN_NEW_DEVICE
      && result != E2EE_LEARN_OWN_DEVICE)
    return;
  if (new_devices != NULL && new_devices->len > 0)
    open_dialog (account, who, g_ptr_array_index (new_devices, 0), result);
  else
    open_next (account, who);
  e2ee_dialogs_refresh_titles ();
}

/* ---- the conversation title ---- */

static char *
state_text (PurpleAccount *account, const char *who)
{
  E2eeContext *ctx = e2ee_plugin_context ();
  E2eeAccountRecord *record = ctx != NULL ? e2ee_plugin_account (account) : NULL;
  g_autofree char *buddy = e2ee_plugin_normalize (account, who);
  E2eeBuddyRecord *br;

  if (record == NULL)
    return g_strdup (_("encryption inactive"));
  br = e2ee_account_lookup_buddy (record, buddy);
  if (br != NULL && br->key_changed)
    return g_strdup (_("KEY CHANGED: sending blocked"));
  if (e2ee_messages_policy_is_off (account, buddy))
    return g_strdup (_("not encrypted"));
  switch (e2ee_context_send_decision (ctx, record, buddy, NULL))
    {
    case E2EE_SEND_ENCRYPT:
      return g_strdup (e2ee_ui_mark_for_buddy (record, buddy) == E2EE_MARK_VERIFIED
                       ? _("encrypted, verified") : _("encrypted, not verified"));
    case E2EE_SEND_BLOCK:
      return g_strdup (_("sending blocked"));
    case E2EE_SEND_PLAINTEXT:
    default:
      return g_strdup (_("not encrypted"));
    }
}

static void
set_title (PurpleConversation *conv)
{
  PurpleAccount *account = purple_conversation_get_account (conv);
  const char *name = purple_conversation_get_name (conv);
  PurpleBuddy *buddy = purple_find_buddy (account, name);
  const char *base = buddy != NULL ? purple_buddy_get_contact_alias (buddy) : name;
  g_autofree char *st = state_text (account, name);
  /* TRANSLATORS: conversation title: the buddy, then the encryption state */
  g_autofree char *title = g_strdup_printf (_("%s [E2EE: %s]"), base, st);

  if (g_strcmp0 (purple_conversation_get_title (conv), title) != 0)
    purple_conversation_set_title (conv, title);
}

static gboolean
refresh_idle (gpointer data)
{
  refresh_id = 0;
  for (GList *l = pending; l != NULL;)
    {
      Pending *p = l->data;
      E2eeAccountRecord *record = e2ee_plugin_context () != NULL
                                  ? e2ee_plugin_account (p->account) : NULL;
      E2eeDeviceRecord *dev = device_of (record, p->buddy, p->kid);

      l = l->next;
      /* Decided meanwhile (a command, another dialog) or gone: close. */
      if (dev == NULL || dev->trust != E2EE_TRUST_UNDECIDED)
        {
          void *handle = p->handle;
          PurpleAccount *account = p->account;
          g_autofree char *buddy = g_strdup (p->buddy);

          pending = g_list_remove (pending, p);
          pending_free (p);
          purple_request_close (PURPLE_REQUEST_ACTION, handle);
          /* The buddy's next undecided device, if any (appended: the loop
           * sees it and leaves it open). */
          open_next (account, buddy);
        }
    }
  for (GList *l = purple_get_ims (); l != NULL; l = l->next)
    set_title (l->data);
  return G_SOURCE_REMOVE;
}

void
e2ee_dialogs_refresh_titles (void)
{
  if (refresh_id == 0)
    refresh_id = purple_timeout_add (0, refresh_idle, NULL);
}

static void
conv_created_cb (PurpleConversation *conv, gpointer data)
{
  if (purple_conversation_get_type (conv) == PURPLE_CONV_TYPE_IM)
    set_title (conv);
}

/* ---- the buddy menu ---- */

static gboolean
menu_target (PurpleBlistNode *node, PurpleAccount **account, char **buddy,
             E2eeAccountRecord **record)
{
  PurpleBuddy *b;

  if (!PURPLE_BLIST_NODE_IS_BUDDY (node) || e2ee_plugin_context () == NULL)
    return FALSE;
  b = (PurpleBuddy *) node;
  *account = purple_buddy_get_account (b);
  *record = e2ee_plugin_account (*account);
  *buddy = e2ee_plugin_normalize (*account, purple_buddy_get_name (b));
  return *record != NULL && *buddy != NULL;
}

static void
menu_status (PurpleBlistNode *node, gpointer data)
{
  PurpleAccount *account;
  E2eeAccountRecord *record;
  g_autofree char *buddy = NULL, *text = NULL, *escaped = NULL, *html = NULL;

  if (!menu_target (node, &account, &buddy, &record))
    return;
  text = e2ee_ui_describe_buddy (record, buddy);
  escaped = g_markup_escape_text (text, -1);
  html = purple_strdup_withhtml (escaped);
  purple_notify_formatted (e2ee_plugin_get (), _("purple-e2ee"),
                           _("Encryption status"), NULL, html, NULL, NULL);
}

typedef struct {
  PurpleAccount *account;
  char *buddy;
} VerifyTarget;

static void
verify_free (VerifyTarget *v)
{
  g_free (v->buddy);
  g_free (v);
}

static void
verify_match_cb (gpointer data, int action)
{
  VerifyTarget *v = data;
  E2eeContext *ctx = e2ee_plugin_context ();
  E2eeAccountRecord *record = ctx != NULL ? e2ee_plugin_account (v->account) : NULL;
  g_autoptr (GError) error = NULL;
  guint n = 0;

  if (record != NULL)
    {
      if (e2ee_context_verify_all (ctx, record, v->buddy, &n, &error))
        {
          e2ee_ui_say (v->account, v->buddy, FALSE,
                       _("Marked %u device(s) of %s as verified."), n, v->buddy);
          e2ee_report_release (v->account, v->buddy);
        }
      else
        e2ee_ui_say (v->account, v->buddy, FALSE, _("No change: %s"), error->message);
    }
  verify_free (v);
  e2ee_dialogs_refresh_titles ();
}

static void
verify_cancel_cb (gpointer data, int action)
{
  verify_free (data);
}

void
e2ee_dialogs_verify (PurpleAccount *account, const char *buddy)
{
  E2eeAccountRecord *record = e2ee_plugin_account (account);
  E2eeBuddyRecord *br = record != NULL ? e2ee_account_lookup_buddy (record, buddy) : NULL;
  g_autofree char *own_fp = NULL;
  GString *text;
  VerifyTarget *v;
  guint n = 0;

  if (record == NULL || record->identity == NULL)
    return;
  own_fp = e2ee_fingerprint_hex (record->identity);
  text = g_string_new (NULL);
  g_string_append_printf (text, _("Your fingerprint: %s\n"), own_fp);
  for (guint i = 0; br != NULL && i < br->devices->len; i++)
    {
      E2eeDeviceRecord *dev = g_ptr_array_index (br->devices, i);
      g_autofree char *fp = NULL, *sn = NULL;

      if (dev->trust != E2EE_TRUST_TOFU)
        continue;
      fp = e2ee_fingerprint_hex (dev->key);
      sn = e2ee_safety_number (record->identity, dev->key);
      g_string_append_printf (text, _("\nDevice %.8s\n  fingerprint: %s\n"
                                      "  safety number: %s\n"),
                              e2ee_key_get_kid (dev->key), fp, sn);
      n++;
    }
  if (n == 0)
    {
      g_string_free (text, TRUE);
      purple_notify_info (e2ee_plugin_get (), _("purple-e2ee"),
                          _("Nothing to verify"),
                          _("No accepted, unverified device is known for this buddy."));
      return;
    }
  g_string_append (text, _("\nAsk your buddy to read out the safety number their "
                           "client shows for you.  Only if every digit matches, "
                           "choose \"They match\"."));
  v = g_new0 (VerifyTarget, 1);
  v->account = account;
  v->buddy = g_strdup (buddy);
  if (purple_request_action (e2ee_plugin_get (), _("purple-e2ee"),
                             _("Compare safety numbers"), text->str, 1, account, buddy,
                             e2ee_ui_find_conv (account, buddy, FALSE), v, 2,
                             _("They _match"), PURPLE_CALLBACK (verify_match_cb),
                             _("_Cancel"), PURPLE_CALLBACK (verify_cancel_cb)) == NULL)
    verify_free (v);
  g_string_free (text, TRUE);
}

static void
menu_verify (PurpleBlistNode *node, gpointer data)
{
  PurpleAccount *account;
  E2eeAccountRecord *record;
  g_autofree char *buddy = NULL;

  if (menu_target (node, &account, &buddy, &record))
    e2ee_dialogs_verify (account, buddy);
}

static void
menu_policy (PurpleBlistNode *node, gpointer data)
{
  PurpleAccount *account;
  E2eeAccountRecord *record;
  g_autofree char *buddy = NULL;
  E2eePolicy policy = GPOINTER_TO_INT (data);

  if (!menu_target (node, &account, &buddy, &record))
    return;
  if (!e2ee_context_set_policy (e2ee_plugin_context (), record, buddy, policy))
    return;
  e2ee_ui_say (account, buddy, FALSE,
               policy == E2EE_POLICY_OFF ? _("Encryption is OFF for this buddy.")
               : policy == E2EE_POLICY_REQUIRED
                 ? _("Encryption is REQUIRED for this buddy.")
                 : _("Messages to this buddy are encrypted whenever their key is known."));
  e2ee_dialogs_refresh_titles ();
}

static void
extended_menu_cb (PurpleBlistNode *node, GList **menu, gpointer data)
{
  GList *sub = NULL;

  if (!PURPLE_BLIST_NODE_IS_BUDDY (node) || e2ee_plugin_context () == NULL)
    return;
  sub = g_list_append (sub, purple_menu_action_new (_("Encryption status"),
                                                    PURPLE_CALLBACK (menu_status),
                                                    NULL, NULL));
  sub = g_list_append (sub, purple_menu_action_new (_("Verify safety numbers"),
                                                    PURPLE_CALLBACK (menu_verify),
                                                    NULL, NULL));
  sub = g_list_append (sub, purple_menu_action_new (
                         _("Encrypt when possible"), PURPLE_CALLBACK (menu_policy),
                         GINT_TO_POINTER (E2EE_POLICY_OPPORTUNISTIC), NULL));
  sub = g_list_append (sub, purple_menu_action_new (
                         _("Require encryption"), PURPLE_CALLBACK (menu_policy),
                         GINT_TO_POINTER (E2EE_POLICY_REQUIRED), NULL));
  sub = g_list_append (sub, purple_menu_action_new (
                         _("Encryption off"), PURPLE_CALLBACK (menu_policy),
                         GINT_TO_POINTER (E2EE_POLICY_OFF), NULL));
  *menu = g_list_append (*menu, purple_menu_action_new (_("purple-e2ee"), NULL, NULL,
                                                        sub));
}

void
e2ee_dialogs_connect (PurplePlugin *plugin)
{
  purple_signal_connect (purple_blist_get_handle (), "blist-node-extended-menu",
                         plugin, PURPLE_CALLBACK (extended_menu_cb), NULL);
  purple_signal_connect (purple_conversations_get_handle (), "conversation-created",
                         plugin, PURPLE_CALLBACK (conv_created_cb), NULL);
}

void
e2ee_dialogs_reset (void)
{
  if (refresh_id != 0)
    purple_timeout_remove (refresh_id);
  refresh_id = 0;
  g_list_free_full (pending, (GDestroyNotify) pending_free);
  pending = NULL;
}
