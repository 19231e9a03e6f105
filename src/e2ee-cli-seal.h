/* purple-e2ee — the "seal" and "open" commands of the command-line tool
 * (one-shot protocol v2 session starts), and the input helpers of
 * e2ee-cli.c they share.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "e2ee-jwk.h"

/* argv[0] is the command name.  Return the exit status. */
int e2ee_cli_seal (int argc, char **argv);
int e2ee_cli_open (int argc, char **argv);

/* In e2ee-cli.c. */
/* The whole of @path, or stdin for NULL / "-" (at most 1 MiB), in a buffer
 * of *@len + 1 bytes (NUL-terminated) to free with e2ee_secret_free. */
char *e2ee_cli_read_input (const char *path, gsize *len, GError **error);
E2eeKey *e2ee_cli_load_key (const char *path, E2eeKeyExpect expect, GError **error);
/* A public JWK or a JWK Set of them (E2eeKey*, owning). */
GPtrArray *e2ee_cli_load_public_keys (const char *path, GError **error);
/* UTF-8 text without NUL (E2EE_ERROR_ENVELOPE_TRAILING otherwise). */
gboolean e2ee_cli_check_plaintext (const char *text, gsize len, GError **error);
/* Print and free @error: exit status 1. */
int e2ee_cli_fail (GError *error);
/* Print @message and a pointer to --help: exit status 2. */
int e2ee_cli_usage_error (const char *message);
gboolean e2ee_cli_wants_help (int argc, char **argv);
