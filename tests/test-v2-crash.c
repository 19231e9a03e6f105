/* Protocol v2 in use under crashes: every send and every receive runs in
 * a child process that dies (SIGKILL to itself, no clean-up) at a chosen point — on
 * entering the commit func, just before the keyring's write transaction,
 * just after its commit, on leaving the commit func, or right after the
 * operation returned — or after it reported its result.  The child
 * reports what it sent or showed on a pipe only after encrypt or receive
 * returned.  The parent reloads nothing but files, and checks over the
 * whole run: no (sender, recipient, ratchet key, N) ever carries two
 * ciphertexts on the wire (so never two plaintexts), no text is shown
 * twice, and the conversation goes on.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2ee-error.h"
#include "e2ee-test-util.h"
#include "e2ee-test-v2.h"

#define ALICE "alice@example.org"
#define BOB "bob@example.org"
#define CRASH_CODE 77 /* only if SIGKILL to itself failed */

typedef enum {
  POINT_NONE = 0,       /* the child reports, then dies */
  POINT_COMMIT_ENTER,   /* commit func called, nothing saved yet */
  POINT_SAVE_BEFORE,    /* keyring save, before its transaction */
  POINT_SAVE_AFTER,     /* just after the COMMIT */
  POINT_COMMIT_LEAVE,   /* saved, before the commit func returns TRUE */
  POINT_RETURNED,       /* encrypt/receive returned, nothing reported */
} Point;

static const char *const point_names[] = {
  "none", "commit-enter", "save-before", "save-after", "commit-leave", "returned",
};

typedef struct {
  Point point;
  guint nth;            /* the n-th commit of the operation (1-based) */
} Plan;

/* The crash plans; message i is sent under plans[i % n] and received
 * under plans[(i + 4) % n], each retried without a crash if it died. */
static const Plan plans[] = {
  { POINT_COMMIT_ENTER, 1 }, { POINT_SAVE_BEFORE, 1 }, { POINT_SAVE_AFTER, 1 },
  { POINT_COMMIT_LEAVE, 1 }, { POINT_RETURNED, 0 },
  { POINT_COMMIT_ENTER, 2 }, { POINT_SAVE_BEFORE, 2 }, { POINT_SAVE_AFTER, 2 },
  { POINT_COMMIT_LEAVE, 2 },
};
static const Plan no_crash = { POINT_NONE, 0 };

/* The child's plan and commit count. */
static Plan armed;
static gboolean arm_on;
static guint commit_no;

/* The child ends without any clean-up, at a crash point or after its
 * report: SIGKILL to itself (like _exit, but also without the leak check
 * a memory checker would run at exit). */
static void G_GNUC_NORETURN
die (void)
{
  kill (getpid (), SIGKILL);
  _exit (CRASH_CODE);
}

static void
maybe_die (Point here)
{
  if (arm_on && armed.point == here && (armed.nth == 0 || armed.nth == commit_no))
    die ();
}

static void
on_save (E2eeKeyring *keyring, const char *point, gpointer data)
{
  maybe_die (strcmp (point, "before") == 0 ? POINT_SAVE_BEFORE : POINT_SAVE_AFTER);
}

static gboolean
crash_commit (E2eeContext *ctx, gpointer data, GError **error)
{
  commit_no++;
  maybe_die (POINT_COMMIT_ENTER);
  if (!e2ee_keyring_save (e2ee_context_get_keyring (ctx), error))
    return FALSE;
  maybe_die (POINT_COMMIT_LEAVE);
  return TRUE;
}

typedef struct {
  char *base;
  V2Peer *alice, *bob;          /* closed except inside a child */
  GHashTable *pairs;            /* slot identity -> text sent with it */
  GHashTable *shown;            /* text -> times shown */
  guint children, crashes, lost, dup_refused;
} Run;

static void
write_record (int fd, char kind, const char *data)
{
  guint32 len = data != NULL ? (guint32) strlen (data) : 0;

  if (write (fd, &kind, 1) != 1 || write (fd, &len, 4) != 4
      || (len > 0 && write (fd, data, len) != (ssize_t) len))
    _exit (3);
}

/* Runs one operation in a child under @plan.  @text: send it from @from
 * to @to; else deliver @wire from @to to @from.  Returns the record the
 * child wrote ('S' sent wire, 'M' shown text, 'O' other outcome, 'F'
 * encrypt failed) or 0 if it crashed before writing; *@data the payload. */
static char
run_child (Run *run, V2Peer *self, const char *peer_name, const char *text,
           const char *wire, const Plan *plan, char **data)
{
  int fds[2], status;
  pid_t pid;
  char kind = 0;
  guint32 len;

  g_assert_cmpint (pipe (fds), ==, 0);
  run->children++;
  pid = fork ();
  g_assert_cmpint (pid, >=, 0);
  if (pid == 0)
    {
      /* Nothing of ours is left allocated when the child dies (a memory
       * checker would report it at the child's end). */
      char seed[64];

      g_snprintf (seed, sizeof seed, "v2 crash child %u", run->children);
      close (fds[0]);
      v2_rng_seed (seed);
      v2_peer_reload (self);
      e2ee_context_set_commit_func (self->ctx, crash_commit, NULL);
      e2ee_keyring_set_save_hook (e2ee_context_get_keyring (self->ctx), on_save, NULL);
      armed = *plan;
      commit_no = 0;
      arm_on = TRUE;
      if (text != NULL)
        {
          GError *error = NULL;
          char **pieces = e2ee_context_encrypt (self->ctx, self->account, peer_name, text, 0,
                                                &error);
          maybe_die (POINT_RETURNED);
          arm_on = FALSE;
          if (pieces == NULL)
            write_record (fds[1], 'F', error->message);
          else
            write_record (fds[1], 'S', pieces[0]);
          g_strfreev (pieces);
          g_clear_error (&error);
        }
      else
        {
          E2eeRecvResult r;
          v2_deliver (self, peer_name, wire, &r);
          maybe_die (POINT_RETURNED);
          arm_on = FALSE;
          if (r.kind == E2EE_RECV_MESSAGE || r.kind == E2EE_RECV_WITHHELD)
            write_record (fds[1], 'M', r.plaintext);
          else
            write_record (fds[1], 'O', r.error != NULL ? r.error->message : "");
          e2ee_recv_result_clear (&r);
        }
      /* Dies with the context open: nothing after the operation helps. */
      die ();
    }
  close (fds[1]);
  *data = NULL;
  if (read (fds[0], &kind, 1) == 1)
    {
      g_assert_cmpint (read (fds[0], &len, 4), ==, 4);
      *data = g_malloc0 (len + 1);
      g_assert_cmpint (len == 0 ? 0 : read (fds[0], *data, len), ==, (ssize_t) len);
    }
  else
    kind = 0;
  close (fds[0]);
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  if (!WIFSIGNALED (status) || WTERMSIG (status) != SIGKILL)
    g_error ("child failed (status %d, plan %s/%u)", status, point_names[plan->point],
             plan->nth);
  if (kind == 0)
    run->crashes++;
  return kind;
}

/* Records every slot of a wire message: a second ciphertext under the
 * same (sender tag, recipient tag, ratchet key, N) fails the test. */
static void
record_wire (Run *run, const char *wire, const char *text)
{
  g_autoptr (GArray) slots = g_array_new (FALSE, TRUE, sizeof (V2Slot));

  g_assert_true (v2_wire_slots (wire, slots));
  g_assert_cmpuint (slots->len, >=, 1);
  for (guint i = 0; i < slots->len; i++)
    {
      V2Slot *s = &g_array_index (slots, V2Slot, i);
      guint8 id[4 + 4 + E2EE_EC_POINT_LEN + 4];
      GBytes *key;
      const char *before;

      memcpy (id, &s->sender_device, 4);
      memcpy (id + 4, &s->recipient_device, 4);
      memcpy (id + 8, s->dh, E2EE_EC_POINT_LEN);
      memcpy (id + 8 + E2EE_EC_POINT_LEN, &s->n, 4);
      key = g_bytes_new (id, sizeof id);
      before = g_hash_table_lookup (run->pairs, key);
      if (before != NULL)
        g_error ("message number %u of one ratchet key sent twice: \"%s\" and \"%s\"",
                 s->n, before, text);
      g_hash_table_insert (run->pairs, key, g_strdup (text));
    }
}

static void
note_shown (Run *run, const char *text)
{
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (run->shown, text)) + 1;

  if (n > 1)
    g_error ("\"%s\" shown %u times", text, n);
  g_hash_table_insert (run->shown, g_strdup (text), GUINT_TO_POINTER (n));
}

/* Sends one message from @from: first under @plan, then (if that child
 * died) without a crash; returns the wire and the text that went (each
 * attempt has its own text). */
static char *
crash_send (Run *run, V2Peer *from, V2Peer *to, guint id, const Plan *plan, char **sent_text)
{
  for (guint attempt = 0; attempt < 2; attempt++)
    {
      const Plan *pl = attempt == 0 ? plan : &no_crash;
      g_autofree char *text = g_strdup_printf ("%s message %u, attempt %u (%s/%u)", from->name,
                                               id, attempt, point_names[pl->point], pl->nth);
      char *data = NULL;
      char kind = run_child (run, from, to->name, text, NULL, pl, &data);

      if (kind == 'S')
        {
          record_wire (run, data, text);
          *sent_text = g_steal_pointer (&text);
          return data;
        }
      if (kind == 'F')
        g_error ("encrypt failed: %s", data);
      g_assert_cmpint (kind, ==, 0);
    }
  g_error ("a send without a crash did not return");
}

static char
receive_once (Run *run, V2Peer *to, V2Peer *from, const char *wire, const char *text,
              const Plan *plan, gboolean *shown)
{
  g_autofree char *data = NULL;
  char kind = run_child (run, to, from->name, NULL, wire, plan, &data);

  if (kind == 'M')
    {
      g_assert_cmpstr (data, ==, text);
      note_shown (run, data);
      *shown = TRUE;
    }
  return kind;
}

/* Delivers @wire to @to: under @plan, then (if that child died) without
 * a crash, then twice more (a network's duplicates): shown at most once
 * in all; a crash after the commit loses it (never shown). */
static void
crash_receive (Run *run, V2Peer *to, V2Peer *from, const char *wire, const char *text,
               const Plan *plan)
{
  gboolean shown = FALSE;
  char kind;

  kind = receive_once (run, to, from, wire, text, plan, &shown);
  if (kind == 0)
    kind = receive_once (run, to, from, wire, text, &no_crash, &shown);
  g_assert_cmpint (kind, !=, 0);
  for (guint i = 0; i < 2; i++)
    {
      kind = receive_once (run, to, from, wire, text, &no_crash, &shown);
      if (kind == 'O')
        run->dup_refused++;
    }
  if (!shown)
    run->lost++;
}

static void
test_crash_each_step (void)
{
  Run run = { 0 };
  g_autofree char *da = NULL, *db = NULL;
  gint64 now = V2_T0;
  guint id = 0, sure_crashes = 0;
  /* Eight messages meet eight of the nine plans each way (quick mode is
   * for valgrind, where every child runs under it). */
  guint rounds = g_getenv ("E2EE_QUICK_TESTS") != NULL ? 2 : 5;

  run.base = v2_tmp_dir ("v2-crash");
  run.pairs = g_hash_table_new_full (g_bytes_hash, g_bytes_equal,
                                     (GDestroyNotify) g_bytes_unref, g_free);
  run.shown = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  da = g_build_filename (run.base, "alice", NULL);
  db = g_build_filename (run.base, "bob", NULL);
  v2_rng_seed ("v2 crash parent");
  run.alice = v2_peer_new (da, ALICE, &now);
  run.bob = v2_peer_new (db, BOB, &now);
  g_assert_cmpint (v2_introduce (run.bob, run.alice), ==, E2EE_LEARN_FIRST_CONTACT);
  g_assert_cmpint (v2_introduce (run.alice, run.bob), ==, E2EE_LEARN_FIRST_CONTACT);
  /* No database connection may cross a fork. */
  v2_peer_close (run.alice);
  v2_peer_close (run.bob);

  /* The first two messages start the session (each side's first send and
   * receive), then the ratchet turns with two messages each way. */
  for (guint round = 0; round < rounds; round++)
    for (guint dir = 0; dir < 2; dir++)
      for (guint k = 0; k < 2; k++)
        {
          V2Peer *from = dir == 0 ? run.alice : run.bob;
          V2Peer *to = dir == 0 ? run.bob : run.alice;
          const Plan *ps = &plans[id % G_N_ELEMENTS (plans)];
          const Plan *pr = &plans[(id + 4) % G_N_ELEMENTS (plans)];
          g_autofree char *text = NULL;
          g_autofree char *wire = crash_send (&run, from, to, id, ps, &text);

          crash_receive (&run, to, from, wire, text, pr);
          sure_crashes += (ps->nth <= 1) + (pr->nth <= 1);
          id++;
        }

  /* Healthy again: the conversation goes on, each way. */
  v2_peer_reload (run.alice);
  v2_peer_reload (run.bob);
  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *ta = g_strdup_printf ("after the crashes %u, to Bob", i);
      g_autofree char *tb = g_strdup_printf ("after the crashes %u, to Alice", i);
      g_autofree char *wa = v2_send (run.alice, BOB, ta);
      g_autofree char *wb = NULL;

      record_wire (&run, wa, ta);
      v2_deliver_ok (run.bob, ALICE, wa, ta);
      wb = v2_send (run.bob, ALICE, tb);
      record_wire (&run, wb, tb);
      v2_deliver_ok (run.alice, BOB, wb, tb);
    }
  g_test_message ("%u children, %u crashed inside an operation, %u messages sent, "
                  "%u received but never shown (crash after the commit), %u duplicates "
                  "refused", run.children, run.crashes, id, run.lost, run.dup_refused);
  /* Every plan at the first commit (or after the return) did crash; a
   * receive that crashed after its commit lost that message, the others
   * arrived. */
  g_assert_cmpuint (run.crashes, >=, sure_crashes);
  g_assert_cmpuint (run.lost, <, id / 2);
  g_assert_cmpuint (run.dup_refused, ==, 2 * id);

  v2_peer_free (run.alice);
  v2_peer_free (run.bob);
  g_hash_table_unref (run.pairs);
  g_hash_table_unref (run.shown);
  v2_tmp_remove (run.base);
  g_free (run.base);
}

int
main (int argc, char **argv)
{
  e2ee_test_init (&argc, &argv);
  g_test_add_func ("/v2/crash/each-step", test_crash_each_step);
  return g_test_run ();
}
