/* libsonly: a program that loads libp2ptun and the libraries it needs, and
 * does nothing: the anchor of the idle bench's memory figures.  Its VmRSS is
 * what the dynamic loader alone maps in (page tables touched by relocation
 * and library constructors), before an agent runs a line of its own code.
 *
 *   libsonly     prints "ready" and waits until stdin closes
 */
#include <stdio.h>
#include <unistd.h>

#include <p2ptun/p2ptun.h>

int
main (void)
{
  char c;

  /* A reference to libp2ptun, or --as-needed would drop it and its
   * libraries with it; a call, so the compiler keeps it. */
  if (p2ptun_version_string () == NULL)
    return 1;
  puts ("ready");
  fflush (stdout);
  while (read (STDIN_FILENO, &c, 1) > 0)
    ;
  return 0;
}
