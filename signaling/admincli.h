/* The operator's commands of p2ptun-signal: enroll, peers, revoke, tokens
 * and policy. Each reaches the server running on --state-dir through its
 * admin socket, or, when none runs, edits the directory's access.json
 * itself under the directory's lock. */
#pragma once

#include <glib.h>

/* Whether @name is one of the commands. */
gboolean admin_cli_is_command (const char *name);
/* Whether argv holds one of the commands, after nothing or after --state-dir
 * (-d) DIR only; if so, moves it to argv[1], in front of the --state-dir that
 * came before it (p2ptun-signal --state-dir DIR peers). */
gboolean admin_cli_command_first (int argc, char **argv);
/* Runs the command in argv[1]; returns the exit status. */
int admin_cli_main (int argc, char **argv);
