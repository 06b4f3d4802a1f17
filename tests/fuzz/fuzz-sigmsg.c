/* libFuzzer target for the signaling parsers. The first byte chooses the
 * parser, the rest is its input:
 *   0 sigmsg_parse (allow_from FALSE)   1 sigmsg_parse (allow_from TRUE)
 *   2 sigmsg_parse_batch                3 sigmsg_ice_servers_parse
 *   4 sigmsg_split_host_port            5 sigmsg_turn_uri_split
 * Whatever parses must serialise (no critical from the builders) and parse
 * again to the same values. */
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "fuzz.h"
#include "sigmsg.h"

enum
{
  FUZZ_PARSE,
  FUZZ_PARSE_FROM,
  FUZZ_BATCH,
  FUZZ_ICE,
  FUZZ_HOSTPORT,
  FUZZ_TURN_URI,
  FUZZ_MODES,
};

static void
fuzz_same_str (const char *a, const char *b)
{
  if (g_strcmp0 (a, b) != 0)
    abort ();
}

static void
fuzz_same_msg (const Sigmsg *a, const Sigmsg *b)
{
  if (a->type != b->type)
    abort ();
  fuzz_same_str (a->session, b->session);
  fuzz_same_str (a->from, b->from);
  fuzz_same_str (a->ufrag, b->ufrag);
  fuzz_same_str (a->pwd, b->pwd);
  fuzz_same_str (a->candidate, b->candidate);
  fuzz_same_str (a->reason, b->reason);
  fuzz_same_str (a->text, b->text);
}

static void
fuzz_parse (const char *json, size_t len, gboolean allow_from)
{
  g_autoptr (Sigmsg) msg = sigmsg_parse (json, len, allow_from, NULL);
  if (msg == NULL)
    return;
  if (!allow_from && msg->from[0] != '\0')
    abort ();
  gsize out_len;
  g_autofree char *out = sigmsg_to_json (msg, &out_len);
  if (out == NULL)
    abort ();
  g_autoptr (Sigmsg) again = sigmsg_parse (out, out_len, allow_from, NULL);
  if (again == NULL)
    abort ();
  fuzz_same_msg (msg, again);
}

static void
fuzz_batch (const char *json, size_t len)
{
  g_autoptr (GPtrArray) msgs = sigmsg_parse_batch (json, len, NULL);
  if (msgs == NULL)
    return;
  if (msgs->len > SIGMSG_MAX_BATCH)
    abort ();
  gsize out_len;
  g_autofree char *out
      = sigmsg_batch_to_json ((Sigmsg *const *)msgs->pdata, msgs->len, &out_len);
  if (out == NULL)
    abort ();
  g_autoptr (GPtrArray) again = sigmsg_parse_batch (out, out_len, NULL);
  if (again == NULL || again->len != msgs->len)
    abort ();
  for (guint i = 0; i < msgs->len; i++)
    fuzz_same_msg (msgs->pdata[i], again->pdata[i]);
}

static void
fuzz_ice (const char *json, size_t len)
{
  g_autoptr (SigmsgIceServers) servers = sigmsg_ice_servers_parse (json, len, NULL);
  if (servers == NULL)
    return;
  gsize out_len;
  g_autofree char *out = sigmsg_ice_servers_to_json (servers, &out_len);
  if (out == NULL)
    abort ();
  g_autoptr (SigmsgIceServers) again = sigmsg_ice_servers_parse (out, out_len, NULL);
  if (again == NULL || again->stun->len != servers->stun->len
      || again->turn->len != servers->turn->len)
    abort ();
  for (guint i = 0; i < servers->stun->len; i++)
    fuzz_same_str (servers->stun->pdata[i], again->stun->pdata[i]);
  for (guint i = 0; i < servers->turn->len; i++)
    {
      const SigmsgTurnServer *a = servers->turn->pdata[i], *b = again->turn->pdata[i];
      fuzz_same_str (a->uri, b->uri);
      fuzz_same_str (a->username, b->username);
      fuzz_same_str (a->password, b->password);
    }
}

static void
fuzz_hostport (const char *s)
{
  g_autofree char *host = NULL;
  guint16 port = 0;
  if (!sigmsg_split_host_port (s, &host, &port))
    return;
  if (port == 0 || host == NULL || host[0] == '\0')
    abort ();
  /* The host comes back out of the string, so s is host:port or [host]:port. */
  g_autofree char *plain = g_strdup_printf ("%s:%u", host, port);
  g_autofree char *bracketed = g_strdup_printf ("[%s]:%u", host, port);
  if (strcmp (s, plain) != 0 && strcmp (s, bracketed) != 0)
    abort ();
}

static void
fuzz_turn_uri (const char *s)
{
  g_autofree char *host = NULL;
  guint16 port = 0;
  SigmsgTurnTransport t;
  if (!sigmsg_turn_uri_split (s, &host, &port, &t))
    return;
  if (port == 0 || host == NULL || t > SIGMSG_TURN_TLS)
    abort ();
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static gboolean init;
  if (!init)
    {
      /* A critical from a builder means parse and build disagree. */
      g_log_set_always_fatal (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
      init = TRUE;
    }
  if (size < 1)
    return 0;

  int mode = data[0] % FUZZ_MODES;
  size_t len = size - 1;
  /* An exact-size copy, so that ASan catches reads past the input; the NUL
   * is there only for the string functions, the JSON parsers get @len. */
  char *s = g_malloc (len + 1);
  memcpy (s, data + 1, len);
  s[len] = '\0';

  switch (mode)
    {
    case FUZZ_PARSE:
      fuzz_parse (s, len, FALSE);
      break;
    case FUZZ_PARSE_FROM:
      fuzz_parse (s, len, TRUE);
      break;
    case FUZZ_BATCH:
      fuzz_batch (s, len);
      break;
    case FUZZ_ICE:
      fuzz_ice (s, len);
      break;
    case FUZZ_HOSTPORT:
      fuzz_hostport (s);
      break;
    case FUZZ_TURN_URI:
      fuzz_turn_uri (s);
      break;
    }
  g_free (s);
  return 0;
}
