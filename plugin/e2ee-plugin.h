/* purple-e2ee — what the plugin's files share.  Only plugin/ includes this.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#ifndef PURPLE_PLUGINS
#define PURPLE_PLUGINS
#endif

#include <glib.h>
#include <glib/gi18n-lib.h>

#include <account.h>
#include <blist.h>
#include <cmds.h>
#include <connection.h>
#include <conversation.h>
#include <debug.h>
#include <notify.h>
#include <plugin.h>
#include <pluginpref.h>
#include <prefs.h>
#include <request.h>
#include <server.h>
#include <signals.h>
#include <status.h>
#include <util.h>
#include <version.h>
#include <xmlnode.h>

#include "e2ee-session.h"

G_BEGIN_DECLS

#define E2EE_PLUGIN_ID "core-purple-e2ee"
#define E2EE_PREFS_ROOT "/plugins/core/" E2EE_PLUGIN_ID
#define E2EE_DEBUG_CAT "purple-e2ee"

/* IRC servers cut lines near 512 bytes minus the prefix; 400 leaves room
 * for long nicks and hostnames. */
#define E2EE_IRC_BUDGET 400

/* Priority on the message signals: below the default 0 so that on sending
 * we encrypt before other message-transforming plugins, and on receiving
 * we see the wire text before them. */
#define E2EE_SIGNAL_PRIORITY (-100)

/* ---- e2ee-plugin.c: the plugin's state ---- */
PurplePlugin *e2ee_plugin_get (void);
/* The session, or NULL while the keyring is locked or unreadable. */
E2eeContext *e2ee_plugin_context (void);
/* Why the plugin is inactive (translated), or NULL when active. */
const char *e2ee_plugin_inactive_reason (void);
/* TRUE while inactive only because the keyring passphrase was not given. */
gboolean e2ee_plugin_is_locked (void);
/* The keyring record of @account (creating its identity key if needed and
 * saving at once in that case).  NULL while inactive or on failure. */
E2eeAccountRecord *e2ee_plugin_account (PurpleAccount *account);
/* A new string: @who as the protocol normalises it (bare JID, lower-cased nick). */
char *e2ee_plugin_normalize (PurpleAccount *account, const char *who);
/* TRUE if @buddy (normalised) is on the buddy list or the user wrote to
 * them: only then is a key they offer pinned. */
gboolean e2ee_plugin_is_contact (PurpleAccount *account, const char *buddy);
/* The user wrote to @buddy (or ran /e2ee with them): a key set they
 * offered before is pinned now. */
void e2ee_plugin_add_contact (PurpleAccount *account, const char *buddy);
/* Saves the keyring now (cancelling any pending delayed save). */
void e2ee_plugin_save_now (void);
/* Asks for the keyring passphrase (plugin action and load). */
void e2ee_plugin_request_unlock (void);

/* ---- e2ee-messages.c: send / receive / display hooks ---- */
void e2ee_messages_connect (PurplePlugin *plugin);
void e2ee_messages_reset (void);
/* TRUE if @buddy has at least one device we could encrypt to or decide on. */
gboolean e2ee_messages_buddy_has_key (E2eeAccountRecord *record, const char *buddy);
/* Handles @armored from @who again, as if it just arrived, and shows it. */
void e2ee_messages_replay (PurpleAccount *account, const char *who, const char *armored);
/* TRUE when the effective policy for @buddy (normalised) is OFF. */
gboolean e2ee_messages_policy_is_off (PurpleAccount *account, const char *buddy);

/* ---- e2ee-publish.c: publishing our keys, learning theirs ---- */
void e2ee_publish_connect (PurplePlugin *plugin);
void e2ee_publish_account (PurpleAccount *account);
void e2ee_publish_all (void);
void e2ee_publish_withdraw_all (void);
/* TRUE for protocols where keys travel in-band (no profile or status). */
gboolean e2ee_publish_uses_inband (PurpleAccount *account);
void e2ee_publish_reset (void);

/* ---- e2ee-inband.c: in-band key offers, reconnects, nick changes ---- */
void e2ee_inband_connect (PurplePlugin *plugin);
void e2ee_inband_reset (void);
/* Sends our key offer to @who once per session (a new round when @force),
 * re-sent with backoff until @who answers. */
void e2ee_inband_send_offer (PurpleAccount *account, const char *who, gboolean force);
/* @who answered or offered: stop re-sending. */
void e2ee_inband_answered (PurpleAccount *account, const char *who);
/* Seconds since this round of offers to @who began, or -1 (none, or answered). */
gint64 e2ee_inband_offer_age (PurpleAccount *account, const char *who);

/* ---- e2ee-enforce.c: the last check on the raw IRC line / XMPP stanza ---- */
void e2ee_enforce_connect (PurplePlugin *plugin);
/* TRUE when nothing but our armor may go to @who: the keyring is closed,
 * encryption is required, or the buddy has had a key (and is not OFF). */
gboolean e2ee_enforce_armor_only (PurpleAccount *account, const char *who);

/* ---- e2ee-hold.c: first messages wait for an in-band key answer ---- */
void e2ee_hold_reset (void);
gboolean e2ee_hold_should (PurpleAccount *account, const char *receiver);
/* Takes *@message (sets it to NULL). */
void e2ee_hold_message (PurpleAccount *account, const char *receiver, const char *buddy,
                        char **message);
/* The answer came: what waited is sent through the normal path. */
void e2ee_hold_release_for (PurpleAccount *account, const char *who);
/* TRUE while re-sending messages whose wait ran out with no answer. */
gboolean e2ee_hold_timed_out (void);

/* ---- e2ee-report.c: held back, released and rejected messages ---- */
void e2ee_report_reset (void);
void e2ee_report_withheld (PurpleAccount *account, const char *buddy, const char *kid);
void e2ee_report_rejected (PurpleAccount *account, const char *buddy, const char *kid);
/* Shows, marked, what was held back from @buddy's devices now accepted. */
void e2ee_report_release (PurpleAccount *account, const char *buddy);
/* An envelope from someone who is not a contact: kept (bounded) unread. */
void e2ee_report_from_stranger (PurpleAccount *account, const char *who,
                                const char *buddy, const char *armored);
/* @buddy became a contact: what they sent is read now. */
void e2ee_report_stranger_promoted (PurpleAccount *account, const char *buddy);

/* ---- e2ee-commands.c ---- */
void e2ee_commands_register (PurplePlugin *plugin);
void e2ee_commands_unregister (void);

/* ---- e2ee-prefs.c ---- */
void e2ee_prefs_init (void);
void e2ee_prefs_connect (PurplePlugin *plugin);
PurplePluginPrefFrame *e2ee_prefs_frame (PurplePlugin *plugin);
E2eePolicy e2ee_prefs_get_policy (void);
/* FALSE when the user asked not to log encrypted conversations. */
gboolean e2ee_prefs_log_encrypted (void);
gsize e2ee_prefs_get_pad_block (void);
const char *e2ee_prefs_get_marker (void);

/* ---- e2ee-ui.c: what the user sees, the same in every libpurple UI ---- */
typedef enum {
  E2EE_MARK_NONE = 0,
  E2EE_MARK_VERIFIED,
  E2EE_MARK_UNVERIFIED,
  E2EE_MARK_PLAINTEXT,
} E2eeMark;

/* The conversation with @who (created when @create). */
PurpleConversation *e2ee_ui_find_conv (PurpleAccount *account, const char *who,
                                       gboolean create);
/* Writes @text (plain, escaped here) as a system line that is not logged. */
void e2ee_ui_system (PurpleConversation *conv, const char *text);
void e2ee_ui_say (PurpleAccount *account, const char *who, gboolean create,
                  const char *format, ...) G_GNUC_PRINTF (4, 5);
/* The prefix shown before a message (escaped markup), "" for NONE. */
char *e2ee_ui_mark_prefix (E2eeMark mark);
E2eeMark e2ee_ui_mark_for_trust (E2eeTrust trust);
/* Replaces *@message by @stripped (unencrypted text, markup removed) shown
 * escaped, every line flagged, lock signs replaced. */
void e2ee_ui_flag_plaintext (char **message, const char *stripped);
/* The mark an outgoing encrypted message gets: verified only if every
 * device it goes to is. */
E2eeMark e2ee_ui_mark_for_buddy (E2eeAccountRecord *record, const char *buddy);

void e2ee_ui_report_learned (PurpleAccount *account, const char *who,
                             E2eeLearnResult result, GPtrArray *new_devices);
void e2ee_ui_report_blocked (PurpleAccount *account, const char *who,
                             const GError *error);
/* A buddy who has had a key, none of whose devices may receive now. */
void e2ee_ui_report_no_usable_device (PurpleAccount *account, const char *who);
void e2ee_ui_report_receive_error (PurpleAccount *account, const char *who,
                                   const GError *error);
/* Multi-line descriptions (plain text, new strings). */
char *e2ee_ui_describe_buddy (E2eeAccountRecord *record, const char *buddy);
char *e2ee_ui_describe_own (E2eeAccountRecord *record);
/* Our key and the account's other devices with their states. */
char *e2ee_ui_describe_own_devices (E2eeAccountRecord *record);
/* Loud: a device not seen before claims to be one of ours. */
void e2ee_ui_report_own_device (PurpleAccount *account, E2eeKey *key);
char *e2ee_ui_describe_keyring (E2eeContext *ctx);

void e2ee_ui_action_fingerprints (PurplePluginAction *action);
void e2ee_ui_action_known_keys (PurplePluginAction *action);

/* ---- e2ee-dialogs.c: decisions as request dialogs, buddy menu, title ---- */
void e2ee_dialogs_connect (PurplePlugin *plugin);
void e2ee_dialogs_reset (void);
/* A key change or new device (own or a buddy's) was learned: one dialog
 * per buddy at a time (accept / reject / decide later), a few in all. */
void e2ee_dialogs_report_learned (PurpleAccount *account, const char *who,
                                  E2eeLearnResult result, GPtrArray *new_devices);
/* Soon: closes dialogs of devices decided meanwhile, updates the titles of
 * open conversations with their encryption state. */
void e2ee_dialogs_refresh_titles (void);
/* Shows @buddy's safety numbers; "They match" marks them verified. */
void e2ee_dialogs_verify (PurpleAccount *account, const char *buddy);

/* ---- e2ee-xmpp.c: keys in PEP (XEP-0163), read before first messages ---- */
/* Our PEP node (and the namespace of its payload). */
#define E2EE_XMPP_NODE "urn:purple-e2ee:keys:0"
void e2ee_xmpp_connect (PurplePlugin *plugin);
void e2ee_xmpp_reset (void);
/* Publishes our key set in PEP once per connection (and reads our own
 * node for the account's other installations). */
void e2ee_xmpp_publish (PurpleAccount *account);
/* Before a message to @receiver whose key is unknown: TRUE when a read of
 * their PEP node is under way (started now if not asked lately); the
 * message then waits (e2ee_hold_message) until the answer or a timeout
 * releases it (e2ee_hold_release_for). */
gboolean e2ee_xmpp_fetch_before_send (PurpleAccount *account, const char *receiver);
/* An envelope from @sender, whose key is unknown: TRUE when it was kept
 * (bounded) to be read again (e2ee_messages_replay) after a read of their
 * PEP node, FALSE when that node was read lately or cannot be. */
gboolean e2ee_xmpp_fetch_and_retry (PurpleAccount *account, const char *sender,
                                    const char *armored);
/* Whether the status tag / the vCard block are still wanted: the user
 * asked for them, or PEP publishing failed on this connection. */
gboolean e2ee_xmpp_wants_status_tag (PurpleAccount *account);
gboolean e2ee_xmpp_wants_profile_block (PurpleAccount *account);

#define E2EE_NS_PUBSUB "http://jabber.org/protocol/pubsub"
#define E2EE_NS_PUBSUB_EVENT "http://jabber.org/protocol/pubsub#event"
#define E2EE_NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define E2EE_NS_DATA "jabber:x:data"
#define E2EE_PREF_XMPP_STATUS_TAG E2EE_PREFS_ROOT "/xmpp_status_tag"
#define E2EE_PREF_XMPP_PROFILE E2EE_PREFS_ROOT "/xmpp_profile_block"
#define E2EE_PREF_XMPP_NOTIFY E2EE_PREFS_ROOT "/xmpp_pep_notify"

/* ---- e2ee-xmpp-items.c: the stanzas of our node ---- */
/* <keys xmlns=E2EE_XMPP_NODE>compact key set</keys> */
xmlnode *e2ee_xmpp_keys_payload (GPtrArray *keys);
/* A data form field with one value (@type nullable). */
void e2ee_xmpp_add_field (xmlnode *x, const char *var, const char *type, const char *value);
/* The union (bounded) of the key sets of the <item>s of @items; malformed
 * items are skipped.  (new array of E2eeKey, maybe empty) */
GPtrArray *e2ee_xmpp_parse_items (xmlnode *items);
/* The key set of our block in the DESC of a vCard result, or NULL. */
GPtrArray *e2ee_xmpp_parse_vcard (xmlnode *iq);
/* Learns @keys published by @buddy like any offer (contact flag, own
 * account's devices, key changes) and tells the user. */
void e2ee_xmpp_learn (PurpleAccount *account, const char *buddy, GPtrArray *keys);
/* jabber-sending-xmlnode: lists E2EE_XMPP_NODE+notify in our disco#info. */
void e2ee_xmpp_notify_cb (PurpleConnection *gc, xmlnode **packet, gpointer data);

/* ---- e2ee-xmpp-fallback.c: encrypted messages as other clients see them ---- */
/* Namespace of our element holding the envelope (and of XEP-0380's tag). */
#define E2EE_XMPP_MSG_NS "urn:purple-e2ee:msg:0"
void e2ee_xmpp_fallback_connect (PurplePlugin *plugin);
/* The readable <body> sent beside the envelope. */
const char *e2ee_xmpp_fallback_text (void);
/* TRUE if @msg is exactly our form: the envelope in our element, our
 * sentence as the only body, no XHTML-IM or subject. */
gboolean e2ee_xmpp_is_wrapped (xmlnode *msg);
/* An incoming message with our element: its body becomes the envelope. */
void e2ee_xmpp_unwrap (xmlnode *msg);
/* Sends @node on @gc's raw path (no message signals). */
gboolean e2ee_xmpp_send_node (PurpleConnection *gc, xmlnode *node);

/* ---- e2ee-xmpp-carbons.c: Message Carbons (XEP-0280) ---- */
void e2ee_xmpp_carbons_enable (PurpleAccount *account);
/* jabber-receiving-xmlnode on a <message>: FALSE if it is no carbon copy;
 * else TRUE with *@packet replaced by the copied message (a buddy's
 * message to another of our resources) or freed and NULL (our own sent
 * copy, shown as ours; a forged copy, dropped). */
gboolean e2ee_xmpp_carbons_handle (PurpleConnection *gc, xmlnode **packet);

G_END_DECLS
