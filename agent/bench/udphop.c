/* udphop: a bare UDP relay on loopback, the anchor of the bench's lockstep
 * round trip.  It forwards each datagram that reaches 127.0.0.1:PORT to
 * 127.0.0.1:TARGET and each reply back to the last sender: one poll, one
 * recv and one send per datagram, nothing else.  Two of them in a row cost
 * what any design with two processes in the path cannot go below.
 *
 *   udphop TARGET-PORT     prints "port N" and relays until stdin closes
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int
loopback_socket (unsigned short port, struct sockaddr_in *bound)
{
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons (port) };
  socklen_t len = sizeof a;
  int fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

  a.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  if (fd < 0 || bind (fd, (struct sockaddr *) &a, sizeof a) < 0
      || getsockname (fd, (struct sockaddr *) bound, &len) < 0)
    {
      perror ("udphop: socket");
      exit (1);
    }
  return fd;
}

int
main (int argc, char **argv)
{
  struct sockaddr_in down_addr, up_addr, target = { .sin_family = AF_INET }, client;
  socklen_t client_len = 0;
  unsigned char buf[65536];
  char *end;
  long port;
  int down, up;

  if (argc != 2 || (port = strtol (argv[1], &end, 10)) <= 0 || port > 65535 || *end)
    {
      fprintf (stderr, "usage: udphop TARGET-PORT (on 127.0.0.1)\n");
      return 2;
    }
  target.sin_port = htons ((unsigned short) port);
  target.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  down = loopback_socket (0, &down_addr);
  up = loopback_socket (0, &up_addr);
  if (connect (up, (struct sockaddr *) &target, sizeof target) < 0)
    {
      perror ("udphop: connect");
      return 1;
    }
  printf ("port %u\n", ntohs (down_addr.sin_port));
  fflush (stdout);
  for (;;)
    {
      struct pollfd fds[3] = {
        { .fd = down, .events = POLLIN },
        { .fd = up, .events = POLLIN },
        { .fd = STDIN_FILENO, .events = POLLIN },
      };
      ssize_t n;

      if (poll (fds, 3, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          perror ("udphop: poll");
          return 1;
        }
      if (fds[2].revents)
        return 0; /* stdin closed (or data on it): the bench is done */
      if (fds[0].revents & POLLIN)
        {
          client_len = sizeof client;
          n = recvfrom (down, buf, sizeof buf, 0, (struct sockaddr *) &client, &client_len);
          if (n >= 0)
            (void) send (up, buf, (size_t) n, 0);
        }
      if (fds[1].revents & POLLIN)
        {
          n = recv (up, buf, sizeof buf, 0);
          if (n >= 0 && client_len > 0)
            (void) sendto (down, buf, (size_t) n, 0, (struct sockaddr *) &client, client_len);
        }
    }
}
