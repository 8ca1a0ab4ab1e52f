/* SPDX-License-Identifier: MIT */
/*
 * Replay driver for the fuzz targets in the normal (gcc) test suite: no
 * libFuzzer needed. Runs LLVMFuzzerTestOneInput() on every file of a
 * corpus directory, then on a bounded number of pseudo-random mutations of
 * those files, seeded by t_seed(): a fresh seed each run, printed as
 * "# seed=0x...", so every CI run explores new mutations; set
 * SMMU_TEST_SEED to that value to replay a failure exactly. A target reports a broken
 * invariant by aborting; the sanitizers (ASan/UBSan in CI) catch the rest.
 *
 *   replay CORPUS_DIR [ITERATIONS]      (default 20000; $FUZZ_ITERS wins)
 *
 * Output is TAP: one line for the corpus, one for the mutations. Each
 * input is handed over in a heap buffer of exactly its size, so a target
 * reading past the end trips ASan as it would under libFuzzer.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/harness.h"
#include "tests/lib/fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

#define REPLAY_MAX_FILES 256
#define REPLAY_MAX_LEN (64 * 1024)
#define REPLAY_DEFAULT_ITERS 20000

struct seed {
	uint8_t *data;
	size_t len;
};

static struct seed seeds[REPLAY_MAX_FILES];
static unsigned int n_seeds;

static int load_file(int dirfd, const char *name)
{
	struct stat st;
	uint8_t *buf;
	ssize_t got;
	size_t off = 0;
	int fd;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > REPLAY_MAX_LEN) {
		close(fd);
		return 0; /* not a seed: skipped, not counted */
	}
	/* One extra byte so malloc(0) is never asked for. */
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (off < (size_t)st.st_size) {
		got = read(fd, buf + off, (size_t)st.st_size - off);
		if (got <= 0)
			break;
		off += (size_t)got;
	}
	close(fd);
	seeds[n_seeds].data = buf;
	seeds[n_seeds].len = off;
	n_seeds++;
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Load every regular file of @dir, in name order (reproducible). */
static int load_corpus(const char *dir)
{
	char *names[REPLAY_MAX_FILES];
	unsigned int n = 0;
	struct dirent *de;
	DIR *d;
	int r = 0;

	d = opendir(dir);
	if (!d)
		return -errno;
	while ((de = readdir(d)) && n < REPLAY_MAX_FILES) {
		if (de->d_name[0] == '.')
			continue;
		names[n] = strdup(de->d_name);
		if (!names[n]) {
			r = -ENOMEM;
			break;
		}
		n++;
	}
	qsort(names, n, sizeof(names[0]), name_cmp);
	for (unsigned int i = 0; i < n; i++) {
		if (!r)
			r = load_file(dirfd(d), names[i]);
		free(names[i]);
	}
	closedir(d);
	return r;
}

static void run_one(const uint8_t *data, size_t len)
{
	/* Exactly @len bytes on the heap: overreads hit the redzone. */
	uint8_t *copy = malloc(len ? len : 1);

	if (!copy) {
		fprintf(stderr, "# out of memory\n");
		abort();
	}
	memcpy(copy, data, len);
	LLVMFuzzerTestOneInput(copy, len);
	free(copy);
}

static const uint32_t interesting[] = {
	0,	    1,		2,	3,	 0x7f,	     0x80,
	0xff,	    0x100,	0xffff, 0x10000, 0x7fffffff, 0x80000000,
	0xfffffffe, 0xffffffff, 16,	64,	 255,	     4096,
};

/* One random edit of @buf (@len bytes, capacity REPLAY_MAX_LEN). */
static size_t mutate_once(uint64_t *rs, uint8_t *buf, size_t len)
{
	uint64_t r = t_rand(rs);
	size_t pos = len ? (size_t)(t_rand(rs) % len) : 0;
	size_t n;

	switch (r % 9) {
	case 0: /* flip a bit */
		if (len)
			buf[pos] ^= (uint8_t)(1u << (t_rand(rs) % 8));
		break;
	case 1: /* random byte */
		if (len)
			buf[pos] = (uint8_t)t_rand(rs);
		break;
	case 2: /* interesting byte */
		if (len)
			buf[pos] = (uint8_t)interesting[t_rand(rs) % 9];
		break;
	case 3: /* interesting little-endian word */
		if (len >= 4) {
			uint32_t v = interesting[t_rand(rs) %
						 (sizeof(interesting) /
						  sizeof(interesting[0]))];

			pos = (size_t)(t_rand(rs) % (len - 3));
			for (int i = 0; i < 4; i++)
				buf[pos + (size_t)i] = (uint8_t)(v >> (8 * i));
		}
		break;
	case 4: /* insert random bytes */
		n = 1 + (size_t)(t_rand(rs) % 16);
		if (len + n <= REPLAY_MAX_LEN) {
			memmove(buf + pos + n, buf + pos, len - pos);
			for (size_t i = 0; i < n; i++)
				buf[pos + i] = (uint8_t)t_rand(rs);
			len += n;
		}
		break;
	case 5: /* delete a range */
		if (len) {
			n = 1 + (size_t)(t_rand(rs) % 16);
			if (n > len - pos)
				n = len - pos;
			memmove(buf + pos, buf + pos + n, len - pos - n);
			len -= n;
		}
		break;
	case 6: /* duplicate a range */
		if (len) {
			n = 1 + (size_t)(t_rand(rs) % 32);
			if (n > len - pos)
				n = len - pos;
			if (len + n <= REPLAY_MAX_LEN) {
				memmove(buf + pos + n, buf + pos, len - pos);
				len += n;
			}
		}
		break;
	case 7: /* splice in part of another seed */
		if (n_seeds) {
			const struct seed *s = &seeds[t_rand(rs) % n_seeds];
			size_t from, cnt;

			if (!s->len)
				break;
			from = (size_t)(t_rand(rs) % s->len);
			cnt = 1 + (size_t)(t_rand(rs) % (s->len - from));
			if (pos + cnt > REPLAY_MAX_LEN)
				cnt = REPLAY_MAX_LEN - pos;
			memcpy(buf + pos, s->data + from, cnt);
			if (pos + cnt > len)
				len = pos + cnt;
		}
		break;
	default: /* truncate */
		len = pos;
		break;
	}
	return len;
}

int main(int argc, char **argv)
{
	unsigned long iters = REPLAY_DEFAULT_ITERS;
	const char *env = getenv("FUZZ_ITERS");
	uint64_t seed, rs;
	uint8_t *buf;
	int r;

	if (argc < 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR [ITERATIONS]\n", argv[0]);
		return 2;
	}
	if (argc > 2)
		iters = strtoul(argv[2], NULL, 0);
	if (env)
		iters = strtoul(env, NULL, 0);
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);

	printf("1..2\n");
	/* Printed now ("# seed=0x..."): a crash below must be replayable. */
	seed = t_seed();
	rs = seed;
	fflush(stdout);
	r = load_corpus(argv[1]);
	if (r || !n_seeds) {
		printf("not ok 1 - corpus %s: %s\n", argv[1],
		       r ? strerror(-r) : "no seed files");
		printf("not ok 2 - mutations # no seeds to mutate\n");
		return 1;
	}
	for (unsigned int i = 0; i < n_seeds; i++)
		run_one(seeds[i].data, seeds[i].len);
	printf("ok 1 - corpus %s: %u files\n", argv[1], n_seeds);
	fflush(stdout);

	buf = malloc(REPLAY_MAX_LEN);
	if (!buf)
		return 1;
	for (unsigned long it = 0; it < iters; it++) {
		const struct seed *s = &seeds[t_rand(&rs) % n_seeds];
		size_t len = s->len;
		unsigned int edits = 1 + (unsigned int)(t_rand(&rs) % 8);

		memcpy(buf, s->data, len);
		for (unsigned int e = 0; e < edits; e++)
			len = mutate_once(&rs, buf, len);
		run_one(buf, len);
	}
	free(buf);
	printf("ok 2 - %lu mutated inputs (SMMU_TEST_SEED=0x%" PRIx64 ")\n",
	       iters, seed);
	for (unsigned int i = 0; i < n_seeds; i++)
		free(seeds[i].data);
	return 0;
}
