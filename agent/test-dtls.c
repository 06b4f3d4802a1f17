/* Unit tests of agent/dtls.c: two sessions joined in memory, a handshake,
 * records both ways, and a session that must not take another connection's
 * stale OpenSSL error for its own. */
#include "dtls.h"

#include <string.h>

#include <glib/gstdio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

/* Records in flight from one side to the other. */
typedef struct
{
  GPtrArray *records; /* GBytes */
  GByteArray *received;
  gboolean connected;
  GError *error;
} Side;

typedef struct
{
  char *root;
  Identity *id[2];
  Side side[2];
  Dtls *dtls[2];
  GMainContext *context;
} Fixture;

static void
on_send_record (const guint8 *buf, gsize len, gpointer data)
{
  Side *side = data;

  g_ptr_array_add (side->records, g_bytes_new (buf, len));
}

static void
on_connected (gpointer data)
{
  ((Side *) data)->connected = TRUE;
}

static void
on_data (const guint8 *buf, gsize len, gpointer data)
{
  g_byte_array_append (((Side *) data)->received, buf, (guint) len);
}

static void
on_failed (const GError *error, gpointer data)
{
  Side *side = data;

  g_clear_error (&side->error);
  side->error = g_error_copy (error);
}

static const DtlsCallbacks callbacks = {
  .send_record = on_send_record,
  .connected = on_connected,
  .data = on_data,
  .failed = on_failed,
};

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->root = g_dir_make_tmp ("p2ptun-test-dtls-XXXXXX", &error);
  g_assert_no_error (error);
  f->context = g_main_context_new ();
  for (int i = 0; i < 2; i++)
    {
      g_autofree char *dir = g_strdup_printf ("%s/%d", f->root, i);

      f->id[i] = identity_load_or_create (dir, &error);
      g_assert_no_error (error);
      f->side[i].records = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
      f->side[i].received = g_byte_array_new ();
    }
  /* Side 0 is the client and expects side 1's peer-id, and the reverse. */
  for (int i = 0; i < 2; i++)
    {
      f->dtls[i] = dtls_new (f->context, f->id[i], i == 0, f->id[1 - i]->peer_id, &callbacks,
                             &f->side[i], &error);
      g_assert_no_error (error);
    }
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  for (int i = 0; i < 2; i++)
    {
      g_autofree char *dir = g_strdup_printf ("%s/%d", f->root, i);

      dtls_free (f->dtls[i]);
      g_unlink (f->id[i]->key_path);
      g_unlink (f->id[i]->cert_path);
      g_rmdir (dir);
      identity_free (f->id[i]);
      g_ptr_array_unref (f->side[i].records);
      g_byte_array_unref (f->side[i].received);
      g_clear_error (&f->side[i].error);
    }
  g_rmdir (f->root);
  g_free (f->root);
  g_main_context_unref (f->context);
}

/* Delivers what each side sent to the other until nothing moves (bounded). */
static void
pump (Fixture *f)
{
  for (int round = 0; round < 64; round++)
    {
      gboolean moved = FALSE;

      for (int i = 0; i < 2; i++)
        {
          g_autoptr (GPtrArray) batch = f->side[i].records;

          f->side[i].records = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
          for (guint r = 0; r < batch->len; r++)
            {
              gsize len;
              const guint8 *buf = g_bytes_get_data (batch->pdata[r], &len);

              dtls_receive (f->dtls[1 - i], buf, len);
              moved = TRUE;
            }
        }
      if (!moved)
        return;
    }
  g_assert_not_reached ();
}

static void
handshake (Fixture *f)
{
  dtls_start (f->dtls[1]);
  dtls_start (f->dtls[0]);
  pump (f);
  for (int i = 0; i < 2; i++)
    {
      g_assert_no_error (f->side[i].error);
      g_assert_true (f->side[i].connected);
    }
}

static void
test_records (Fixture *f, gconstpointer data)
{
  static const char hello[] = "hello through DTLS";

  handshake (f);
  g_assert_true (dtls_send (f->dtls[0], (const guint8 *) hello, sizeof hello));
  g_assert_true (dtls_send (f->dtls[1], (const guint8 *) hello, sizeof hello));
  pump (f);
  for (int i = 0; i < 2; i++)
    {
      g_assert_cmpmem (f->side[i].received->data, f->side[i].received->len, hello,
                       sizeof hello);
    }
}

/* What libcurl left behind when the signaling server was killed with -9:
 * "shutdown while in init" on the thread's error queue. (OpenSSL 3.0's
 * handshake clears the queue itself; SSL_read and SSL_write do not.) */
static void
leave_stale_error (void)
{
  ERR_raise (ERR_LIB_SSL, SSL_R_SHUTDOWN_WHILE_IN_INIT);
}

static void
test_stale_error_in_session (Fixture *f, gconstpointer data)
{
  static const char payload[] = "a record after another connection's TLS failed";
  gsize len;
  const guint8 *buf;

  handshake (f);
  g_assert_true (dtls_send (f->dtls[0], (const guint8 *) payload, sizeof payload));
  g_assert_cmpuint (f->side[0].records->len, ==, 1);
  buf = g_bytes_get_data (f->side[0].records->pdata[0], &len);
  leave_stale_error ();
  dtls_receive (f->dtls[1], buf, len);
  g_assert_no_error (f->side[1].error);
  g_assert_cmpmem (f->side[1].received->data, f->side[1].received->len, payload,
                   sizeof payload);
  /* And sending with an error on the queue. */
  leave_stale_error ();
  g_assert_true (dtls_send (f->dtls[1], (const guint8 *) payload, sizeof payload));
  ERR_clear_error ();
}

/* RFC 5764: both sides agree on the profile (GCM first) and each one's
 * sending key is the other's receiving key; nothing before the handshake. */
static void
test_srtp_keys (Fixture *f, gconstpointer data)
{
  DtlsSrtpKeys keys[2];
  static const guint8 zero[sizeof keys[0].local] = { 0 };

  g_assert_false (dtls_srtp_keys (f->dtls[0], &keys[0]));
  g_assert_cmpint (keys[0].profile, ==, DTLS_SRTP_NONE);
  handshake (f);
  for (int i = 0; i < 2; i++)
    {
      g_assert_true (dtls_srtp_keys (f->dtls[i], &keys[i]));
      g_assert_cmpint (keys[i].profile, ==, DTLS_SRTP_AEAD_AES_128_GCM);
      g_assert_cmpuint (keys[i].salt_len, ==, 12);
      g_assert_cmpstr (dtls_srtp_profile_name (keys[i].profile), ==, "SRTP_AEAD_AES_128_GCM");
    }
  g_assert_cmpmem (keys[0].local, sizeof keys[0].local, keys[1].remote, sizeof keys[1].remote);
  g_assert_cmpmem (keys[0].remote, sizeof keys[0].remote, keys[1].local, sizeof keys[1].local);
  g_assert_true (memcmp (keys[0].local, keys[0].remote, sizeof keys[0].local) != 0);
  g_assert_true (memcmp (keys[0].local, zero, sizeof zero) != 0);
  for (int i = 0; i < 2; i++)
    {
      dtls_srtp_keys_clear (&keys[i]);
      g_assert_cmpmem (keys[i].local, sizeof keys[i].local, zero, sizeof zero);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(name, fn) \
  g_test_add (name, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("/dtls/records", test_records);
  ADD ("/dtls/stale-error-in-session", test_stale_error_in_session);
  ADD ("/dtls/srtp-keys", test_srtp_keys);
#undef ADD
  return g_test_run ();
}
