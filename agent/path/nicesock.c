/* libnice's sockets of a component, made fit for the tunnel; see nicesock.h. */
#include "nicesock.h"

#include <netinet/in.h>

#include <nice/interfaces.h>
#include <sys/socket.h>

/* A tunnel sends bursts of a window's worth of datagrams per stream: the
 * default socket buffers (208 KiB) overflow on a fast path, and every drop
 * costs the reliable layer a retransmission timeout. 16 MiB holds the windows
 * of 64 busy streams. */
#define NICESOCK_BUFFER (16 * 1024 * 1024)

/* UDP datagrams leave with Don't Fragment and are never split by this
 * host: a record larger than the path carries is lost whole, which is what
 * the transport's MTU probes detect. (Linux's default fragments datagrams
 * larger than the interface MTU; a probe would then pass in pieces that
 * many NATs and firewalls drop.) */
static void
forbid_fragments (GSocket *socket)
{
  int fd = g_socket_get_fd (socket);
  int v4 = IP_PMTUDISC_DO, v6 = IPV6_PMTUDISC_DO;

  if (g_socket_get_socket_type (socket) != G_SOCKET_TYPE_DATAGRAM)
    return;
  if (g_socket_get_family (socket) == G_SOCKET_FAMILY_IPV6)
    (void) setsockopt (fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &v6, sizeof v6);
  else
    (void) setsockopt (fd, IPPROTO_IP, IP_MTU_DISCOVER, &v4, sizeof v4);
}

void
nicesock_tune (NiceAgent *agent, guint stream_id, guint component_id)
{
  g_autoptr (GPtrArray) sockets = nice_agent_get_sockets (agent, stream_id, component_id);

  for (guint i = 0; sockets && i < sockets->len; i++)
    {
      int fd = g_socket_get_fd (sockets->pdata[i]);
      int size = NICESOCK_BUFFER;

      /* Past net.core.rmem_max only with CAP_NET_ADMIN; otherwise the
       * kernel's maximum. */
      if (setsockopt (fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
        (void) setsockopt (fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
      if (setsockopt (fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) < 0)
        (void) setsockopt (fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
      forbid_fragments (sockets->pdata[i]);
    }
}

static gboolean
add_local_address (NiceAgent *agent, const char *text)
{
  NiceAddress addr;

  nice_address_init (&addr);
  if (!nice_address_set_from_string (&addr, text))
    return FALSE;
  nice_agent_add_local_address (agent, &addr);
  return TRUE;
}

gboolean
nicesock_set_local_addresses (NiceAgent *agent, const char *const *given,
                              gboolean loopback_needed, GError **error)
{
  GList *all;

  if (given && given[0])
    {
      for (guint i = 0; given[i]; i++)
        if (!add_local_address (agent, given[i]))
          {
            g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                         "not an IP address: %s", given[i]);
            return FALSE;
          }
      return TRUE;
    }
  if (!loopback_needed)
    return TRUE;
  all = nice_interfaces_get_local_ips (TRUE);
  for (GList *l = all; l; l = l->next)
    if (!add_local_address (agent, l->data))
      g_debug ("skipping local address %s", (const char *) l->data);
  g_list_free_full (all, g_free);
  return TRUE;
}
