/* A peer-id as a QR code drawn in the terminal (libqrencode), for a phone's
 * camera. */
#pragma once

#include <stdio.h>

#include <gio/gio.h>

/* Draws @text on @out as a QR code; FALSE (and @error set) when it cannot,
 * also when p2ptun-agent was built without libqrencode. */
gboolean qr_print (FILE *out, const char *text, GError **error);
