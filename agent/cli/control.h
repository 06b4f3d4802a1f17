/* The control socket of a running p2ptun-agent (serve or pair): what
 * 'p2ptun-agent status' asks. One socket per process, <dir>/<pid>.sock,
 * where <dir> is the config directory's runtime directory:
 *   $XDG_RUNTIME_DIR/p2ptun/<hash>/  when XDG_RUNTIME_DIR is set, <hash> the
 *                                   first 16 hex digits of the SHA-256 of
 *                                   the config directory's real path;
 *   <config dir>/run/               otherwise.
 * Directories 0700, the socket 0600, callers of the same user or root only
 * (linesock.h). The request is the line "status"; the reply is one line of
 * JSON (docs/status.md, "p2ptun-agent status"). */
#pragma once

#include <p2ptun/p2ptun.h>

/* The version of the reply's envelope (docs/status.md). */
#define CONTROL_STATUS_VERSION 1
/* The largest request line taken. */
#define CONTROL_REQUEST_MAX 64

typedef struct _Control Control;

/* The runtime directory of @config_dir (owned by the caller). With @create,
 * made (0700) when missing. Refused when it, or $XDG_RUNTIME_DIR/p2ptun, is
 * not a directory of ours that only we may enter. */
char *control_dir (const char *config_dir, gboolean create, GError **error);

/* Listens on <control_dir>/<pid>.sock for @node (borrowed: free the control
 * first). @mode is "serve" or "pair"; @names maps peer-ids to the names of
 * --trust NAME=PEER-ID (referenced). */
Control *control_new (P2ptunNode *node, const char *config_dir, const char *mode,
                      const char *peer_id, GHashTable *names, GError **error);
/* Stops listening and removes the socket. NULL is fine. */
void control_free (Control *self);
