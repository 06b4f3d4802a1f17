/* A STUN/TURN address to and from a socket address; see addr.h. */
#include "addr.h"

#include <netinet/in.h>
#include <string.h>

void
relay_addr_from_sockaddr (const struct sockaddr_storage *ss, struct stun_addr *out)
{
  memset (out, 0, sizeof *out);
  if (ss->ss_family == AF_INET6)
    {
      const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
      out->family = 6;
      out->port = ntohs (s6->sin6_port);
      memcpy (out->ip, &s6->sin6_addr, 16);
    }
  else
    {
      const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
      out->family = 4;
      out->port = ntohs (s4->sin_port);
      memcpy (out->ip, &s4->sin_addr, 4);
    }
}

socklen_t
relay_addr_to_sockaddr (const struct stun_addr *a, struct sockaddr_storage *ss)
{
  memset (ss, 0, sizeof *ss);
  if (a->family == 6)
    {
      struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
      s6->sin6_family = AF_INET6;
      s6->sin6_port = htons (a->port);
      memcpy (&s6->sin6_addr, a->ip, 16);
      return sizeof *s6;
    }
  struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
  s4->sin_family = AF_INET;
  s4->sin_port = htons (a->port);
  memcpy (&s4->sin_addr, a->ip, 4);
  return sizeof *s4;
}
