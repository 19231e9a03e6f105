/* purple-e2ee — where keys travel in-band, the first messages to a buddy
 * whose key is not known yet wait for the answer to our offer, so that a
 * buddy with the plugin never gets them in plaintext.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include "e2ee-plugin.h"
#include "e2ee-wipe.h"

/* Long enough for a server's flood control (ngIRCd delays a new client's
 * lines by a second or more each) to let the offer and the answer through. */
#define HOLD_SECONDS 20
/* Typed messages kept per buddy while waiting; more are refused. */
#define HOLD_MAX 32

typedef struct {
  PurpleAccount *account;
  char *receiver;
  GQueue *texts;                /* secret strings, in typing order */
  guint timer;
} Held;

static GHashTable *held;        /* "protocol\naccount\nbuddy" -> Held* */
static gboolean releasing;      /* re-sending held messages: never hold again */
static gboolean timed_out;      /* ... because no answer came in time */

static char *
held_key (PurpleAccount *account, const char *who)
{
  g_autofree char *buddy = e2ee_plugin_normalize (account, who);

  return g_strdup_printf ("%s\n%s\n%s", purple_account_get_protocol_id (account),
                          purple_account_get_username (account), buddy);
}

static void
held_free (gpointer data)
{
  Held *h = data;
  char *text;

  if (h->timer != 0)
    purple_timeout_remove (h->timer);
  while ((text = g_queue_pop_head (h->texts)) != NULL)
    e2ee_string_free (text);
  g_queue_free (h->texts);
  g_free (h->receiver);
  g_free (h);
}

void
e2ee_hold_reset (void)
{
  g_clear_pointer (&held, g_hash_table_destroy);
  releasing = FALSE;
  timed_out = FALSE;
}

gboolean
e2ee_hold_timed_out (void)
{
  return releasing && timed_out;
}

/* Sends what waited through the normal path again: it is encrypted now if
 * the key arrived, else sent or refused as the policy says. */
static void
release (const char *key, gboolean after_timeout)
{
  gpointer stolen_key = NULL, value = NULL;
  PurpleConversation *conv;
  Held *h;
  char *text;

  if (held == NULL || !g_hash_table_steal_extended (held, key, &stolen_key, &value))
    return;
  g_free (stolen_key);
  h = value;
  if (purple_account_is_connected (h->account))
    {
      conv = e2ee_ui_find_conv (h->account, h->receiver, TRUE);
      releasing = TRUE;
      timed_out = after_timeout;
      while ((text = g_queue_pop_head (h->texts)) != NULL)
        {
          purple_conv_im_send (PURPLE_CONV_IM (conv), text);
          e2ee_string_free (text);
        }
      releasing = FALSE;
      timed_out = FALSE;
    }
  else
    e2ee_ui_say (h->account, h->receiver, FALSE,
                 _("The connection closed while your message(s) waited for the "
                   "encryption key: they were NOT sent."));
  held_free (h);
}

void
e2ee_hold_release_for (PurpleAccount *account, const char *who)
{
  g_autofree char *key = held_key (account, who);

  release (key, FALSE);
}

static gboolean
timeout_cb (gpointer data)
{
  char *key = data;
  Held *h = held != NULL ? g_hash_table_lookup (held, key) : NULL;

  if (h != NULL)
    {
      h->timer = 0;
      release (key, TRUE);
    }
  return FALSE;
}

gboolean
e2ee_hold_should (PurpleAccount *account, const char *receiver)
{
  g_autofree char *key = NULL;
  gint64 age;

  if (releasing)
    return FALSE;
  key = held_key (account, receiver);
  if (held != NULL && g_hash_table_contains (held, key))
    return TRUE;   /* keep the order of what is already waiting */
  age = e2ee_inband_offer_age (account, receiver);
  return age >= 0 && age < HOLD_SECONDS;
}

void
e2ee_hold_message (PurpleAccount *account, const char *receiver, const char *buddy,
                   char **message)
{
  char *key = held_key (account, receiver);
  Held *h;

  if (held == NULL)
    held = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, held_free);
  h = g_hash_table_lookup (held, key);
  if (h == NULL)
    {
      h = g_new0 (Held, 1);
      h->account = account;
      h->receiver = g_strdup (receiver);
      h->texts = g_queue_new ();
      h->timer = purple_timeout_add_seconds (HOLD_SECONDS, timeout_cb, key);
      g_hash_table_insert (held, key, h);
      e2ee_ui_say (account, buddy, TRUE,
                   _("Asked %s for their encryption key.  Your message waits up to "
                     "%d seconds for the answer: it is sent encrypted if they answer "
                     "in time, otherwise it is sent UNENCRYPTED (you will be told; "
                     "/e2ee require prevents that)."),
                   buddy, HOLD_SECONDS);
    }
  else
    g_free (key);
  if (g_queue_get_length (h->texts) >= HOLD_MAX)
    {
      e2ee_string_free (*message);
      *message = NULL;
      e2ee_ui_say (account, buddy, TRUE,
                   _("Message NOT sent: too many messages are already waiting for "
                     "%s's encryption key."), buddy);
      return;
    }
  /* The queue takes the typed text itself; the send goes no further. */
  g_queue_push_tail (h->texts, *message);
  *message = NULL;
}
