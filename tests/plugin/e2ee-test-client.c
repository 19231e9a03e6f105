/* e2ee-test-client: a headless libpurple 2.x client driven over stdin/stdout.
 *
 * It behaves like a minimal real UI (conversations, requests, notifications,
 * buddy list) so plugins see the same signal paths as in Pidgin or Finch.
 * Commands are read one per line on stdin, either as plain text
 * ("send bob@localhost hello") or as a JSON object ({"cmd":"send",...}).
 * Every event is written to stdout as one JSON object per line.
 *
 * Copyright (C) the purple-e2ee authors.  GPL-2.0-or-later.
 */

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <glib-unix.h>
#include <json-glib/json-glib.h>

#include <purple.h>

#define UI_ID "e2ee-test"

/* ------------------------------------------------------------------ */
/* Options and global state                                            */
/* ------------------------------------------------------------------ */

static gchar *opt_user_dir;
static gchar *opt_plugin_dir;
static gchar **opt_plugins;
static gchar *opt_protocol;
static gchar *opt_username;
static gchar *opt_password;
static gchar *opt_server;
static gint opt_port;
static gchar *opt_alias;
static gchar *opt_passphrase;
static gchar *opt_debug_log;
static gboolean opt_no_connect;
static gchar *opt_prepare_ui;
static gchar **opt_extra_accounts;  /* more accounts of the same protocol */
static gboolean opt_otr_init;       /* call libotr's otrl_init first */

static GMainLoop *main_loop;
static PurpleAccount *the_account;
static FILE *debug_file;
static gint exit_status;
static int signal_handle;       /* address used as the signal handle */

/* Scripted answers for request dialogs.  action_answer: -1 = default
 * action, -2 = cancel, >= 0 = that action index. */
static gint action_answer = -1;
static gchar *input_answer;     /* NULL: passphrase or default value */
static gboolean input_cancel;

/* ------------------------------------------------------------------ */
/* JSON event output                                                   */
/* ------------------------------------------------------------------ */

/* libpurple strings should be UTF-8, but wire text may not be; JSON
 * output must stay valid whatever arrives. */
static gchar *
utf8_safe (const char *s)
{
  if (s == NULL)
    return NULL;
  if (g_utf8_validate (s, -1, NULL))
    return g_strdup (s);
  return g_utf8_make_valid (s, -1);
}

static void
builder_add_str (JsonBuilder *b, const char *key, const char *value)
{
  json_builder_set_member_name (b, key);
  if (value == NULL)
    json_builder_add_null_value (b);
  else
    {
      g_autofree gchar *safe = utf8_safe (value);
      json_builder_add_string_value (b, safe);
    }
}

static void
builder_add_int (JsonBuilder *b, const char *key, gint64 value)
{
  json_builder_set_member_name (b, key);
  json_builder_add_int_value (b, value);
}

static void
builder_add_bool (JsonBuilder *b, const char *key, gboolean value)
{
  json_builder_set_member_name (b, key);
  json_builder_add_boolean_value (b, value);
}

static JsonBuilder *
event_begin (const char *name)
{
  JsonBuilder *b = json_builder_new ();

  json_builder_begin_object (b);
  builder_add_str (b, "event", name);
  return b;
}

static void
event_end (JsonBuilder *b)
{
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;
  g_autofree gchar *text = NULL;

  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  text = json_generator_to_data (gen, NULL);
  fputs (text, stdout);
  fputc ('\n', stdout);
  fflush (stdout);
  g_object_unref (b);
}

static void
emit_simple (const char *name, const char *key, const char *value)
{
  JsonBuilder *b = event_begin (name);

  if (key != NULL)
    builder_add_str (b, key, value);
  event_end (b);
}

static void
emit_error (const char *source, const char *message)
{
  JsonBuilder *b = event_begin ("error");

  builder_add_str (b, "source", source);
  builder_add_str (b, "message", message);
  event_end (b);
}

static const struct
{
  PurpleMessageFlags flag;
  const char *name;
} message_flag_names[] = {
  { PURPLE_MESSAGE_SEND, "SEND" },
  { PURPLE_MESSAGE_RECV, "RECV" },
  { PURPLE_MESSAGE_SYSTEM, "SYSTEM" },
  { PURPLE_MESSAGE_AUTO_RESP, "AUTO_RESP" },
  { PURPLE_MESSAGE_ACTIVE_ONLY, "ACTIVE_ONLY" },
  { PURPLE_MESSAGE_NICK, "NICK" },
  { PURPLE_MESSAGE_NO_LOG, "NO_LOG" },
  { PURPLE_MESSAGE_WHISPER, "WHISPER" },
  { PURPLE_MESSAGE_ERROR, "ERROR" },
  { PURPLE_MESSAGE_DELAYED, "DELAYED" },
  { PURPLE_MESSAGE_RAW, "RAW" },
  { PURPLE_MESSAGE_IMAGES, "IMAGES" },
  { PURPLE_MESSAGE_NOTIFY, "NOTIFY" },
  { PURPLE_MESSAGE_NO_LINKIFY, "NO_LINKIFY" },
  { PURPLE_MESSAGE_INVISIBLE, "INVISIBLE" },
  { PURPLE_MESSAGE_REMOTE_SEND, "REMOTE_SEND" },
};

static void
builder_add_flags (JsonBuilder *b, PurpleMessageFlags flags)
{
  gsize i;

  json_builder_set_member_name (b, "flags");
  json_builder_begin_array (b);
  for (i = 0; i < G_N_ELEMENTS (message_flag_names); i++)
    if (flags & message_flag_names[i].flag)
      json_builder_add_string_value (b, message_flag_names[i].name);
  json_builder_end_array (b);
}

/* ------------------------------------------------------------------ */
/* Debug output to a file                                              */
/* ------------------------------------------------------------------ */

static const char *
debug_level_name (PurpleDebugLevel level)
{
  switch (level)
    {
    case PURPLE_DEBUG_MISC: return "misc";
    case PURPLE_DEBUG_INFO: return "info";
    case PURPLE_DEBUG_WARNING: return "warning";
    case PURPLE_DEBUG_ERROR: return "error";
    case PURPLE_DEBUG_FATAL: return "fatal";
    default: return "all";
    }
}

static void
debug_print (PurpleDebugLevel level, const char *category, const char *arg_s)
{
  gint64 now = g_get_real_time ();

  if (debug_file == NULL)
    return;
  fprintf (debug_file, "%02d:%02d:%02d.%06d %s %s: %s",
           (int) ((now / G_USEC_PER_SEC / 3600) % 24),
           (int) ((now / G_USEC_PER_SEC / 60) % 60),
           (int) ((now / G_USEC_PER_SEC) % 60), (int) (now % G_USEC_PER_SEC),
           debug_level_name (level),
           category != NULL ? category : "-", arg_s);
  if (*arg_s == '\0' || arg_s[strlen (arg_s) - 1] != '\n')
    fputc ('\n', debug_file);
  fflush (debug_file);
}

static gboolean
debug_is_enabled (PurpleDebugLevel level, const char *category)
{
  return debug_file != NULL;
}

static PurpleDebugUiOps debug_ops = {
  .print = debug_print,
  .is_enabled = debug_is_enabled,
};

/* GLib warnings and criticals (from libpurple or a plugin) are reported
 * as events so a test can fail on them, and kept in the debug log. */
static void
glib_log_handler (const gchar *domain, GLogLevelFlags level,
                  const gchar *message, gpointer data)
{
  const char *lname = "debug";
  JsonBuilder *b;

  if (level & G_LOG_LEVEL_ERROR)
    lname = "error";
  else if (level & G_LOG_LEVEL_CRITICAL)
    lname = "critical";
  else if (level & G_LOG_LEVEL_WARNING)
    lname = "warning";
  else if (level & G_LOG_LEVEL_MESSAGE)
    lname = "message";
  else if (level & G_LOG_LEVEL_INFO)
    lname = "info";

  if (debug_file != NULL)
    {
      fprintf (debug_file, "glib-%s %s: %s\n", lname,
               domain != NULL ? domain : "-", message);
      fflush (debug_file);
    }
  if (level & (G_LOG_LEVEL_DEBUG | G_LOG_LEVEL_INFO))
    return;
  b = event_begin ("log");
  builder_add_str (b, "domain", domain);
  builder_add_str (b, "level", lname);
  builder_add_str (b, "message", message);
  event_end (b);
}

/* ------------------------------------------------------------------ */
/* Event loop (GLib)                                                   */
/* ------------------------------------------------------------------ */

#define READ_COND (G_IO_IN | G_IO_HUP | G_IO_ERR)
#define WRITE_COND (G_IO_OUT | G_IO_HUP | G_IO_ERR | G_IO_NVAL)

typedef struct
{
  PurpleInputFunction func;
  gpointer data;
} IoClosure;

static gboolean
io_invoke (GIOChannel *source, GIOCondition cond, gpointer data)
{
  IoClosure *c = data;
  int pcond = 0;

  if (cond & READ_COND)
    pcond |= PURPLE_INPUT_READ;
  if (cond & WRITE_COND)
    pcond |= PURPLE_INPUT_WRITE;
  c->func (c->data, g_io_channel_unix_get_fd (source), pcond);
  return TRUE;
}

static guint
loop_input_add (gint fd, PurpleInputCondition cond, PurpleInputFunction func,
                gpointer data)
{
  IoClosure *c = g_new0 (IoClosure, 1);
  GIOChannel *channel;
  GIOCondition gcond = 0;
  guint id;

  c->func = func;
  c->data = data;
  if (cond & PURPLE_INPUT_READ)
    gcond |= READ_COND;
  if (cond & PURPLE_INPUT_WRITE)
    gcond |= WRITE_COND;
  channel = g_io_channel_unix_new (fd);
  id = g_io_add_watch_full (channel, G_PRIORITY_DEFAULT, gcond, io_invoke,
                            c, g_free);
  g_io_channel_unref (channel);
  return id;
}

static PurpleEventLoopUiOps loop_ops = {
  .timeout_add = g_timeout_add,
  .timeout_remove = g_source_remove,
  .input_add = loop_input_add,
  .input_remove = g_source_remove,
  .input_get_error = NULL,
  .timeout_add_seconds = g_timeout_add_seconds,
};

/* ------------------------------------------------------------------ */
/* Conversations                                                       */
/* ------------------------------------------------------------------ */

static void
conv_write (PurpleConversation *conv, const char *who, const char *alias,
            const char *message, PurpleMessageFlags flags, time_t mtime)
{
  JsonBuilder *b = event_begin ("write");

  builder_add_str (b, "conv", purple_conversation_get_name (conv));
  builder_add_str (b, "account",
                   purple_account_get_username (purple_conversation_get_account (conv)));
  builder_add_str (b, "who", who);
  builder_add_str (b, "alias", alias);
  builder_add_str (b, "text", message);
  builder_add_flags (b, flags);
  builder_add_int (b, "time", (gint64) mtime);
  event_end (b);
}

static void
conv_create (PurpleConversation *conv)
{
  emit_simple ("conversation-created", "conv",
               purple_conversation_get_name (conv));
}

static void
conv_destroy (PurpleConversation *conv)
{
  emit_simple ("conversation-destroyed", "conv",
               purple_conversation_get_name (conv));
}

static PurpleConversationUiOps conv_ops = {
  .create_conversation = conv_create,
  .destroy_conversation = conv_destroy,
  .write_conv = conv_write,
};

/* ------------------------------------------------------------------ */
/* Notifications                                                       */
/* ------------------------------------------------------------------ */

static void *
notify_message (PurpleNotifyMsgType type, const char *title,
                const char *primary, const char *secondary)
{
  JsonBuilder *b = event_begin ("notify");
  const char *tname = type == PURPLE_NOTIFY_MSG_ERROR ? "error"
    : type == PURPLE_NOTIFY_MSG_WARNING ? "warning" : "info";

  builder_add_str (b, "type", tname);
  builder_add_str (b, "title", title);
  builder_add_str (b, "primary", primary);
  builder_add_str (b, "secondary", secondary);
  event_end (b);
  return NULL;
}

static void *
notify_formatted (const char *title, const char *primary,
                  const char *secondary, const char *text)
{
  JsonBuilder *b = event_begin ("notify");

  builder_add_str (b, "type", "formatted");
  builder_add_str (b, "title", title);
  builder_add_str (b, "primary", primary);
  builder_add_str (b, "secondary", secondary);
  builder_add_str (b, "text", text);
  event_end (b);
  return NULL;
}

static void *
notify_userinfo (PurpleConnection *gc, const char *who,
                 PurpleNotifyUserInfo *info)
{
  JsonBuilder *b = event_begin ("userinfo");
  g_autofree gchar *text = NULL;
  GList *l;

  builder_add_str (b, "who", who);
  json_builder_set_member_name (b, "entries");
  json_builder_begin_array (b);
  for (l = purple_notify_user_info_get_entries (info); l != NULL; l = l->next)
    {
      PurpleNotifyUserInfoEntry *e = l->data;
      PurpleNotifyUserInfoEntryType t = purple_notify_user_info_entry_get_type (e);

      json_builder_begin_object (b);
      builder_add_str (b, "label", purple_notify_user_info_entry_get_label (e));
      builder_add_str (b, "value", purple_notify_user_info_entry_get_value (e));
      builder_add_str (b, "type", t == PURPLE_NOTIFY_USER_INFO_ENTRY_PAIR ? "pair"
                       : t == PURPLE_NOTIFY_USER_INFO_ENTRY_SECTION_BREAK
                       ? "section-break" : "section-header");
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  text = purple_notify_user_info_get_text_with_newline (info, "\n");
  builder_add_str (b, "text", text);
  event_end (b);
  return NULL;
}

static void *
notify_uri (const char *uri)
{
  emit_simple ("notify-uri", "uri", uri);
  return NULL;
}

static void
notify_close (PurpleNotifyType type, void *ui_handle)
{
}

static PurpleNotifyUiOps notify_ops = {
  .notify_message = notify_message,
  .notify_formatted = notify_formatted,
  .notify_userinfo = notify_userinfo,
  .notify_uri = notify_uri,
  .close_notify = notify_close,
};

/* ------------------------------------------------------------------ */
/* Requests: answered automatically from the main loop                 */
/* ------------------------------------------------------------------ */

typedef struct
{
  PurpleRequestType type;
  guint idle_id;
  gboolean in_callback;
  gboolean closed;
  gboolean cancel;
  GCallback ok_cb;
  GCallback cancel_cb;
  void *user_data;
  /* per type */
  gchar *text;                  /* input */
  int value;                    /* choice value or action index */
  PurpleRequestFields *fields;
} AutoRequest;

static void
auto_request_free (AutoRequest *r)
{
  if (r->idle_id != 0)
    g_source_remove (r->idle_id);
  if (r->text != NULL)
    {
      memset (r->text, 0, strlen (r->text));
      g_free (r->text);
    }
  if (r->fields != NULL)
    purple_request_fields_destroy (r->fields);
  g_free (r);
}

static void
emit_request (const char *kind, const char *title, const char *primary,
              const char *secondary, const char *answer, GPtrArray *labels)
{
  JsonBuilder *b = event_begin ("request");
  guint i;

  builder_add_str (b, "kind", kind);
  builder_add_str (b, "title", title);
  builder_add_str (b, "primary", primary);
  builder_add_str (b, "secondary", secondary);
  builder_add_str (b, "answer", answer);
  if (labels != NULL)
    {
      json_builder_set_member_name (b, "choices");
      json_builder_begin_array (b);
      for (i = 0; i < labels->len; i++)
        {
          g_autofree gchar *safe = utf8_safe (g_ptr_array_index (labels, i));
          json_builder_add_string_value (b, safe != NULL ? safe : "");
        }
      json_builder_end_array (b);
    }
  event_end (b);
}

static gboolean
auto_request_answer (gpointer data)
{
  AutoRequest *r = data;

  r->idle_id = 0;
  r->in_callback = TRUE;
  switch (r->type)
    {
    case PURPLE_REQUEST_INPUT:
      if (r->cancel)
        {
          if (r->cancel_cb != NULL)
            ((PurpleRequestInputCb) r->cancel_cb) (r->user_data, r->text);
        }
      else if (r->ok_cb != NULL)
        ((PurpleRequestInputCb) r->ok_cb) (r->user_data, r->text);
      break;
    case PURPLE_REQUEST_CHOICE:
      if (r->cancel)
        {
          if (r->cancel_cb != NULL)
            ((PurpleRequestChoiceCb) r->cancel_cb) (r->user_data, r->value);
        }
      else if (r->ok_cb != NULL)
        ((PurpleRequestChoiceCb) r->ok_cb) (r->user_data, r->value);
      break;
    case PURPLE_REQUEST_ACTION:
      if (r->ok_cb != NULL)
        ((PurpleRequestActionCb) r->ok_cb) (r->user_data, r->value);
      break;
    case PURPLE_REQUEST_FIELDS:
      if (r->cancel)
        {
          if (r->cancel_cb != NULL)
            ((PurpleRequestFieldsCb) r->cancel_cb) (r->user_data, r->fields);
        }
      else if (r->ok_cb != NULL)
        ((PurpleRequestFieldsCb) r->ok_cb) (r->user_data, r->fields);
      break;
    default:
      if (r->cancel_cb != NULL)
        ((PurpleRequestFileCb) r->cancel_cb) (r->user_data, NULL);
      break;
    }
  r->in_callback = FALSE;
  if (r->closed)
    auto_request_free (r);
  else
    purple_request_close (r->type, r); /* calls request_close -> free */
  return G_SOURCE_REMOVE;
}

static AutoRequest *
auto_request_new (PurpleRequestType type, GCallback ok_cb,
                  GCallback cancel_cb, void *user_data)
{
  AutoRequest *r = g_new0 (AutoRequest, 1);

  r->type = type;
  r->ok_cb = ok_cb;
  r->cancel_cb = cancel_cb;
  r->user_data = user_data;
  r->idle_id = g_idle_add (auto_request_answer, r);
  return r;
}

static void *
request_input (const char *title, const char *primary, const char *secondary,
               const char *default_value, gboolean multiline, gboolean masked,
               gchar *hint, const char *ok_text, GCallback ok_cb,
               const char *cancel_text, GCallback cancel_cb,
               PurpleAccount *account, const char *who,
               PurpleConversation *conv, void *user_data)
{
  AutoRequest *r = auto_request_new (PURPLE_REQUEST_INPUT, ok_cb, cancel_cb,
                                     user_data);
  const char *answer = default_value != NULL ? default_value : "";

  if (input_answer != NULL)
    answer = input_answer;
  else if (opt_passphrase != NULL)
    answer = opt_passphrase;
  r->cancel = input_cancel;
  r->text = g_strdup (answer);
  /* never echo a secret answer */
  emit_request ("input", title, primary, secondary,
                r->cancel ? "cancel" : masked ? "(masked)" : answer, NULL);
  return r;
}

static void *
request_choice (const char *title, const char *primary, const char *secondary,
                int default_value, const char *ok_text, GCallback ok_cb,
                const char *cancel_text, GCallback cancel_cb,
                PurpleAccount *account, const char *who,
                PurpleConversation *conv, void *user_data, va_list choices)
{
  AutoRequest *r = auto_request_new (PURPLE_REQUEST_CHOICE, ok_cb, cancel_cb,
                                     user_data);
  g_autoptr (GPtrArray) labels = g_ptr_array_new_with_free_func (g_free);
  g_autofree gchar *answer = NULL;
  const char *label;

  while ((label = va_arg (choices, const char *)) != NULL)
    {
      int value = va_arg (choices, int);

      g_ptr_array_add (labels, g_strdup_printf ("%d:%s", value, label));
    }
  r->value = default_value;
  answer = g_strdup_printf ("%d", default_value);
  emit_request ("choice", title, primary, secondary, answer, labels);
  return r;
}

static void *
request_action (const char *title, const char *primary, const char *secondary,
                int default_action, PurpleAccount *account, const char *who,
                PurpleConversation *conv, void *user_data,
                size_t action_count, va_list actions)
{
  g_autoptr (GPtrArray) labels = g_ptr_array_new_with_free_func (g_free);
  GCallback *cbs = g_new0 (GCallback, action_count + 1);
  AutoRequest *r;
  g_autofree gchar *answer = NULL;
  int pick;
  size_t i;

  for (i = 0; i < action_count; i++)
    {
      const char *label = va_arg (actions, const char *);

      cbs[i] = va_arg (actions, GCallback);
      g_ptr_array_add (labels, g_strdup (label != NULL ? label : ""));
    }
  pick = action_answer >= 0 ? action_answer : default_action;
  if (pick < 0 || (size_t) pick >= action_count)
    pick = action_count > 0 ? 0 : -1;
  if (action_answer == -2)
    pick = -1;
  r = auto_request_new (PURPLE_REQUEST_ACTION,
                        pick >= 0 ? cbs[pick] : NULL, NULL, user_data);
  r->value = pick;
  g_free (cbs);
  answer = pick >= 0 ? g_strdup (g_ptr_array_index (labels, pick))
    : g_strdup ("cancel");
  emit_request ("action", title, primary, secondary, answer, labels);
  return r;
}

/* Masked, empty string fields get the passphrase (a password prompt);
 * everything else keeps its default. */
static void
fill_fields (PurpleRequestFields *fields, GPtrArray *labels)
{
  GList *g, *f;
  const char *secret = input_answer != NULL ? input_answer : opt_passphrase;

  for (g = purple_request_fields_get_groups (fields); g != NULL; g = g->next)
    for (f = purple_request_field_group_get_fields (g->data); f != NULL;
         f = f->next)
      {
        PurpleRequestField *field = f->data;

        g_ptr_array_add (labels, g_strdup (purple_request_field_get_id (field)));
        if (purple_request_field_get_type (field) == PURPLE_REQUEST_FIELD_STRING
            && purple_request_field_string_is_masked (field)
            && secret != NULL)
          {
            const char *v = purple_request_field_string_get_value (field);

            if (v == NULL || *v == '\0')
              purple_request_field_string_set_value (field, secret);
          }
      }
}

static void *
request_fields (const char *title, const char *primary, const char *secondary,
                PurpleRequestFields *fields, const char *ok_text,
                GCallback ok_cb, const char *cancel_text, GCallback cancel_cb,
                PurpleAccount *account, const char *who,
                PurpleConversation *conv, void *user_data)
{
  AutoRequest *r = auto_request_new (PURPLE_REQUEST_FIELDS, ok_cb, cancel_cb,
                                     user_data);
  g_autoptr (GPtrArray) labels = g_ptr_array_new_with_free_func (g_free);

  r->fields = fields;
  r->cancel = input_cancel;
  fill_fields (fields, labels);
  emit_request ("fields", title, primary, secondary,
                r->cancel ? "cancel" : "ok", labels);
  return r;
}

static void *
request_file (const char *title, const char *filename, gboolean savedialog,
              GCallback ok_cb, GCallback cancel_cb, PurpleAccount *account,
              const char *who, PurpleConversation *conv, void *user_data)
{
  AutoRequest *r = auto_request_new (PURPLE_REQUEST_FILE, NULL, cancel_cb,
                                     user_data);

  emit_request ("file", title, filename, NULL, "cancel", NULL);
  return r;
}

static void *
request_folder (const char *title, const char *dirname, GCallback ok_cb,
                GCallback cancel_cb, PurpleAccount *account, const char *who,
                PurpleConversation *conv, void *user_data)
{
  AutoRequest *r = auto_request_new (PURPLE_REQUEST_FOLDER, NULL, cancel_cb,
                                     user_data);

  emit_request ("folder", title, dirname, NULL, "cancel", NULL);
  return r;
}

static void
request_close (PurpleRequestType type, void *ui_handle)
{
  AutoRequest *r = ui_handle;

  if (r == NULL)
    return;
  if (r->in_callback)
    {
      r->closed = TRUE;
      return;
    }
  auto_request_free (r);
}

static PurpleRequestUiOps request_ops = {
  .request_input = request_input,
  .request_choice = request_choice,
  .request_action = request_action,
  .request_fields = request_fields,
  .request_file = request_file,
  .close_request = request_close,
  .request_folder = request_folder,
};

/* ------------------------------------------------------------------ */
/* Accounts: authorise everyone, add back whoever added us             */
/* ------------------------------------------------------------------ */

typedef struct
{
  PurpleAccountRequestAuthorizationCb cb;
  void *user_data;
  guint idle_id;
} AuthAccept;

/* Pending answers, so a request closed by libpurple (e.g. on sign-off)
 * is never answered afterwards. */
static GHashTable *pending_auth;

static gboolean
auth_accept_cb (gpointer data)
{
  AuthAccept *a = data;

  g_hash_table_remove (pending_auth, a);
  a->cb (a->user_data);
  g_free (a);
  return G_SOURCE_REMOVE;
}

static void *
account_request_authorize (PurpleAccount *account, const char *remote_user,
                           const char *id, const char *alias,
                           const char *message, gboolean on_list,
                           PurpleAccountRequestAuthorizationCb authorize_cb,
                           PurpleAccountRequestAuthorizationCb deny_cb,
                           void *user_data)
{
  AuthAccept *a = g_new0 (AuthAccept, 1);
  JsonBuilder *b = event_begin ("auth-request");

  builder_add_str (b, "who", remote_user);
  builder_add_bool (b, "on_list", on_list);
  event_end (b);
  /* libpurple registers the request after this returns: answer later */
  a->cb = authorize_cb;
  a->user_data = user_data;
  a->idle_id = g_idle_add (auth_accept_cb, a);
  if (pending_auth == NULL)
    pending_auth = g_hash_table_new (NULL, NULL);
  g_hash_table_add (pending_auth, a);
  return a;
}

static void
account_close_request (void *ui_handle)
{
  AuthAccept *a = ui_handle;

  if (pending_auth == NULL || !g_hash_table_remove (pending_auth, a))
    return;
  g_source_remove (a->idle_id);
  g_free (a);
}

static void
add_buddy_to_list (PurpleAccount *account, const char *name, const char *alias)
{
  PurpleBuddy *buddy = purple_find_buddy (account, name);
  PurpleGroup *group;

  if (buddy == NULL)
    {
      group = purple_find_group ("Buddies");
      if (group == NULL)
        {
          group = purple_group_new ("Buddies");
          purple_blist_add_group (group, NULL);
        }
      buddy = purple_buddy_new (account, name, alias);
      purple_blist_add_buddy (buddy, NULL, group, NULL);
    }
  purple_account_add_buddy (account, buddy);
}

typedef struct
{
  PurpleAccount *account;
  gchar *who;
} AddBack;

static gboolean
add_back_cb (gpointer data)
{
  AddBack *a = data;

  if (purple_account_is_connected (a->account)
      && purple_find_buddy (a->account, a->who) == NULL)
    add_buddy_to_list (a->account, a->who, NULL);
  g_free (a->who);
  g_free (a);
  return G_SOURCE_REMOVE;
}

static void
account_request_add (PurpleAccount *account, const char *remote_user,
                     const char *id, const char *alias, const char *message)
{
  AddBack *a = g_new0 (AddBack, 1);

  emit_simple ("add-request", "who", remote_user);
  a->account = account;
  a->who = g_strdup (remote_user);
  g_idle_add (add_back_cb, a);
}

static void
account_notify_added (PurpleAccount *account, const char *remote_user,
                      const char *id, const char *alias, const char *message)
{
  emit_simple ("added-by", "who", remote_user);
}

static PurpleAccountUiOps account_ops = {
  .notify_added = account_notify_added,
  .request_add = account_request_add,
  .request_authorize = account_request_authorize,
  .close_account_request = account_close_request,
};

/* ------------------------------------------------------------------ */
/* Core                                                                */
/* ------------------------------------------------------------------ */

static void
core_debug_ui_init (void)
{
  purple_debug_set_ui_ops (&debug_ops);
}

static void
core_ui_init (void)
{
  purple_conversations_set_ui_ops (&conv_ops);
  purple_notify_set_ui_ops (&notify_ops);
  purple_request_set_ui_ops (&request_ops);
  purple_accounts_set_ui_ops (&account_ops);
}

static GHashTable *
core_get_ui_info (void)
{
  static GHashTable *info;

  if (info == NULL)
    {
      info = g_hash_table_new (g_str_hash, g_str_equal);
      g_hash_table_insert (info, "name", "e2ee-test-client");
      g_hash_table_insert (info, "version", "1");
      g_hash_table_insert (info, "client_type", "bot");
    }
  return info;
}

static PurpleCoreUiOps core_ops = {
  .debug_ui_init = core_debug_ui_init,
  .ui_init = core_ui_init,
  .get_ui_info = core_get_ui_info,
};

/* ------------------------------------------------------------------ */
/* Signals                                                             */
/* ------------------------------------------------------------------ */

static void
on_signed_on (PurpleConnection *gc, gpointer data)
{
  PurpleAccount *account = purple_connection_get_account (gc);

  emit_simple ("signed-on", "account", purple_account_get_username (account));
}

static void
on_signed_off (PurpleConnection *gc, gpointer data)
{
  PurpleAccount *account = purple_connection_get_account (gc);

  emit_simple ("signed-off", "account", purple_account_get_username (account));
}

static void
on_connection_error (PurpleConnection *gc, PurpleConnectionError err,
                     const gchar *desc, gpointer data)
{
  JsonBuilder *b = event_begin ("error");

  builder_add_str (b, "source", "connection");
  builder_add_int (b, "code", err);
  builder_add_str (b, "message", desc);
  event_end (b);
}

static gboolean
on_receiving_im (PurpleAccount *account, char **sender, char **message,
                 PurpleConversation *conv, PurpleMessageFlags *flags,
                 gpointer data)
{
  JsonBuilder *b = event_begin ("received-raw");

  builder_add_str (b, "from", *sender);
  builder_add_str (b, "text", *message);
  builder_add_str (b, "conv", conv != NULL ? purple_conversation_get_name (conv)
                   : NULL);
  builder_add_flags (b, *flags);
  event_end (b);
  return FALSE;
}

static void
on_received_im (PurpleAccount *account, char *sender, char *message,
                PurpleConversation *conv, PurpleMessageFlags flags,
                gpointer data)
{
  JsonBuilder *b = event_begin ("received");

  builder_add_str (b, "from", sender);
  builder_add_str (b, "text", message);
  builder_add_flags (b, flags);
  event_end (b);
}

static void
on_sending_im (PurpleAccount *account, const char *receiver, char **message,
               gpointer data)
{
  JsonBuilder *b = event_begin ("sending");

  builder_add_str (b, "to", receiver);
  builder_add_str (b, "text", *message);
  event_end (b);
}

static void
on_sent_im (PurpleAccount *account, const char *receiver, const char *message,
            gpointer data)
{
  JsonBuilder *b = event_begin ("sent-raw");

  builder_add_str (b, "account", purple_account_get_username (account));
  builder_add_str (b, "to", receiver);
  builder_add_str (b, "text", message);
  event_end (b);
}

static void
add_status_members (JsonBuilder *b, PurpleStatus *status)
{
  builder_add_str (b, "status", status != NULL ? purple_status_get_id (status)
                   : NULL);
  builder_add_str (b, "message", status != NULL
                   ? purple_status_get_attr_string (status, "message") : NULL);
  builder_add_bool (b, "online", status != NULL
                    && purple_status_is_online (status));
}

static void
on_buddy_status (PurpleBuddy *buddy, PurpleStatus *old, PurpleStatus *status,
                 gpointer data)
{
  JsonBuilder *b = event_begin ("buddy-status");

  builder_add_str (b, "who", purple_buddy_get_name (buddy));
  builder_add_str (b, "account",
                   purple_account_get_username (purple_buddy_get_account (buddy)));
  add_status_members (b, status);
  event_end (b);
}

static void
on_buddy_signed_on (PurpleBuddy *buddy, gpointer data)
{
  emit_simple ("buddy-signed-on", "who", purple_buddy_get_name (buddy));
}

static void
on_buddy_signed_off (PurpleBuddy *buddy, gpointer data)
{
  emit_simple ("buddy-signed-off", "who", purple_buddy_get_name (buddy));
}

static void
connect_signals (void)
{
  void *h = &signal_handle;
  void *convs = purple_conversations_get_handle ();
  void *conns = purple_connections_get_handle ();
  void *blist = purple_blist_get_handle ();

  purple_signal_connect (conns, "signed-on", h,
                         PURPLE_CALLBACK (on_signed_on), NULL);
  purple_signal_connect (conns, "signed-off", h,
                         PURPLE_CALLBACK (on_signed_off), NULL);
  purple_signal_connect (conns, "connection-error", h,
                         PURPLE_CALLBACK (on_connection_error), NULL);
  /* Lowest priority runs first: the wire text before any plugin. */
  purple_signal_connect_priority (convs, "receiving-im-msg", h,
                                  PURPLE_CALLBACK (on_receiving_im), NULL,
                                  PURPLE_SIGNAL_PRIORITY_LOWEST);
  purple_signal_connect_priority (convs, "sending-im-msg", h,
                                  PURPLE_CALLBACK (on_sending_im), NULL,
                                  PURPLE_SIGNAL_PRIORITY_LOWEST);
  purple_signal_connect_priority (convs, "sent-im-msg", h,
                                  PURPLE_CALLBACK (on_sent_im), NULL,
                                  PURPLE_SIGNAL_PRIORITY_HIGHEST);
  purple_signal_connect_priority (convs, "received-im-msg", h,
                                  PURPLE_CALLBACK (on_received_im), NULL,
                                  PURPLE_SIGNAL_PRIORITY_HIGHEST);
  purple_signal_connect (blist, "buddy-status-changed", h,
                         PURPLE_CALLBACK (on_buddy_status), NULL);
  purple_signal_connect (blist, "buddy-signed-on", h,
                         PURPLE_CALLBACK (on_buddy_signed_on), NULL);
  purple_signal_connect (blist, "buddy-signed-off", h,
                         PURPLE_CALLBACK (on_buddy_signed_off), NULL);
}

/* ------------------------------------------------------------------ */
/* Commands                                                            */
/* ------------------------------------------------------------------ */

typedef struct
{
  const char *name;
  gint64 seq;
  /* arguments (owned) */
  gchar *to;
  gchar *text;
  gchar *status;
  gchar *id;
  gchar *value;
  gchar *account;    /* "account": run on this account, not the first */
  gboolean escape;
} Command;

static void
command_clear (Command *c)
{
  g_free (c->to);
  g_free (c->text);
  g_free (c->status);
  g_free (c->id);
  g_free (c->value);
  g_free (c->account);
}

static gboolean
fail (GString *err, const char *message)
{
  g_string_assign (err, message);
  return FALSE;
}

static PurpleConnection *
require_connection (GString *err)
{
  PurpleConnection *gc = purple_account_get_connection (the_account);

  if (gc == NULL || !purple_account_is_connected (the_account))
    {
      g_string_assign (err, "account not connected");
      return NULL;
    }
  return gc;
}

static PurpleConversation *
im_conversation (const char *who)
{
  PurpleConversation *conv;

  conv = purple_find_conversation_with_account (PURPLE_CONV_TYPE_IM, who,
                                                the_account);
  if (conv == NULL)
    conv = purple_conversation_new (PURPLE_CONV_TYPE_IM, the_account, who);
  return conv;
}

static gboolean
cmd_send (Command *c, GString *err)
{
  PurpleConversation *conv;
  g_autofree gchar *text = NULL;

  if (c->to == NULL || c->text == NULL)
    return fail (err, "usage: send <buddy> <text>");
  if (require_connection (err) == NULL)
    return FALSE;
  conv = im_conversation (c->to);
  text = c->escape ? g_markup_escape_text (c->text, -1) : g_strdup (c->text);
  purple_conv_im_send (PURPLE_CONV_IM (conv), text);
  return TRUE;
}

static const char *
cmd_status_name (PurpleCmdStatus s)
{
  switch (s)
    {
    case PURPLE_CMD_STATUS_OK: return "ok";
    case PURPLE_CMD_STATUS_FAILED: return "failed";
    case PURPLE_CMD_STATUS_NOT_FOUND: return "not-found";
    case PURPLE_CMD_STATUS_WRONG_ARGS: return "wrong-args";
    case PURPLE_CMD_STATUS_WRONG_PRPL: return "wrong-prpl";
    case PURPLE_CMD_STATUS_WRONG_TYPE: return "wrong-type";
    default: return "unknown";
    }
}

static gboolean
cmd_cmd (Command *c, GString *err)
{
  PurpleConversation *conv;
  g_autofree gchar *markup = NULL;
  gchar *error = NULL;
  PurpleCmdStatus s;
  JsonBuilder *b;

  if (c->to == NULL || c->text == NULL)
    return fail (err, "usage: cmd <buddy> <command line>");
  conv = im_conversation (c->to);
  markup = g_markup_escape_text (c->text, -1);
  s = purple_cmd_do_command (conv, c->text, markup, &error);
  b = event_begin ("cmd-result");
  builder_add_int (b, "seq", c->seq);
  builder_add_str (b, "line", c->text);
  builder_add_str (b, "status", cmd_status_name (s));
  builder_add_str (b, "error", error);
  event_end (b);
  g_free (error);
  return TRUE;
}

static gboolean
cmd_raw (Command *c, GString *err)
{
  PurpleConnection *gc;
  int ret;

  if (c->to == NULL || c->text == NULL)
    return fail (err, "usage: raw <buddy> <text>");
  if ((gc = require_connection (err)) == NULL)
    return FALSE;
  ret = serv_send_im (gc, c->to, c->text, 0);
  if (ret < 0)
    {
      g_string_printf (err, "serv_send_im returned %d", ret);
      return FALSE;
    }
  return TRUE;
}

static gboolean
cmd_add_buddy (Command *c, GString *err)
{
  if (c->to == NULL)
    return fail (err, "usage: add-buddy <name> [alias]");
  if (require_connection (err) == NULL)
    return FALSE;
  add_buddy_to_list (the_account, c->to, c->text);
  return TRUE;
}

static gboolean
cmd_set_status (Command *c, GString *err)
{
  const char *id = c->status;

  if (id == NULL)
    id = g_strcmp0 (opt_protocol, "prpl-irc") == 0 ? "away" : "available";
  if (purple_account_get_status (the_account, id) == NULL)
    {
      g_string_printf (err, "unknown status id %s", id);
      return FALSE;
    }
  if (c->text != NULL)
    purple_account_set_status (the_account, id, TRUE, "message", c->text, NULL);
  else
    purple_account_set_status (the_account, id, TRUE, NULL);
  return TRUE;
}

static gboolean
cmd_get_info (Command *c, GString *err)
{
  PurpleConnection *gc;

  if (c->to == NULL)
    return fail (err, "usage: get-info <buddy>");
  if ((gc = require_connection (err)) == NULL)
    return FALSE;
  serv_get_info (gc, c->to);
  return TRUE;
}

static gboolean
cmd_get_status (Command *c, GString *err)
{
  PurpleBuddy *buddy;
  JsonBuilder *b;

  if (c->to == NULL)
    return fail (err, "usage: get-status <buddy>");
  buddy = purple_find_buddy (the_account, c->to);
  b = event_begin ("status");
  builder_add_int (b, "seq", c->seq);
  builder_add_str (b, "who", c->to);
  builder_add_bool (b, "known", buddy != NULL);
  add_status_members (b, buddy != NULL
                      ? purple_presence_get_active_status (purple_buddy_get_presence (buddy))
                      : NULL);
  event_end (b);
  return TRUE;
}

static gboolean
cmd_close (Command *c, GString *err)
{
  PurpleConversation *conv;

  if (c->to == NULL)
    return fail (err, "usage: close <buddy>");
  conv = purple_find_conversation_with_account (PURPLE_CONV_TYPE_IM, c->to,
                                                the_account);
  if (conv == NULL)
    return fail (err, "no such conversation");
  purple_conversation_destroy (conv);
  return TRUE;
}

static gboolean
cmd_action (Command *c, GString *err)
{
  PurplePlugin *plugin;
  GList *actions, *l;
  gboolean found = FALSE;

  if (c->id == NULL || c->text == NULL)
    return fail (err, "usage: action <plugin-id> <label>");
  plugin = purple_plugins_find_with_id (c->id);
  if (plugin == NULL || !purple_plugin_is_loaded (plugin))
    return fail (err, "plugin not loaded");
  actions = PURPLE_PLUGIN_ACTIONS (plugin, NULL);
  for (l = actions; l != NULL; l = l->next)
    {
      PurplePluginAction *a = l->data;

      if (a == NULL)
        continue;
      if (!found && g_strcmp0 (a->label, c->text) == 0 && a->callback != NULL)
        {
          a->plugin = plugin;
          a->context = NULL;
          a->callback (a);
          found = TRUE;
        }
      purple_plugin_action_free (a);
    }
  g_list_free (actions);
  if (!found)
    g_string_printf (err, "no action labelled %s", c->text);
  return found;
}

static gboolean
cmd_set_pref (Command *c, GString *err)
{
  if (c->id == NULL || c->value == NULL)
    return fail (err, "usage: set-pref <path> <value>");
  switch (purple_prefs_get_type (c->id))
    {
    case PURPLE_PREF_BOOLEAN:
      purple_prefs_set_bool (c->id, g_ascii_strcasecmp (c->value, "true") == 0
                             || strcmp (c->value, "1") == 0);
      return TRUE;
    case PURPLE_PREF_INT:
      purple_prefs_set_int (c->id, (int) g_ascii_strtoll (c->value, NULL, 10));
      return TRUE;
    case PURPLE_PREF_STRING:
    case PURPLE_PREF_PATH:
      purple_prefs_set_string (c->id, c->value);
      return TRUE;
    default:
      g_string_printf (err, "no settable pref %s", c->id);
      return FALSE;
    }
}

static gboolean
cmd_get_pref (Command *c, GString *err)
{
  JsonBuilder *b;
  PurplePrefType t;

  if (c->id == NULL)
    return fail (err, "usage: get-pref <path>");
  t = purple_prefs_get_type (c->id);
  b = event_begin ("pref");
  builder_add_int (b, "seq", c->seq);
  builder_add_str (b, "path", c->id);
  json_builder_set_member_name (b, "value");
  switch (t)
    {
    case PURPLE_PREF_BOOLEAN:
      json_builder_add_boolean_value (b, purple_prefs_get_bool (c->id));
      break;
    case PURPLE_PREF_INT:
      json_builder_add_int_value (b, purple_prefs_get_int (c->id));
      break;
    case PURPLE_PREF_STRING:
    case PURPLE_PREF_PATH:
      {
        g_autofree gchar *safe = utf8_safe (purple_prefs_get_string (c->id));

        if (safe != NULL)
          json_builder_add_string_value (b, safe);
        else
          json_builder_add_null_value (b);
      }
      break;
    default:
      json_builder_add_null_value (b);
      break;
    }
  event_end (b);
  return TRUE;
}

static void
emit_plugin_state (const char *id, PurplePlugin *plugin)
{
  JsonBuilder *b = event_begin ("plugin");

  builder_add_str (b, "id", id);
  builder_add_bool (b, "found", plugin != NULL);
  builder_add_bool (b, "loaded", plugin != NULL && purple_plugin_is_loaded (plugin));
  builder_add_str (b, "error", plugin != NULL ? plugin->error : "not found");
  event_end (b);
}

static gboolean
load_plugin (const char *id, GString *err)
{
  PurplePlugin *plugin = purple_plugins_find_with_id (id);

  if (plugin != NULL && !purple_plugin_is_loaded (plugin))
    purple_plugin_load (plugin);
  emit_plugin_state (id, plugin);
  if (plugin == NULL || !purple_plugin_is_loaded (plugin))
    {
      g_string_printf (err, "plugin %s not loaded", id);
      return FALSE;
    }
  return TRUE;
}

static gboolean
cmd_load_plugin (Command *c, GString *err)
{
  if (c->id == NULL)
    return fail (err, "usage: load-plugin <id>");
  return load_plugin (c->id, err);
}

static gboolean
cmd_unload_plugin (Command *c, GString *err)
{
  PurplePlugin *plugin;

  if (c->id == NULL)
    return fail (err, "usage: unload-plugin <id>");
  plugin = purple_plugins_find_with_id (c->id);
  if (plugin == NULL || !purple_plugin_is_loaded (plugin))
    return fail (err, "plugin not loaded");
  if (!purple_plugin_unload (plugin))
    {
      return fail (err, "unload failed");
    }
  emit_plugin_state (c->id, plugin);
  return TRUE;
}

static gboolean
cmd_answer_action (Command *c, GString *err)
{
  if (c->value == NULL || strcmp (c->value, "default") == 0)
    action_answer = -1;
  else if (strcmp (c->value, "cancel") == 0)
    action_answer = -2;
  else
    action_answer = (gint) g_ascii_strtoll (c->value, NULL, 10);
  return TRUE;
}

static gboolean
cmd_answer_input (Command *c, GString *err)
{
  g_free (input_answer);
  input_answer = NULL;
  input_cancel = FALSE;
  if (c->value == NULL || strcmp (c->value, "default") == 0)
    return TRUE;
  if (strcmp (c->value, "cancel") == 0)
    input_cancel = TRUE;
  else
    input_answer = g_strdup (c->text != NULL ? c->text : c->value);
  return TRUE;
}

static gboolean
cmd_signoff (Command *c, GString *err)
{
  purple_account_set_enabled (the_account, UI_ID, FALSE);
  return TRUE;
}

static gboolean
cmd_signon (Command *c, GString *err)
{
  purple_account_set_enabled (the_account, UI_ID, TRUE);
  if (!purple_account_is_connected (the_account)
      && !purple_account_is_connecting (the_account))
    purple_account_connect (the_account);
  return TRUE;
}

static gboolean
cmd_quit (Command *c, GString *err)
{
  g_main_loop_quit (main_loop);
  return TRUE;
}

static gboolean
cmd_ping (Command *c, GString *err)
{
  return TRUE;
}

typedef gboolean (*CommandFunc) (Command *c, GString *err);

/* Argument shape of the text form: what follows the command word. */
typedef enum
{
  ARGS_NONE,         /* nothing */
  ARGS_TO,           /* <to> */
  ARGS_TO_TEXT,      /* <to> <text...> */
  ARGS_TEXT,         /* <text...> */
  ARGS_ID,           /* <id> */
  ARGS_ID_TEXT,      /* <id> <text...> */
  ARGS_ID_VALUE,     /* <id> <value...> */
  ARGS_VALUE,        /* <value...> */
} ArgShape;

static const struct
{
  const char *name;
  ArgShape shape;
  CommandFunc func;
} commands[] = {
  { "send", ARGS_TO_TEXT, cmd_send },
  { "cmd", ARGS_TO_TEXT, cmd_cmd },
  { "raw", ARGS_TO_TEXT, cmd_raw },
  { "add-buddy", ARGS_TO_TEXT, cmd_add_buddy },
  { "set-status", ARGS_TEXT, cmd_set_status },
  { "get-info", ARGS_TO, cmd_get_info },
  { "get-status", ARGS_TO, cmd_get_status },
  { "close", ARGS_TO, cmd_close },
  { "action", ARGS_ID_TEXT, cmd_action },
  { "set-pref", ARGS_ID_VALUE, cmd_set_pref },
  { "get-pref", ARGS_ID, cmd_get_pref },
  { "load-plugin", ARGS_ID, cmd_load_plugin },
  { "unload-plugin", ARGS_ID, cmd_unload_plugin },
  { "answer-action", ARGS_VALUE, cmd_answer_action },
  { "answer-input", ARGS_VALUE, cmd_answer_input },
  { "signoff", ARGS_NONE, cmd_signoff },
  { "signon", ARGS_NONE, cmd_signon },
  { "ping", ARGS_NONE, cmd_ping },
  { "quit", ARGS_NONE, cmd_quit },
};

/* Splits "first rest..." into two owned strings; rest may be NULL. */
static void
split_first (const char *s, gchar **first, gchar **rest)
{
  const char *sp;

  *first = NULL;
  *rest = NULL;
  if (s == NULL || *s == '\0')
    return;
  sp = strchr (s, ' ');
  if (sp == NULL)
    {
      *first = g_strdup (s);
      return;
    }
  *first = g_strndup (s, sp - s);
  if (sp[1] != '\0')
    *rest = g_strdup (sp + 1);
}

static void
parse_text_args (Command *c, ArgShape shape, const char *args)
{
  switch (shape)
    {
    case ARGS_NONE:
      break;
    case ARGS_TO:
      c->to = args != NULL ? g_strdup (args) : NULL;
      break;
    case ARGS_TO_TEXT:
      split_first (args, &c->to, &c->text);
      break;
    case ARGS_TEXT:
      c->text = args != NULL ? g_strdup (args) : NULL;
      break;
    case ARGS_ID:
      c->id = args != NULL ? g_strdup (args) : NULL;
      break;
    case ARGS_ID_TEXT:
      split_first (args, &c->id, &c->text);
      break;
    case ARGS_ID_VALUE:
      split_first (args, &c->id, &c->value);
      break;
    case ARGS_VALUE:
      c->value = args != NULL ? g_strdup (args) : NULL;
      break;
    }
}

static gchar *
json_member_string (JsonObject *o, const char *name)
{
  JsonNode *n = json_object_get_member (o, name);

  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    return NULL;
  if (json_node_get_value_type (n) == G_TYPE_STRING)
    return g_strdup (json_node_get_string (n));
  if (json_node_get_value_type (n) == G_TYPE_INT64)
    return g_strdup_printf ("%" G_GINT64_FORMAT, json_node_get_int (n));
  if (json_node_get_value_type (n) == G_TYPE_BOOLEAN)
    return g_strdup (json_node_get_boolean (n) ? "true" : "false");
  return NULL;
}

/* JSON form: {"cmd":..., "seq":N, "to":..., "text":..., "status":...,
 * "id":..., "value":..., "escape":bool}.  "buddy"/"who"/"name" are
 * accepted for "to", "path"/"label" for "id"/"text", "message" for "text". */
static const char *
parse_json_command (Command *c, const char *line, GString *err)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  JsonObject *o;
  const char *name;
  gsize i;

  if (!json_parser_load_from_data (parser, line, -1, &error))
    {
      g_string_printf (err, "bad JSON: %s", error->message);
      return NULL;
    }
  if (!JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    {
      g_string_assign (err, "JSON command must be an object");
      return NULL;
    }
  o = json_node_get_object (json_parser_get_root (parser));
  if (json_object_has_member (o, "seq"))
    c->seq = json_object_get_int_member (o, "seq");
  name = json_object_has_member (o, "cmd")
    ? json_object_get_string_member (o, "cmd") : NULL;
  if (name == NULL)
    {
      g_string_assign (err, "missing \"cmd\"");
      return NULL;
    }
  for (i = 0; i < G_N_ELEMENTS (commands); i++)
    if (strcmp (commands[i].name, name) == 0)
      break;
  if (i == G_N_ELEMENTS (commands))
    {
      g_string_printf (err, "unknown command %s", name);
      return NULL;
    }
  c->to = json_member_string (o, "to");
  if (c->to == NULL)
    c->to = json_member_string (o, "buddy");
  if (c->to == NULL)
    c->to = json_member_string (o, "who");
  if (c->to == NULL)
    c->to = json_member_string (o, "name");
  c->text = json_member_string (o, "text");
  if (c->text == NULL)
    c->text = json_member_string (o, "line");
  if (c->text == NULL)
    c->text = json_member_string (o, "message");
  if (c->text == NULL)
    c->text = json_member_string (o, "label");
  if (c->text == NULL)
    c->text = json_member_string (o, "alias");
  c->status = json_member_string (o, "status");
  c->id = json_member_string (o, "id");
  if (c->id == NULL)
    c->id = json_member_string (o, "path");
  c->value = json_member_string (o, "value");
  c->account = json_member_string (o, "account");
  c->escape = json_object_has_member (o, "escape")
    && json_object_get_boolean_member (o, "escape");
  return commands[i].name;
}

static void
run_command_line (const char *line)
{
  static gint64 counter;
  Command c = { 0 };
  PurpleAccount *main_account = NULL;
  g_autoptr (GString) err = g_string_new (NULL);
  gboolean ok = FALSE;
  const char *name = NULL;
  gsize i;
  JsonBuilder *b;

  c.seq = ++counter;
  if (line[0] == '{')
    name = parse_json_command (&c, line, err);
  else
    {
      g_autofree gchar *word = NULL;
      g_autofree gchar *args = NULL;

      split_first (line, &word, &args);
      for (i = 0; word != NULL && i < G_N_ELEMENTS (commands); i++)
        if (strcmp (commands[i].name, word) == 0)
          {
            name = commands[i].name;
            parse_text_args (&c, commands[i].shape, args);
            break;
          }
      if (name == NULL)
        g_string_printf (err, "unknown command %s", word != NULL ? word : "");
    }
  c.name = name;
  if (name != NULL && c.account != NULL)
    {
      PurpleAccount *chosen = purple_accounts_find (c.account, opt_protocol);

      if (chosen == NULL)
        {
          g_string_printf (err, "unknown account %s", c.account);
          name = NULL;
        }
      else
        {
          main_account = the_account;
          the_account = chosen;
        }
    }
  if (name != NULL)
    for (i = 0; i < G_N_ELEMENTS (commands); i++)
      if (strcmp (commands[i].name, name) == 0)
        {
          ok = commands[i].func (&c, err);
          break;
        }
  if (main_account != NULL)
    the_account = main_account;

  b = event_begin ("ack");
  builder_add_int (b, "seq", c.seq);
  builder_add_str (b, "cmd", name);
  builder_add_bool (b, "ok", ok);
  builder_add_str (b, "error", ok ? NULL : err->str);
  event_end (b);
  command_clear (&c);
}

static gboolean
stdin_cb (GIOChannel *source, GIOCondition cond, gpointer data)
{
  g_autofree gchar *line = NULL;
  g_autoptr (GError) error = NULL;
  gsize len = 0, term = 0;
  GIOStatus st;

  for (;;)
    {
      g_clear_pointer (&line, g_free);
      st = g_io_channel_read_line (source, &line, &len, &term, &error);
      if (st == G_IO_STATUS_AGAIN)
        return G_SOURCE_CONTINUE;
      if (st != G_IO_STATUS_NORMAL)
        break;
      line[term] = '\0';
      if (term > 0 && line[term - 1] == '\r')
        line[term - 1] = '\0';
      if (line[0] != '\0')
        run_command_line (line);
      /* a command may have asked to quit */
      if (!g_main_loop_is_running (main_loop))
        return G_SOURCE_REMOVE;
      if (!(g_io_channel_get_buffer_condition (source) & G_IO_IN))
        return G_SOURCE_CONTINUE;
    }
  if (error != NULL)
    emit_error ("stdin", error->message);
  /* end of input: the controlling process has gone */
  g_main_loop_quit (main_loop);
  return G_SOURCE_REMOVE;
}

static gboolean
unix_signal_cb (gpointer data)
{
  g_main_loop_quit (main_loop);
  return G_SOURCE_CONTINUE;
}

/* ------------------------------------------------------------------ */
/* Account setup                                                       */
/* ------------------------------------------------------------------ */

/* The first account is the_account; --extra-account adds more of the same
 * protocol, server, port and password, configured the same way. */
static GList *extra_accounts;

static gboolean configure_account (GError **error);

static gboolean
setup_account (GError **error)
{
  PurpleAccount *first;
  PurpleSavedStatus *saved;
  GList *l;
  gchar **p;

  if (purple_find_prpl (opt_protocol) == NULL)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "protocol %s not available", opt_protocol);
      return FALSE;
    }
  for (p = opt_extra_accounts; p != NULL && *p != NULL; p++)
    {
      PurpleAccount *a = purple_accounts_find (*p, opt_protocol);

      if (a == NULL)
        {
          a = purple_account_new (*p, opt_protocol);
          purple_accounts_add (a);
        }
      extra_accounts = g_list_append (extra_accounts, a);
    }
  first = purple_accounts_find (opt_username, opt_protocol);
  if (first == NULL)
    {
      first = purple_account_new (opt_username, opt_protocol);
      purple_accounts_add (first);
    }
  for (l = extra_accounts; l != NULL; l = l->next)
    {
      the_account = l->data;
      if (!configure_account (error))
        return FALSE;
    }
  the_account = first;
  if (!configure_account (error))
    return FALSE;

  /* a restored account may still be enabled: activating a status would
   * then connect it */
  if (opt_no_connect || opt_prepare_ui != NULL)
    {
      purple_account_set_enabled (the_account, UI_ID, FALSE);
      for (l = extra_accounts; l != NULL; l = l->next)
        purple_account_set_enabled (l->data, UI_ID, FALSE);
    }
  saved = purple_savedstatus_new (NULL, PURPLE_STATUS_AVAILABLE);
  purple_savedstatus_activate (saved);
  if (!opt_no_connect && opt_prepare_ui == NULL)
    {
      purple_account_set_enabled (the_account, UI_ID, TRUE);
      for (l = extra_accounts; l != NULL; l = l->next)
        purple_account_set_enabled (l->data, UI_ID, TRUE);
    }
  return TRUE;
}

static gboolean
configure_account (GError **error)
{
  if (opt_password != NULL)
    {
      purple_account_set_password (the_account, opt_password);
      purple_account_set_remember_password (the_account, TRUE);
    }
  if (opt_alias != NULL)
    purple_account_set_alias (the_account, opt_alias);

  if (strcmp (opt_protocol, "prpl-jabber") == 0)
    {
      if (opt_server != NULL)
        purple_account_set_string (the_account, "connect_server", opt_server);
      if (opt_port > 0)
        purple_account_set_int (the_account, "port", opt_port);
      purple_account_set_string (the_account, "connection_security",
                                 "opportunistic_tls");
      purple_account_set_bool (the_account, "require_tls", FALSE);
      /* the loopback test server offers no TLS */
      purple_account_set_bool (the_account, "auth_plain_in_clear", TRUE);
    }
  else if (strcmp (opt_protocol, "prpl-irc") == 0)
    {
      if (opt_port > 0)
        purple_account_set_int (the_account, "port", opt_port);
      purple_account_set_bool (the_account, "ssl", FALSE);
      purple_account_set_int (the_account, "ratelimit-interval", 0);
      purple_account_set_int (the_account, "ratelimit-burst", 100);
    }
  return TRUE;
}

/* --otr-init: what pidgin-otr does when it loads (OTRL_INIT), before
 * libpurple and this plugin start: libotr checks libgcrypt's version and
 * installs its own secure-memory allocation handlers.  Loaded at run time
 * so the client builds without libotr. */
static gboolean
otr_init (GError **error)
{
  typedef unsigned int (*OtrlInit) (unsigned int, unsigned int, unsigned int);
  void *lib = dlopen ("libotr.so.5", RTLD_NOW | RTLD_GLOBAL);
  OtrlInit init;
  unsigned int rc;

  if (lib == NULL)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                   "libotr.so.5: %s", dlerror ());
      return FALSE;
    }
  init = (OtrlInit) dlsym (lib, "otrl_init");
  if (init == NULL)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                   "otrl_init not found");
      return FALSE;
    }
  /* libotr 4.1.x: OTRL_INIT is otrl_init (4, 1, 1); 0 is success */
  rc = init (4, 1, 1);
  if (rc != 0)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                   "otrl_init failed (%u)", rc);
      return FALSE;
    }
  return TRUE;
}

/* --prepare-ui finch|pidgin: leave a user dir that the real client starts
 * with: the account set to log in automatically for that UI, the plugins
 * in its saved "loaded" list, and IM logging on (text format) so a test
 * can read what the UI displayed. */
static gboolean
prepare_ui (GError **error)
{
  const char *ui_id, *root;
  g_autofree gchar *plugins_key = NULL;
  g_autofree gchar *loaded_key = NULL;
  GList *paths = NULL;
  gchar **p;

  if (g_strcmp0 (opt_prepare_ui, "finch") == 0)
    {
      ui_id = "gnt-purple";
      root = "/finch";
    }
  else if (g_strcmp0 (opt_prepare_ui, "pidgin") == 0)
    {
      ui_id = "gtk-gaim";
      root = "/pidgin";
    }
  else
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "unknown UI %s", opt_prepare_ui);
      return FALSE;
    }
  /* auto-login without connecting here */
  purple_account_set_ui_bool (the_account, ui_id, "auto-login", TRUE);

  for (p = opt_plugins; p != NULL && *p != NULL; p++)
    {
      PurplePlugin *plugin = purple_plugins_find_with_id (*p);

      if (plugin == NULL || plugin->path == NULL)
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       "plugin %s not found", *p);
          g_list_free (paths);
          return FALSE;
        }
      paths = g_list_append (paths, plugin->path);
    }
  plugins_key = g_strconcat (root, "/plugins", NULL);
  loaded_key = g_strconcat (root, "/plugins/loaded", NULL);
  purple_prefs_add_none (root);
  purple_prefs_add_none (plugins_key);
  purple_prefs_add_path_list (loaded_key, NULL);
  purple_prefs_set_path_list (loaded_key, paths);
  g_list_free (paths);

  purple_prefs_set_bool ("/purple/logging/log_ims", TRUE);
  purple_prefs_set_bool ("/purple/logging/log_system", TRUE);
  purple_prefs_set_string ("/purple/logging/format", "txt");
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* main                                                                */
/* ------------------------------------------------------------------ */

static GOptionEntry option_entries[] = {
  { "user-dir", 0, 0, G_OPTION_ARG_FILENAME, &opt_user_dir, "Purple user directory", "DIR" },
  { "plugin-dir", 0, 0, G_OPTION_ARG_FILENAME, &opt_plugin_dir, "Extra plugin search path", "DIR" },
  { "load-plugin", 0, 0, G_OPTION_ARG_STRING_ARRAY, &opt_plugins, "Load plugin by id (repeatable)", "ID" },
  { "protocol", 0, 0, G_OPTION_ARG_STRING, &opt_protocol, "prpl-jabber or prpl-irc", "PRPL" },
  { "username", 0, 0, G_OPTION_ARG_STRING, &opt_username, "Account user name", "NAME" },
  { "password", 0, 0, G_OPTION_ARG_STRING, &opt_password, "Account password", "PW" },
  { "server", 0, 0, G_OPTION_ARG_STRING, &opt_server, "Server address to connect to", "HOST" },
  { "port", 0, 0, G_OPTION_ARG_INT, &opt_port, "Server port", "N" },
  { "alias", 0, 0, G_OPTION_ARG_STRING, &opt_alias, "Account alias", "ALIAS" },
  { "passphrase", 0, 0, G_OPTION_ARG_STRING, &opt_passphrase, "Answer for input requests", "TEXT" },
  { "debug-log", 0, 0, G_OPTION_ARG_FILENAME, &opt_debug_log, "Write libpurple debug output here", "FILE" },
  { "no-connect", 0, 0, G_OPTION_ARG_NONE, &opt_no_connect, "Do not sign on at start", NULL },
  { "prepare-ui", 0, 0, G_OPTION_ARG_STRING, &opt_prepare_ui, "Only write a user dir for finch or pidgin, then exit", "UI" },
  { "extra-account", 0, 0, G_OPTION_ARG_STRING_ARRAY, &opt_extra_accounts, "Another account (same protocol, server, port and password; repeatable); a command picks it with \"account\"", "NAME" },
  { "otr-init", 0, 0, G_OPTION_ARG_NONE, &opt_otr_init, "Initialise libotr (libotr.so.5, as pidgin-otr does) before libpurple", NULL },
  { NULL }
};

int
main (int argc, char **argv)
{
  g_autoptr (GOptionContext) ctx = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GString) err = g_string_new (NULL);
  GIOChannel *in;
  gchar **p;
  JsonBuilder *b;

  ctx = g_option_context_new ("- headless libpurple client for tests");
  g_option_context_add_main_entries (ctx, option_entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      fprintf (stderr, "%s\n", error->message);
      return 2;
    }
  if (opt_user_dir == NULL || opt_protocol == NULL || opt_username == NULL)
    {
      fprintf (stderr, "--user-dir, --protocol and --username are required\n");
      return 2;
    }
  if (opt_server == NULL)
    opt_server = g_strdup ("127.0.0.1");

  if (opt_debug_log != NULL)
    {
      debug_file = fopen (opt_debug_log, "a");
      if (debug_file == NULL)
        {
          fprintf (stderr, "%s: %s\n", opt_debug_log, g_strerror (errno));
          return 2;
        }
    }
  g_log_set_default_handler (glib_log_handler, NULL);

  if (opt_otr_init)
    {
      if (!otr_init (&error))
        {
          fprintf (stderr, "%s\n", error->message);
          return 2;
        }
      emit_simple ("otr", "version", "libotr 4.1 initialised");
    }
  main_loop = g_main_loop_new (NULL, FALSE);
  g_mkdir_with_parents (opt_user_dir, 0700);
  purple_util_set_user_dir (opt_user_dir);
  /* stdout carries the event stream: keep libpurple's own printing off */
  purple_debug_set_enabled (FALSE);
  purple_core_set_ui_ops (&core_ops);
  purple_eventloop_set_ui_ops (&loop_ops);
  if (opt_plugin_dir != NULL)
    purple_plugins_add_search_path (opt_plugin_dir);
  if (!purple_core_init (UI_ID))
    {
      emit_error ("core", "purple_core_init failed");
      return 1;
    }
  purple_set_blist (purple_blist_new ());
  purple_blist_load ();
  purple_prefs_load ();
  connect_signals ();

  for (p = opt_plugins; opt_prepare_ui == NULL && p != NULL && *p != NULL; p++)
    load_plugin (*p, err);

  b = event_begin ("ready");
  builder_add_str (b, "ui", UI_ID);
  builder_add_str (b, "user_dir", opt_user_dir);
  builder_add_str (b, "username", opt_username);
  builder_add_int (b, "pid", getpid ());
  event_end (b);

  if (!setup_account (&error))
    {
      emit_error ("account", error->message);
      exit_status = 1;
    }
  else if (opt_prepare_ui != NULL)
    {
      if (prepare_ui (&error))
        emit_simple ("prepared", "ui", opt_prepare_ui);
      else
        {
          emit_error ("prepare", error->message);
          exit_status = 1;
        }
    }
  else
    {
      in = g_io_channel_unix_new (STDIN_FILENO);
      g_io_channel_set_encoding (in, NULL, NULL);
      g_io_channel_set_flags (in, G_IO_FLAG_NONBLOCK, NULL);
      g_io_add_watch (in, G_IO_IN | G_IO_HUP | G_IO_ERR, stdin_cb, NULL);
      g_io_channel_unref (in);
      g_unix_signal_add (SIGTERM, unix_signal_cb, NULL);
      g_unix_signal_add (SIGINT, unix_signal_cb, NULL);
      g_main_loop_run (main_loop);
    }

  purple_signals_disconnect_by_handle (&signal_handle);
  purple_core_quit ();
  emit_simple ("bye", NULL, NULL);
  if (debug_file != NULL)
    {
      FILE *f = debug_file;

      debug_file = NULL;
      fclose (f);
    }
  g_main_loop_unref (main_loop);
  return exit_status;
}
