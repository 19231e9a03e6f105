/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench-util.h"

gint64
bench_now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (gint64) ts.tv_sec * G_GINT64_CONSTANT (1000000000) + ts.tv_nsec;
}

__attribute__ ((noinline)) void
bench_cg_measure (BenchFunc func, gpointer data)
{
  func (data, 1);
  /* Keeps the call from becoming a tail jump, which would hide this
   * frame from callgrind's toggle. */
  __asm__ volatile ("" ::: "memory");
}

void
bench_cg_run (BenchFunc func, gpointer data, guint repeat)
{
  if (repeat <= 1)
    bench_cg_measure (func, data);
  else
    func (data, repeat);
}

guint
bench_calibrate (BenchFunc func, gpointer data, gint64 target_ns)
{
  guint iters = 1;

  /* Doubles until one sample is long enough to dwarf the clock's cost,
   * then scales to the target; the first runs double as a warm-up. */
  for (;;)
    {
      gint64 t0 = bench_now_ns ();
      gint64 dt;

      func (data, iters);
      dt = bench_now_ns () - t0;
      if (dt >= target_ns / 4 || iters >= (1u << 24))
        {
          double scaled = (double) iters * (double) target_ns / (double) MAX (dt, 1);
          return (guint) CLAMP (scaled, 1.0, (double) (1u << 26));
        }
      iters *= 2;
    }
}

static void
bench_sample (BenchCase *c)
{
  gint64 t0 = bench_now_ns ();

  c->func (c->data, c->iters);
  c->samples[c->n_samples++] = (double) (bench_now_ns () - t0) / c->iters;
}

void
bench_run_interleaved (BenchCase *cases, guint n_cases, guint reps,
                       gint64 target_ns)
{
  for (guint i = 0; i < n_cases; i++)
    {
      BenchCase *c = &cases[i];

      if (c->iters == 0)
        c->iters = bench_calibrate (c->func, c->data, target_ns);
      g_free (c->samples);
      c->samples = g_new0 (double, reps);
      c->n_samples = 0;
    }
  for (guint r = 0; r < reps; r++)
    for (guint i = 0; i < n_cases; i++)
      bench_sample (&cases[i]);
}

void
bench_run_round (BenchCase *cases, guint n_cases, guint max_reps, gint64 target_ns)
{
  for (guint i = 0; i < n_cases; i++)
    {
      BenchCase *c = &cases[i];

      if (c->samples == NULL)
        {
          c->samples = g_new0 (double, max_reps);
          c->n_samples = 0;
        }
      if (c->iters == 0)
        c->iters = bench_calibrate (c->func, c->data, target_ns);
    }
  for (guint i = 0; i < n_cases; i++)
    if (cases[i].n_samples < max_reps)
      bench_sample (&cases[i]);
}

void
bench_case_clear (BenchCase *c)
{
  g_clear_pointer (&c->samples, g_free);
  c->n_samples = 0;
}

static int
bench_cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return (x > y) - (x < y);
}

double
bench_median (double *values, guint n)
{
  if (n == 0)
    return 0.0;
  qsort (values, n, sizeof *values, bench_cmp_double);
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2.0;
}

double
bench_time_once (BenchFunc func, gpointer data, guint reps)
{
  g_autofree double *s = g_new0 (double, MAX (reps, 1));

  for (guint r = 0; r < MAX (reps, 1); r++)
    {
      gint64 t0 = bench_now_ns ();

      func (data, 1);
      s[r] = (double) (bench_now_ns () - t0);
    }
  return bench_median (s, MAX (reps, 1));
}

void
bench_emit (const char *key, double value)
{
  printf ("%s %.6g\n", key, value);
  fflush (stdout);
}

GHashTable *
bench_parse_results (const char *text)
{
  GHashTable *h = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_auto (GStrv) lines = g_strsplit (text ? text : "", "\n", -1);

  for (guint i = 0; lines[i] != NULL; i++)
    {
      char *sp = strchr (lines[i], ' ');
      char *end = NULL;
      double v;

      if (sp == NULL || sp == lines[i])
        continue;
      v = g_ascii_strtod (sp + 1, &end);
      if (end == sp + 1 || *end != '\0')
        continue;
      {
        double *slot = g_new (double, 1);

        *slot = v;
        g_hash_table_replace (h, g_strndup (lines[i], sp - lines[i]), slot);
      }
    }
  return h;
}

gboolean
bench_lookup (GHashTable *results, const char *key, double *out)
{
  double *v = results ? g_hash_table_lookup (results, key) : NULL;

  if (v == NULL)
    return FALSE;
  *out = *v;
  return TRUE;
}

gboolean
bench_run_child (char **argv, char **out, long *maxrss_kib, GError **error)
{
  int fds[2];
  pid_t pid;
  GString *buf = g_string_new (NULL);
  struct rusage ru;
  int status = 0;
  char chunk[4096];
  ssize_t n;

  *out = NULL;
  *maxrss_kib = 0;
  if (pipe (fds) != 0)
    {
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno),
                   "pipe: %s", g_strerror (errno));
      g_string_free (buf, TRUE);
      return FALSE;
    }
  fflush (stdout);
  pid = fork ();
  if (pid < 0)
    {
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno),
                   "fork: %s", g_strerror (errno));
      close (fds[0]);
      close (fds[1]);
      g_string_free (buf, TRUE);
      return FALSE;
    }
  if (pid == 0)
    {
      /* exec at once: the child's peak RSS must not include the parent's
       * pages, which a plain fork would count. */
      dup2 (fds[1], STDOUT_FILENO);
      close (fds[0]);
      close (fds[1]);
      execv (argv[0], argv);
      _exit (127);
    }
  close (fds[1]);
  while ((n = read (fds[0], chunk, sizeof chunk)) != 0)
    {
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          break;
        }
      g_string_append_len (buf, chunk, n);
    }
  close (fds[0]);
  while (wait4 (pid, &status, 0, &ru) < 0)
    if (errno != EINTR)
      {
        g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno),
                     "wait4: %s", g_strerror (errno));
        g_string_free (buf, TRUE);
        return FALSE;
      }
  *maxrss_kib = ru.ru_maxrss;
  *out = g_string_free (buf, FALSE);
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    {
      g_set_error (error, G_SPAWN_ERROR, G_SPAWN_ERROR_FAILED,
                   "%s exited abnormally (status %d)", argv[0], status);
      return FALSE;
    }
  return TRUE;
}

long
bench_self_maxrss_kib (void)
{
  struct rusage ru;

  if (getrusage (RUSAGE_SELF, &ru) != 0)
    return 0;
  return ru.ru_maxrss;
}

void
bench_fill_text (char *buf, gsize len)
{
  static const char words[] = "the quick brown fox jumps over a lazy dog ";

  for (gsize i = 0; i < len; i++)
    buf[i] = words[i % (sizeof words - 1)];
}
