/* Datagrams of UDP forwards (PROTOCOL.md section 3): each transport
 * datagram (xport DATAGRAM frame) carries one UDP payload, prefixed by the
 * flow it belongs to: the id of the stream that opened the flow with
 * OPEN_DGRAM, as a QUIC variable-length integer. No allocation, no I/O. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xport_wire.h"

/* The longest flow prefix (an 8-byte varint). */
#define DGRAM_HEADER_MAX 8
/* No UDP payload of a flow is longer, either way: no DATAGRAM frame is
 * (receivers drop longer ones), and the prefix takes a byte at least. */
#define DGRAM_PAYLOAD_MAX XPORT_MAX_DATAGRAM

/* Writes the prefix for @flow; returns its length, or 0 if @cap is too
 * small. */
size_t dgram_put_header (uint8_t *buf, size_t cap, uint64_t flow);
/* Splits a received datagram into its flow and payload (pointing into
 * @buf). False when the prefix is truncated. */
bool dgram_parse (const uint8_t *buf, size_t len, uint64_t *flow, const uint8_t **payload,
                  size_t *payload_len);
