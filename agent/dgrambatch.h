/* Datagrams of the local UDP sockets of UDP forwards and services (-U,
 * --expose NAME=HOST:PORT/udp), read and written in batches: one
 * recvmmsg() or sendmmsg() for many datagrams, where a busy flow spent a
 * system call on each. Where the kernel has neither (ENOSYS), each
 * datagram takes its own recvmsg() or sendmsg(), as before.
 *
 * A batch is either read into (dgrambatch_recv) or filled to be sent
 * (dgrambatch_add, dgrambatch_send); it never allocates after
 * dgrambatch_new(). Its slots hold DGRAM_PAYLOAD_MAX bytes: a longer
 * datagram is read truncated, with its real length, and is too big for any
 * flow anyway. */
#pragma once

#include <glib.h>
#include <sys/socket.h>

/* The most slots of one batch. */
#define DGRAMBATCH_MAX 64

typedef struct _DgramBatch DgramBatch;

/* A batch of @n slots, 1 to DGRAMBATCH_MAX. */
DgramBatch *dgrambatch_new (guint n);
void dgrambatch_free (DgramBatch *batch);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DgramBatch, dgrambatch_free)

/* Tests: one datagram per system call, as when the kernel lacks the
 * batched calls. */
void dgrambatch_set_single (DgramBatch *batch, gboolean single);

/* The datagrams it holds (read, or queued to send), and its slots. */
guint dgrambatch_count (const DgramBatch *batch);
guint dgrambatch_capacity (const DgramBatch *batch);
/* Empties it. */
void dgrambatch_clear (DgramBatch *batch);

/* Empties it and reads what @fd holds, up to its capacity, without
 * waiting. Returns how many were read: 0 when there was none (EAGAIN),
 * -1 when reading failed (errno; an ICMP error of an earlier send on a
 * connected socket, say). Fewer than the capacity means the socket was
 * empty then. */
gint dgrambatch_recv (DgramBatch *batch, int fd);
/* The @i-th datagram read: its bytes and its real length, which is over
 * DGRAM_PAYLOAD_MAX when it was truncated (then only that much is there). */
const guint8 *dgrambatch_data (const DgramBatch *batch, guint i, gsize *len);
/* Who sent the @i-th datagram read. */
const struct sockaddr *dgrambatch_from (const DgramBatch *batch, guint i, socklen_t *len);

/* Queues a copy of @buf for @to (NULL on a connected socket). FALSE, with
 * nothing queued, when the batch is full or @len is over
 * DGRAM_PAYLOAD_MAX. */
gboolean dgrambatch_add (DgramBatch *batch, const guint8 *buf, gsize len,
                         const struct sockaddr *to, socklen_t to_len);
/* Sends what is queued on @fd, without waiting, and empties the batch.
 * Returns how many the socket refused (a full buffer, or an ICMP error on a
 * connected socket): they are lost, as UDP loses them; @error (may be NULL)
 * is the errno of the last of them. */
guint dgrambatch_send (DgramBatch *batch, int fd, int *error);
