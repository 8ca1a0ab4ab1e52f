/* SPDX-License-Identifier: MIT */
/*
 * For the fuzz targets in tests/fuzz (header only: they link no test
 * library). A target exports LLVMFuzzerTestOneInput(); libFuzzer or
 * tests/fuzz/replay.c calls it. FUZZ_CHECK() is a target's invariant:
 * on failure it names the place and aborts, which both drivers report
 * with the input that caused it. Any thread.
 */
#ifndef SMMU_OFFLOAD_TESTS_LIB_FUZZ_H
#define SMMU_OFFLOAD_TESTS_LIB_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                               \
	do {                                                           \
		if (!(cond)) {                                         \
			fprintf(stderr, "fuzz: %s:%d: %s\n", __FILE__, \
				__LINE__, #cond);                      \
			abort();                                       \
		}                                                      \
	} while (0)

#endif
