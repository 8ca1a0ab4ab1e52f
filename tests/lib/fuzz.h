/* SPDX-License-Identifier: MIT */
/*
 * For the fuzz targets in tests/fuzz (header only: they link no test
 * library). A target exports LLVMFuzzerTestOneInput(); libFuzzer or
 * tests/fuzz/replay.c calls it. FUZZ_CHECK() is a target's invariant:
 * on failure it names the place and aborts, which both drivers report
 * with the input that caused it; struct fuzz_input reads the input as
 * a program of operations. Any thread.
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

/* The input, read front to back; past its end every byte reads 0. */
struct fuzz_input {
	const uint8_t *p;
	size_t left;
};

static inline uint8_t fuzz_u8(struct fuzz_input *in)
{
	uint8_t v = 0;

	if (in->left) {
		v = *in->p++;
		in->left--;
	}
	return v;
}

/* @n (<= 8) bytes, little-endian. */
static inline uint64_t fuzz_bytes(struct fuzz_input *in, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v |= (uint64_t)fuzz_u8(in) << (8 * i);
	return v;
}

static inline uint32_t fuzz_u32(struct fuzz_input *in)
{
	return (uint32_t)fuzz_bytes(in, 4);
}

#endif
