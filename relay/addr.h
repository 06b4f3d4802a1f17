/* A STUN/TURN address (stun.h) to and from a socket address: the relay's
 * sockets and its bench's load generator speak both. */
#pragma once

#include <sys/socket.h>

#include "stun.h"

void relay_addr_from_sockaddr (const struct sockaddr_storage *ss, struct stun_addr *out);
/* Returns the length of the address written. */
socklen_t relay_addr_to_sockaddr (const struct stun_addr *a, struct sockaddr_storage *ss);
