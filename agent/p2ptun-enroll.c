/* libp2ptun's enrollment: an identity presents a token to a signaling
 * server once (POST /v1/enroll, signaling/API.md), as a GTask over one
 * Sigclient on the thread-default main context. */
#include "p2ptun-private.h"

#include "sigclient.h"

/* The task's source tag: an object's address, as ISO C converts no
 * function pointer to void *. */
static char enroll_tag;

typedef struct
{
  P2ptunIdentity *identity; /* the Sigclient borrows its Identity */
  Sigclient *sig;
  GSource *cancelled;
} Enroll;

static void
enroll_free (Enroll *e)
{
  if (e->cancelled != NULL)
    {
      g_source_destroy (e->cancelled);
      g_source_unref (e->cancelled);
    }
  sigclient_free (e->sig);
  p2ptun_identity_unref (e->identity);
  g_free (e);
}

/* The request's answer. It holds a reference to the task, and the
 * cancellable's source another, which its destroy notify drops. */
static void
enroll_on_done (Sigclient *sig, gboolean already, const GError *error, gpointer data)
{
  g_autoptr (GTask) task = data;
  Enroll *e = g_task_get_task_data (task);

  /* Freeing the client from its own callback is allowed (sigclient.c). */
  g_clear_pointer (&e->sig, sigclient_free);
  if (e->cancelled != NULL)
    {
      g_source_destroy (e->cancelled);
      g_clear_pointer (&e->cancelled, g_source_unref);
    }
  if (error != NULL)
    g_task_return_new_error (task, P2PTUN_ERROR, error_from_sigclient (error), "%s",
                             error->message);
  else
    g_task_return_int (task, already);
}

static gboolean
enroll_on_cancelled (GCancellable *cancellable, gpointer data)
{
  GTask *task = data; /* the source's reference, until this returns */
  Enroll *e = g_task_get_task_data (task);

  g_clear_pointer (&e->cancelled, g_source_unref);
  if (e->sig == NULL)
    return G_SOURCE_REMOVE;
  /* The request goes with the client, never to call enroll_on_done: the
   * reference it held is dropped here. */
  g_clear_pointer (&e->sig, sigclient_free);
  g_task_return_error_if_cancelled (task);
  g_object_unref (task);
  return G_SOURCE_REMOVE;
}

void
p2ptun_enroll_async (P2ptunIdentity *identity, const char *url, const char *pin,
                     const char *token, GCancellable *cancellable,
                     GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = NULL;
  g_autoptr (GMainContext) context = g_main_context_ref_thread_default ();
  GError *error = NULL;
  Enroll *e;

  g_return_if_fail (identity != NULL && url != NULL && token != NULL);
  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, &enroll_tag);
  g_task_set_name (task, "p2ptun_enroll_async");
  e = g_new0 (Enroll, 1);
  e->identity = p2ptun_identity_ref (identity);
  g_task_set_task_data (task, e, (GDestroyNotify)enroll_free);

  e->sig = sigclient_new (context, url, pin, identity->identity, &error);
  if (e->sig == NULL)
    {
      g_task_return_new_error (task, P2PTUN_ERROR, P2PTUN_ERROR_INVALID, "%s",
                               error->message);
      g_error_free (error);
      return;
    }
  sigclient_enroll (e->sig, token, enroll_on_done, g_object_ref (task));
  if (cancellable != NULL)
    {
      e->cancelled = g_cancellable_source_new (cancellable);
      g_source_set_callback (e->cancelled,
                             (GSourceFunc)(void (*) (void))enroll_on_cancelled,
                             g_object_ref (task), g_object_unref);
      g_source_attach (e->cancelled, context);
    }
}

gboolean
p2ptun_enroll_finish (GAsyncResult *result, gboolean *already, GError **error)
{
  gssize value;

  g_return_val_if_fail (g_task_is_valid (result, NULL), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == &enroll_tag, FALSE);
  value = g_task_propagate_int (G_TASK (result), error);
  if (already != NULL)
    *already = value > 0;
  return value >= 0;
}
