/* 'p2ptun-agent status': asks every running agent of a config directory on
 * its control socket (control.h) and prints their tunnels. */
#pragma once

#include <glib.h>

/* The version of the JSON that status --json prints (docs/status.md). */
#define STATUS_JSON_VERSION 1

/* Prints the tunnels of the agents of @config_dir, as text or with @json as
 * JSON, on standard output. Returns the exit code: 1 when no agent
 * answered (said in one line on standard error). */
int status_main (const char *config_dir, gboolean json);
