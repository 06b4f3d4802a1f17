/* The operator's commands of p2ptun-signal: enroll, peers, revoke, tokens
 * and policy. Each reaches the server running on --state-dir through its
 * admin socket, or, when none runs, edits the directory's access.json
 * itself under the directory's lock. */
#pragma once

#include <glib.h>

/* Whether @name is one of the commands. */
gboolean admin_cli_is_command (const char *name);
/* Runs the command in argv[1]; returns the exit status. */
int admin_cli_main (int argc, char **argv);
