/* purple-e2ee — plugin preferences, rendered by every UI from a pref frame.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include "e2ee-plugin.h"

#define PREF_POLICY E2EE_PREFS_ROOT "/policy"
#define PREF_LOG E2EE_PREFS_ROOT "/log_encrypted"
#define PREF_MARKER E2EE_PREFS_ROOT "/marker"
#define PREF_PAD E2EE_PREFS_ROOT "/pad_messages"

/* Padding block: short messages all look 64 bytes long (plus 0..3 random
 * blocks), at a cost of about 90 bytes more on the wire. */
#define PAD_BLOCK 64

#define DEFAULT_MARKER "\xF0\x9F\x94\x92"   /* U+1F512 LOCK */

void
e2ee_prefs_init (void)
{
  purple_prefs_add_none ("/plugins");
  purple_prefs_add_none ("/plugins/core");
  purple_prefs_add_none (E2EE_PREFS_ROOT);
  purple_prefs_add_string (PREF_POLICY, "opportunistic");
  purple_prefs_add_bool (PREF_LOG, TRUE);
  purple_prefs_add_string (PREF_MARKER, DEFAULT_MARKER);
  purple_prefs_add_bool (PREF_PAD, FALSE);
}

gsize
e2ee_prefs_get_pad_block (void)
{
  return purple_prefs_get_bool (PREF_PAD) ? PAD_BLOCK : 0;
}

E2eePolicy
e2ee_prefs_get_policy (void)
{
  const char *text = purple_prefs_get_string (PREF_POLICY);

  if (g_strcmp0 (text, "required") == 0)
    return E2EE_POLICY_REQUIRED;
  if (g_strcmp0 (text, "off") == 0)
    return E2EE_POLICY_OFF;
  return E2EE_POLICY_OPPORTUNISTIC;
}

gboolean
e2ee_prefs_log_encrypted (void)
{
  return purple_prefs_get_bool (PREF_LOG);
}

const char *
e2ee_prefs_get_marker (void)
{
  const char *marker = purple_prefs_get_string (PREF_MARKER);

  /* An empty marker would make encrypted and plain messages look alike. */
  if (marker == NULL || *marker == '\0')
    return DEFAULT_MARKER;
  return marker;
}

static void
policy_changed_cb (const char *name, PurplePrefType type, gconstpointer value,
                   gpointer data)
{
  E2eeContext *ctx = e2ee_plugin_context ();

  if (ctx != NULL)
    e2ee_context_set_default_policy (ctx, e2ee_prefs_get_policy ());
}

static void
pad_changed_cb (const char *name, PurplePrefType type, gconstpointer value,
                gpointer data)
{
  E2eeContext *ctx = e2ee_plugin_context ();

  if (ctx != NULL)
    e2ee_context_set_padding (ctx, e2ee_prefs_get_pad_block ());
}

void
e2ee_prefs_connect (PurplePlugin *plugin)
{
  purple_prefs_connect_callback (plugin, PREF_POLICY, policy_changed_cb, NULL);
  purple_prefs_connect_callback (plugin, PREF_PAD, pad_changed_cb, NULL);
}

PurplePluginPrefFrame *
e2ee_prefs_frame (PurplePlugin *plugin)
{
  PurplePluginPrefFrame *frame = purple_plugin_pref_frame_new ();
  PurplePluginPref *pref;

  pref = purple_plugin_pref_new_with_label (_("Encryption"));
  purple_plugin_pref_frame_add (frame, pref);

  pref = purple_plugin_pref_new_with_name_and_label (PREF_POLICY,
                                                     _("Default policy for buddies"));
  purple_plugin_pref_set_type (pref, PURPLE_PLUGIN_PREF_CHOICE);
  purple_plugin_pref_add_choice (pref, _("Encrypt when a key is known (opportunistic)"),
                                 (gpointer) "opportunistic");
  purple_plugin_pref_add_choice (pref, _("Always require encryption"),
                                 (gpointer) "required");
  purple_plugin_pref_add_choice (pref, _("Do not encrypt"), (gpointer) "off");
  purple_plugin_pref_frame_add (frame, pref);

  pref = purple_plugin_pref_new_with_name_and_label (PREF_LOG,
      _("Log encrypted conversations (when logging is enabled)"));
  purple_plugin_pref_frame_add (frame, pref);

  pref = purple_plugin_pref_new_with_name_and_label (PREF_PAD,
      _("Pad messages to hide their exact length (about 90 bytes more each)"));
  purple_plugin_pref_frame_add (frame, pref);

  pref = purple_plugin_pref_new_with_name_and_label (PREF_MARKER,
      _("Marker shown on encrypted messages"));
  purple_plugin_pref_set_max_length (pref, 16);
  purple_plugin_pref_frame_add (frame, pref);

  return frame;
}
