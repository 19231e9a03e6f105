/* purple-e2ee benchmarks — timing, medians and child processes shared by
 * the benchmark programs.  Depends on GLib only, so that the libotr
 * program can use it without pulling in the core library.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Monotonic clock in nanoseconds. */
gint64 bench_now_ns (void);

/* Runs @iters operations; returns nothing, aborts on failure (a benchmark
 * that silently measures an error path would report nonsense). */
typedef void (*BenchFunc) (gpointer data, guint iters);

/* Runs func (data, 1) once.  Never inlined: callgrind counts exactly this
 * call with --toggle-collect=bench_cg_measure. */
void bench_cg_measure (BenchFunc func, gpointer data);
/* bench_cg_measure for @repeat <= 1; else func (data, repeat), for timing
 * a whole process from outside (setup amortised over many operations). */
void bench_cg_run (BenchFunc func, gpointer data, guint repeat);

typedef struct {
  const char *key;        /* result key, e.g. "raw.gcm.1024" */
  BenchFunc func;
  gpointer data;
  guint iters;            /* operations per sample; 0: calibrate */
  double *samples;        /* ns per operation, one per repetition (owned) */
  guint n_samples;
} BenchCase;

/* Picks an iteration count so that one sample takes about @target_ns. */
guint bench_calibrate (BenchFunc func, gpointer data, gint64 target_ns);

/* Measures every case @reps times, interleaving the cases so that slow
 * drifts of a noisy machine hit them alike, and fills ->samples. */
void bench_run_interleaved (BenchCase *cases, guint n_cases, guint reps,
                            gint64 target_ns);
void bench_case_clear (BenchCase *c);

/* One more sample of every case (calibrated first when ->iters is 0),
 * appended to ->samples, which holds at most @max_reps.  Rounds of these
 * can be interleaved with work elsewhere (another process). */
void bench_run_round (BenchCase *cases, guint n_cases, guint max_reps, gint64 target_ns);

/* Median of @n values (the array is sorted in place). */
double bench_median (double *values, guint n);

/* Times a single call @reps times; returns the median in ns. */
double bench_time_once (BenchFunc func, gpointer data, guint reps);

/* Result lines: "<key> <value>\n" on stdout, the exchange format between
 * the benchmark programs. */
void bench_emit (const char *key, double value);

/* Results read back from such lines. */
GHashTable *bench_parse_results (const char *text);   /* key -> double* */
gboolean bench_lookup (GHashTable *results, const char *key, double *out);

/* Runs @argv (argv[0] a path) with stdout captured; fills *@out, the exit
 * status and the child's peak resident set size in KiB (from wait4's
 * rusage, so it covers that process alone).  FALSE if it could not run or
 * did not exit with status 0. */
gboolean bench_run_child (char **argv, char **out, long *maxrss_kib,
                          GError **error);

/* Peak resident set of this process so far, in KiB. */
long bench_self_maxrss_kib (void);

/* Fills @buf with printable text (benchmarks send chat messages). */
void bench_fill_text (char *buf, gsize len);

G_END_DECLS
