/* Resources that must hold up in one long-lived process: hundreds of
 * conversations through the real session code, also when the host set up
 * libgcrypt first (its own secure pool, or libotr's allocation handlers),
 * and the cipher-handle cache at its limit inside one envelope.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#define _GNU_SOURCE 1 /* RTLD_NEXT */
#include <dlfcn.h>
#include <gcrypt.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#ifdef HAVE_LIBOTR
#include <libotr/proto.h>
#endif

#include "e2ee-aead.h"
#include "e2ee-envelope.h"
#include "e2ee-error.h"
#include "e2ee-gcrypt.h"
#include "e2ee-session.h"
#include "e2ee-wipe.h"
#include "e2ee-test-util.h"

#define PROTO "prpl-jabber"
#define ALICE "alice@example.test"
/* 100 buddies with 3 devices each: 300 peers, each a ratchet session whose
 * keys must not take libgcrypt's small secure pool (the host's) for more
 * than one operation.  20 buddies with E2EE_QUICK_TESTS, under valgrind,
 * where each session start costs ~50x. */
#define N_BUDDIES (g_getenv ("E2EE_QUICK_TESTS") ? 20u : 100u)
#define DEVICES 3

/* The wall clock, as every library in this process reads it: real unless
 * a test sets it (clock_gettime(CLOCK_REALTIME) and gettimeofday stand in
 * for libc's).  Envelope counters follow it (PROTOCOL.md §7). */
static gboolean clock_set;
static gint64 clock_us;

int clock_gettime (clockid_t id, struct timespec *ts);
int
clock_gettime (clockid_t id, struct timespec *ts)
{
  static int (*real) (clockid_t, struct timespec *);

  if (clock_set && id == CLOCK_REALTIME)
    {
      ts->tv_sec = clock_us / G_USEC_PER_SEC;
      ts->tv_nsec = (clock_us % G_USEC_PER_SEC) * 1000;
      return 0;
    }
  if (real == NULL)
    real = (int (*) (clockid_t, struct timespec *)) dlsym (RTLD_NEXT, "clock_gettime");
  return real (id, ts);
}

int gettimeofday (struct timeval *tv, void *tz);
int
gettimeofday (struct timeval *tv, void *tz)
{
  struct timespec ts;

  clock_gettime (CLOCK_REALTIME, &ts);
  tv->tv_sec = ts.tv_sec;
  tv->tv_usec = ts.tv_nsec / 1000;
  return 0;
}

/* 2026-01-01T00:00:00Z and the first second the 40-bit counter (10 ms
 * ticks since 2020-01-01) cannot say, in the year 2368. */
#define T_2026 G_GINT64_CONSTANT (1767225600)
#define T_PAST_RANGE (G_GINT64_CONSTANT (1577836800) + G_GINT64_CONSTANT (0x10000000000) / 100 + 1)

static void
set_clock (gint64 unix_seconds, gint64 ms)
{
  clock_set = TRUE;
  clock_us = unix_seconds * G_USEC_PER_SEC + ms * 1000;
}

typedef struct {
  E2eeContext *ctx;
  E2eeAccountRecord *account;
} Side;

static void
side_init (Side *s, const char *name)
{
  g_autoptr (GError) error = NULL;
  gboolean created = FALSE;

  s->ctx = e2ee_context_new (e2ee_keyring_new ("/nonexistent/purple-e2ee/keyring.json"));
  s->account = e2ee_context_ensure_account (s->ctx, PROTO, name, &created, &error);
  g_assert_no_error (error);
  g_assert_nonnull (s->account);
  g_assert_true (created);
}

static void
side_clear (Side *s)
{
  e2ee_context_free (s->ctx);
}

/* @to learns @from's published keys (as a contact) and trusts each. */
static void
learn (Side *to, const char *from_name, GPtrArray *keys)
{
  g_autoptr (GError) error = NULL;

  e2ee_context_learn_keys (to->ctx, to->account, from_name, keys, NULL);
  for (guint i = 0; i < keys->len; i++)
    {
      g_assert_true (e2ee_context_set_trust (to->ctx, to->account, from_name,
                                             e2ee_key_get_kid (keys->pdata[i]),
                                             E2EE_TRUST_VERIFIED, &error));
      g_assert_no_error (error);
    }
}

static char *
encrypt_one (Side *from, const char *to_name, const char *text)
{
  g_autoptr (GError) error = NULL;
  char **pieces = e2ee_context_encrypt (from->ctx, from->account, to_name, text, 0, &error);
  char *armored;

  g_assert_no_error (error);
  g_assert_nonnull (pieces);
  g_assert_cmpuint (g_strv_length (pieces), ==, 1);
  armored = g_strdup (pieces[0]);
  g_strfreev (pieces);
  return armored;
}

static void
assert_receives (Side *to, const char *from_name, const char *armored, const char *text)
{
  E2eeRecvResult r;

  e2ee_context_receive (to->ctx, to->account, from_name, armored, 1, &r);
  if (r.error)
    g_test_message ("receive from %s: %s", from_name, r.error->message);
  g_assert_no_error (r.error);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_MESSAGE);
  g_assert_cmpstr (r.plaintext, ==, text);
  e2ee_recv_result_clear (&r);
}

/* Alice and 100 buddies of 3 devices each, one message each way with
 * every device, all in this process. */
static void
many_peers (void)
{
  Side alice;
  Side (*buddies)[DEVICES] = g_malloc0 (sizeof (Side[DEVICES]) * N_BUDDIES);
  g_autoptr (GPtrArray) alice_keys = NULL;

  side_init (&alice, ALICE);
  alice_keys = e2ee_context_own_keyset (alice.ctx, alice.account);
  for (guint b = 0; b < N_BUDDIES; b++)
    {
      g_autofree char *name = g_strdup_printf ("buddy%u@example.test", b);
      g_autoptr (GPtrArray) set = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_key_unref);

      for (guint d = 0; d < DEVICES; d++)
        {
          g_autoptr (GPtrArray) own = NULL;

          side_init (&buddies[b][d], name);
          own = e2ee_context_own_keyset (buddies[b][d].ctx, buddies[b][d].account);
          g_ptr_array_add (set, e2ee_key_ref (own->pdata[0]));
          learn (&buddies[b][d], ALICE, alice_keys);
        }
      learn (&alice, name, set);
    }

  for (guint b = 0; b < N_BUDDIES; b++)
    {
      g_autofree char *name = g_strdup_printf ("buddy%u@example.test", b);
      g_autofree char *to_text = g_strdup_printf ("to buddy %u", b);
      g_autofree char *to_buddy = encrypt_one (&alice, name, to_text);

      for (guint d = 0; d < DEVICES; d++)
        {
          g_autofree char *from_text = g_strdup_printf ("from buddy %u device %u", b, d);
          g_autofree char *from_buddy = encrypt_one (&buddies[b][d], ALICE, from_text);

          assert_receives (&buddies[b][d], ALICE, to_buddy, to_text);
          assert_receives (&alice, name, from_buddy, from_text);
        }
    }
  /* Once more with every handle made: the cache goes round. */
  for (guint b = 0; b < N_BUDDIES; b += 7)
    {
      g_autofree char *name = g_strdup_printf ("buddy%u@example.test", b);
      g_autofree char *again = encrypt_one (&alice, name, "again");

      for (guint d = 0; d < DEVICES; d++)
        assert_receives (&buddies[b][d], ALICE, again, "again");
    }

  for (guint b = 0; b < N_BUDDIES; b++)
    for (guint d = 0; d < DEVICES; d++)
      side_clear (&buddies[b][d]);
  g_free (buddies);
  side_clear (&alice);
}

static void
test_many_peers (void)
{
  many_peers ();
}

/* The host initialised libgcrypt first with its own (small) secure pool,
 * as an application using GnuTLS or libgcrypt directly does. */
static void
host_init_secmem (void)
{
  g_assert_nonnull (gcry_check_version (NULL));
  gcry_control (GCRYCTL_SUSPEND_SECMEM_WARN);
  gcry_control (GCRYCTL_INIT_SECMEM, 16384, 0);
  gcry_control (GCRYCTL_RESUME_SECMEM_WARN);
  gcry_control (GCRYCTL_INITIALIZATION_FINISHED, 0);
}

#ifdef HAVE_LIBOTR
/* pidgin-otr's start-up: libotr's own initialisation, which installs
 * process-wide libgcrypt allocation handlers (secure memory then grows
 * without bound), before any other plugin runs. */
static void
host_init_libotr (void)
{
  OTRL_INIT;
}
#endif

static void
test_host_secmem (void)
{
  if (g_test_subprocess ())
    {
      many_peers ();
      return;
    }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

static void
test_host_libotr (void)
{
#ifdef HAVE_LIBOTR
  if (g_test_subprocess ())
    {
      many_peers ();
      return;
    }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
#else
  g_test_skip ("libotr not found at build time");
#endif
}

/* The cache itself: at its limit only the least recently used handle is
 * closed, so the handles of one envelope's recipients stay valid. */
static void
test_cache_limit (void)
{
  g_autoptr (E2eeAeadCache) cache = e2ee_aead_cache_new (0);
  guint8 keys[E2EE_AEAD_CACHE_MIN + 32][E2EE_AEAD_KEY_LEN];
  E2eeAead *held[32];
  guint8 iv[E2EE_AEAD_IV_LEN] = { 0 }, ct[5], tag[E2EE_AEAD_TAG_LEN], pt[5];
  g_autoptr (GError) error = NULL;

  gcry_randomize (keys, sizeof keys, GCRY_WEAK_RANDOM);
  for (guint i = 0; i < E2EE_AEAD_CACHE_MIN - 16; i++)
    g_assert_nonnull (e2ee_aead_cache_get (cache, keys[i], &error));
  /* 32 handles for one envelope, crossing the limit half way. */
  for (guint i = 0; i < 32; i++)
    held[i] = e2ee_aead_cache_get (cache, keys[E2EE_AEAD_CACHE_MIN - 16 + i], &error);
  g_assert_no_error (error);
  g_assert_cmpuint (e2ee_aead_cache_size (cache), ==, E2EE_AEAD_CACHE_MIN);
  for (guint i = 0; i < 32; i++)
    {
      g_autoptr (E2eeAead) fresh = e2ee_aead_new (keys[E2EE_AEAD_CACHE_MIN - 16 + i], &error);

      g_assert_true (e2ee_aead_seal (held[i], iv, NULL, 0, (const guint8 *) "hello", 5, ct,
                                     tag, &error));
      g_assert_true (e2ee_aead_open (fresh, iv, NULL, 0, ct, 5, tag, pt, &error));
      g_assert_no_error (error);
      g_assert_cmpmem (pt, 5, "hello", 5);
      /* Looking a held key up again gives the same handle. */
      g_assert_true (e2ee_aead_cache_get (cache, keys[E2EE_AEAD_CACHE_MIN - 16 + i], NULL)
                     == held[i]);
    }
  e2ee_wipe (keys, sizeof keys);
}

/* A duplicate: dropped without a word (nothing shown, no error). */
static void
assert_dropped (Side *to, const char *from_name, const char *armored)
{
  E2eeRecvResult r;

  e2ee_context_receive (to->ctx, to->account, from_name, armored, 1, &r);
  g_assert_no_error (r.error);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_PENDING);
  g_assert_null (r.plaintext);
  e2ee_recv_result_clear (&r);
}

static void
pair_up (Side *alice, Side *bob)
{
  g_autoptr (GPtrArray) a = NULL;
  g_autoptr (GPtrArray) b = NULL;

  side_init (alice, ALICE);
  side_init (bob, "bob@example.test");
  a = e2ee_context_own_keyset (alice->ctx, alice->account);
  b = e2ee_context_own_keyset (bob->ctx, bob->account);
  learn (bob, ALICE, a);
  learn (alice, "bob@example.test", b);
}

/* The replay window is 64 messages, with counters as real clocks give
 * them (10 ms ticks, seconds apart): a message overtaken by one sent
 * later is accepted exactly once. */
/* Order and duplicates come from the ratchet's message numbers, not from
 * clocks: messages sent a second apart arrive in any order and each is
 * shown exactly once; every repeat is dropped silently. */
static void
test_reordering (void)
{
  Side alice, bob;
  char *m[70];

  pair_up (&alice, &bob);
  for (guint i = 0; i < G_N_ELEMENTS (m); i++)
    {
      g_autofree char *text = g_strdup_printf ("message %u", i);
      m[i] = encrypt_one (&alice, "bob@example.test", text);
    }
  /* m1 overtakes m0: both accepted, once each. */
  assert_receives (&bob, ALICE, m[1], "message 1");
  assert_receives (&bob, ALICE, m[0], "message 0");
  assert_dropped (&bob, ALICE, m[0]);
  assert_dropped (&bob, ALICE, m[1]);
  /* The newest first, then back to m2: all of them open (skipped keys). */
  assert_receives (&bob, ALICE, m[69], "message 69");
  for (guint i = 68; i >= 2; i--)
    {
      g_autofree char *text = g_strdup_printf ("message %u", i);
      assert_receives (&bob, ALICE, m[i], text);
    }
  for (guint i = 0; i < G_N_ELEMENTS (m); i++)
    assert_dropped (&bob, ALICE, m[i]);

  for (guint i = 0; i < G_N_ELEMENTS (m); i++)
    g_free (m[i]);
  side_clear (&alice);
  side_clear (&bob);
}

/* A clock that jumps (far beyond 2^40 ticks, or back by years) changes
 * nothing for a running session: no time is on the wire. */
static void
test_clock_jump (void)
{
  Side alice, bob;
  char *m;

  pair_up (&alice, &bob);
  m = encrypt_one (&alice, "bob@example.test", "before");
  assert_receives (&bob, ALICE, m, "before");
  g_free (m);

  set_clock (T_PAST_RANGE, 0);
  m = encrypt_one (&alice, "bob@example.test", "far ahead");
  assert_receives (&bob, ALICE, m, "far ahead");
  g_free (m);
  m = encrypt_one (&bob, ALICE, "answer from the future");
  assert_receives (&alice, "bob@example.test", m, "answer from the future");
  g_free (m);

  set_clock (T_2026, 500);
  m = encrypt_one (&alice, "bob@example.test", "back again");
  assert_receives (&bob, ALICE, m, "back again");
  g_free (m);

  clock_set = FALSE;
  side_clear (&alice);
  side_clear (&bob);
}

int
main (int argc, char **argv)
{
  const char *path = NULL;
  gboolean subprocess = FALSE;

  /* A subprocess plays a host that set libgcrypt up before us. */
  for (int i = 1; i < argc; i++)
    {
      if (strcmp (argv[i], "--GTestSubprocess") == 0)
        subprocess = TRUE;
      else if (strcmp (argv[i], "-p") == 0 && i + 1 < argc)
        path = argv[i + 1];
    }
  if (subprocess && g_strcmp0 (path, "/resources/host-secmem") == 0)
    host_init_secmem ();
#ifdef HAVE_LIBOTR
  if (subprocess && g_strcmp0 (path, "/resources/host-libotr") == 0)
    host_init_libotr ();
#endif
  e2ee_test_init (&argc, &argv);
  g_test_add_func ("/resources/cache-limit", test_cache_limit);
  g_test_add_func ("/resources/many-peers", test_many_peers);
  g_test_add_func ("/resources/host-secmem", test_host_secmem);
  g_test_add_func ("/resources/host-libotr", test_host_libotr);
  g_test_add_func ("/resources/reordering", test_reordering);
  g_test_add_func ("/resources/clock-jump", test_clock_jump);
  return g_test_run ();
}
