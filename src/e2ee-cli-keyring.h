/* purple-e2ee — the "keyring" command of the command-line tool.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* argv[0] is "keyring".  Returns the exit status. */
int e2ee_cli_keyring (int argc, char **argv);
