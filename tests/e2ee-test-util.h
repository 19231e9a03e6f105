/* Helpers shared by the unit tests.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

/* Path of a file under tests/ (the source folder).  Free with g_free. */
char *e2ee_test_data_path (const char *relative);

/* Parses a JSON file under tests/; aborts the test on failure. */
JsonNode *e2ee_test_load_json (const char *relative);

/* Decodes lower/upper-case hex; aborts the test on bad input. */
guint8 *e2ee_test_unhex (const char *hex, gsize *len);
char *e2ee_test_hex (const guint8 *data, gsize len);

/* Initialises libgcrypt as an application would. */
void e2ee_test_init (int *argc, char ***argv);
