/* fuzz.h: the entry point libFuzzer calls, which every target defines once.
 * Returns 0; crashes, aborts and sanitizer reports are the findings. */
#ifndef ZEOLITE_FUZZ_H
#define ZEOLITE_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
