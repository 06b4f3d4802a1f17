/* Batched sending of datagrams to one destination on one UDP socket.
 *
 * The transport hands over a burst of DTLS records, one datagram each, and
 * then flushes: the burst leaves in one sendmmsg(), and with UDP GSO
 * (UDP_SEGMENT) every run of equal-size datagrams inside it is one message
 * that the kernel (or the NIC) cuts into datagrams. Mode by mode:
 *   UDPBATCH_GSO      sendmmsg of GSO runs (falls back to UDPBATCH_SENDMMSG
 *                     for good when the kernel or device refuses GSO);
 *   UDPBATCH_SENDMMSG sendmmsg of single datagrams;
 *   UDPBATCH_OFF      the caller sends each datagram itself (no batch).
 * P2PTUN_UDP_BATCH=off|sendmmsg|gso chooses at run time (default gso); see
 * docs/fast-path.md. No allocation after udpbatch_new(). */
#pragma once

#include <glib.h>
#include <sys/socket.h>

typedef enum
{
  UDPBATCH_OFF,
  UDPBATCH_SENDMMSG,
  UDPBATCH_GSO,
} UdpBatchMode;

/* Datagrams held until a flush; a full queue is sent at once. */
#define UDPBATCH_MAX_DATAGRAMS 64
/* Bytes held until a flush. */
#define UDPBATCH_MAX_BYTES (256 * 1024)
/* The largest datagram taken (a DTLS record of 16 KiB plaintext). */
#define UDPBATCH_DATAGRAM_MAX (16 * 1024 + 256)

typedef struct
{
  guint64 datagrams; /* handed to the kernel */
  guint64 syscalls;  /* sendmmsg() calls */
  guint64 messages;  /* what they sent: a GSO run or one datagram each */
  guint64 dropped;   /* refused by the socket (buffer full, too big): lost */
} UdpBatchStats;

typedef struct _UdpBatch UdpBatch;

/* The mode P2PTUN_UDP_BATCH asks for; an unknown value is told on stderr
 * once and taken as the default. */
UdpBatchMode udpbatch_mode_from_env (void);
const char *udpbatch_mode_name (UdpBatchMode mode);

/* @mode is UDPBATCH_SENDMMSG or UDPBATCH_GSO. */
UdpBatch *udpbatch_new (UdpBatchMode mode);
/* Sends what is queued first. */
void udpbatch_free (UdpBatch *batch);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (UdpBatch, udpbatch_free)

/* Where datagrams go from now on: @fd (borrowed; -1 for nowhere) and @to.
 * What is queued for the old destination is sent first. */
void udpbatch_set_target (UdpBatch *batch, int fd, const struct sockaddr *to, socklen_t to_len);
gboolean udpbatch_has_target (const UdpBatch *batch);
/* Queues a copy of @buf (sending the queue first when it has no room).
 * FALSE, with nothing queued, when there is no target or @len is 0 or over
 * UDPBATCH_DATAGRAM_MAX. */
gboolean udpbatch_add (UdpBatch *batch, const guint8 *buf, gsize len);
/* Sends what is queued. A datagram the socket refuses is lost, as the
 * network would lose it (the transport recovers). */
void udpbatch_flush (UdpBatch *batch);
/* The mode in use: GSO turns into SENDMMSG when the kernel refused it. */
UdpBatchMode udpbatch_mode (const UdpBatch *batch);
const UdpBatchStats *udpbatch_stats (const UdpBatch *batch);
