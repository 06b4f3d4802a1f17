/* The libFuzzer entry point that every target defines; replay.c calls it
 * when the targets are built without libFuzzer. */
#pragma once

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);
