/* Two rows of modules per line with the Unicode half blocks, as
 * `qrencode -t UTF8` draws them: a drawn half is a light module, so the code
 * reads right on a light-on-dark terminal; on a terminal stdout gets fixed
 * colours (white on black) so that the theme does not matter. The quiet zone
 * is 2 modules, as qrencode's text output. */
#include "qr.h"

#include <unistd.h>

#ifdef HAVE_QRENCODE
#include <qrencode.h>

#define QR_MARGIN 2

/* Whether the module at @x, @y is dark; outside the symbol is the quiet zone. */
static gboolean
qr_dark (const QRcode *qr, int x, int y)
{
  if (x < 0 || y < 0 || x >= qr->width || y >= qr->width)
    return FALSE;
  return (qr->data[y * qr->width + x] & 1) != 0;
}

gboolean
qr_print (FILE *out, const char *text, GError **error)
{
  /* "▀" upper half, "▄" lower half, "█" both, " " none: the light ones. */
  static const char *const halves[4] = { "\u2588", "\u2580", "\u2584", " " };
  gboolean colour = isatty (fileno (out));
  QRcode *qr = QRcode_encodeString (text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);

  if (qr == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot make a QR code of %s",
                   text);
      return FALSE;
    }
  for (int y = -QR_MARGIN; y < qr->width + QR_MARGIN; y += 2)
    {
      if (colour)
        fputs ("\033[97;40m", out);
      for (int x = -QR_MARGIN; x < qr->width + QR_MARGIN; x++)
        fputs (halves[qr_dark (qr, x, y) * 2 + qr_dark (qr, x, y + 1)], out);
      fputs (colour ? "\033[0m\n" : "\n", out);
    }
  QRcode_free (qr);
  return TRUE;
}
#else
gboolean
qr_print (FILE *out, const char *text, GError **error)
{
  g_set_error (
      error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
      "--qr: this p2ptun-agent was built without libqrencode (meson option qrencode)");
  return FALSE;
}
#endif
