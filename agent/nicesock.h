/* libnice's sockets of a component, made fit for the tunnel: large kernel
 * buffers (a fast path overruns the default ones between two reads), and
 * UDP without fragments (so that path MTU probes tell the truth). libnice
 * makes sockets while gathering and when it learns candidates, so this runs
 * again each time; it is idempotent. */
#pragma once

#include <nice/agent.h>

void nicesock_tune (NiceAgent *agent, guint stream_id, guint component_id);
