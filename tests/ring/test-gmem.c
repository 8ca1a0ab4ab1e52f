/* SPDX-License-Identifier: MIT */
/*
 * The guest memory table (ring/gmem.h): every refusal of ring_gmem_add()
 * and the edges of translation; ring_gmem_list() from another thread.
 * Expected values are computed here from the test's own region list, not
 * from the table.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ring/gmem.h"
#include "tests/harness.h"

#define GIB (1ULL << 30)

static uint64_t page(void)
{
	return (uint64_t)sysconf(_SC_PAGESIZE);
}

/* A memfd of @len bytes, sealed with @seals (0: none). */
static int make_memfd(uint64_t len, int seals)
{
	int fd = memfd_create("gmem", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)len) < 0 ||
	    (seals && fcntl(fd, F_ADD_SEALS, seals) < 0)) {
		close(fd);
		return -errno;
	}
	return fd;
}

FIXTURE(gmem)
{
	struct ring_gmem g;
	int fd; /* 16 pages, F_SEAL_SHRINK */
	uint64_t pg;
};

FIXTURE_SETUP(gmem)
{
	self->pg = page();
	ring_gmem_init(&self->g, 1ULL << 40);
	self->fd = make_memfd(16 * self->pg, F_SEAL_SHRINK);
	ASSERT_GE(self->fd, 0);
}

FIXTURE_TEARDOWN(gmem)
{
	ring_gmem_done(&self->g);
	if (self->fd >= 0)
		close(self->fd);
}

TEST_F(gmem, refuses_unaligned_and_empty)
{
	uint64_t pg = self->pg;

	EXPECT_ERR(-EINVAL, ring_gmem_add(&self->g, self->fd, 0, GIB, 0));
	EXPECT_ERR(-EINVAL,
		   ring_gmem_add(&self->g, self->fd, 0, GIB + 16, 4 * pg));
	EXPECT_ERR(-EINVAL,
		   ring_gmem_add(&self->g, self->fd, 512, GIB, 4 * pg));
	EXPECT_ERR(-EINVAL,
		   ring_gmem_add(&self->g, self->fd, 0, GIB, 4 * pg + 8));
	EXPECT_EQ(self->g.total, 0);
}

TEST_F(gmem, refuses_overflow)
{
	uint64_t pg = self->pg;
	uint64_t top = UINT64_MAX - pg + 1; /* last page of the space */

	/* gpa + size wraps past 2^64. */
	EXPECT_ERR(-EINVAL, ring_gmem_add(&self->g, self->fd, 0, top, 2 * pg));
	EXPECT_ERR(-EINVAL, ring_gmem_add(&self->g, self->fd, 0, top, pg));
	/* offset + size beyond an off_t. */
	EXPECT_ERR(-EINVAL,
		   ring_gmem_add(&self->g, self->fd,
				 (uint64_t)INT64_MAX - pg + 1, GIB, 2 * pg));
	EXPECT_ERR(-EINVAL, ring_gmem_add(&self->g, self->fd, top, GIB, pg));
}

TEST_F(gmem, refuses_non_memfd)
{
	int p[2], fd, r;
	char path[] = "/tmp/gmem-XXXXXX";

	ASSERT_OK(pipe2(p, O_CLOEXEC));
	EXPECT_ERR(-EBADF, ring_gmem_add(&self->g, p[0], 0, GIB, self->pg));
	close(p[0]);
	close(p[1]);

	/* A plain file: no seals (EINVAL) or sealing refused (EPERM). */
	fd = mkostemp(path, O_CLOEXEC);
	ASSERT_GE(fd, 0);
	unlink(path);
	ASSERT_OK(ftruncate(fd, (off_t)(4 * self->pg)));
	r = ring_gmem_add(&self->g, fd, 0, GIB, self->pg);
	EXPECT_TRUE(r == -EINVAL || r == -EPERM);
	close(fd);
	EXPECT_EQ(self->g.total, 0);
}

TEST_F(gmem, refuses_without_shrink_seal)
{
	int fd = make_memfd(4 * self->pg, F_SEAL_GROW);

	ASSERT_GE(fd, 0);
	EXPECT_ERR(-EPERM, ring_gmem_add(&self->g, fd, 0, GIB, self->pg));
	close(fd);
	fd = make_memfd(4 * self->pg, 0);
	ASSERT_GE(fd, 0);
	EXPECT_ERR(-EPERM, ring_gmem_add(&self->g, fd, 0, GIB, self->pg));
	close(fd);
}

TEST_F(gmem, refuses_file_too_small)
{
	uint64_t pg = self->pg;

	EXPECT_ERR(-EMSGSIZE,
		   ring_gmem_add(&self->g, self->fd, 0, GIB, 17 * pg));
	EXPECT_ERR(-EMSGSIZE,
		   ring_gmem_add(&self->g, self->fd, 15 * pg, GIB, 2 * pg));
	/* Exactly the end of the file is fine. */
	EXPECT_OK(ring_gmem_add(&self->g, self->fd, 15 * pg, GIB, pg));
}

TEST_F(gmem, refuses_overlap)
{
	uint64_t pg = self->pg;

	ASSERT_OK(ring_gmem_add(&self->g, self->fd, 0, GIB, 4 * pg));
	/* Same, inside, straddling the start, straddling the end, around. */
	EXPECT_ERR(-EEXIST, ring_gmem_add(&self->g, self->fd, 0, GIB, 4 * pg));
	EXPECT_ERR(-EEXIST, ring_gmem_add(&self->g, self->fd, 0, GIB + pg, pg));
	EXPECT_ERR(-EEXIST,
		   ring_gmem_add(&self->g, self->fd, 0, GIB - pg, 2 * pg));
	EXPECT_ERR(-EEXIST,
		   ring_gmem_add(&self->g, self->fd, 0, GIB + 3 * pg, 2 * pg));
	EXPECT_ERR(-EEXIST,
		   ring_gmem_add(&self->g, self->fd, 0, GIB - pg, 8 * pg));
	/* Adjacent on both sides is not an overlap (same file range is
	 * fine too: guest aliases are the VMM's business). */
	EXPECT_OK(ring_gmem_add(&self->g, self->fd, 0, GIB + 4 * pg, pg));
	EXPECT_OK(ring_gmem_add(&self->g, self->fd, 4 * pg, GIB - pg, pg));
	EXPECT_EQ(self->g.total, 6 * pg);
}

TEST_F(gmem, refuses_over_bounds)
{
	uint64_t pg = self->pg;

	ring_gmem_done(&self->g);
	ring_gmem_init(&self->g, 8 * pg);
	ASSERT_OK(ring_gmem_add(&self->g, self->fd, 0, GIB, 6 * pg));
	EXPECT_ERR(-ENOSPC,
		   ring_gmem_add(&self->g, self->fd, 0, 2 * GIB, 3 * pg));
	EXPECT_OK(ring_gmem_add(&self->g, self->fd, 0, 2 * GIB, 2 * pg));
	EXPECT_ERR(-ENOSPC, ring_gmem_add(&self->g, self->fd, 0, 3 * GIB, pg));

	/* The number of regions is bounded too. */
	ring_gmem_done(&self->g);
	ring_gmem_init(&self->g, 1ULL << 40);
	for (unsigned int i = 0; i < RING_GMEM_MAX_REGIONS; i++)
		ASSERT_OK(ring_gmem_add(&self->g, self->fd, 0, GIB + 2 * pg * i,
					pg));
	EXPECT_ERR(-ENOSPC, ring_gmem_add(&self->g, self->fd, 0, 0, pg));
}

TEST_F(gmem, translate_edges)
{
	uint64_t pg = self->pg;
	uint8_t *a, *b;
	void *h;

	/* Two regions adjacent in guest-physical space. */
	ASSERT_OK(ring_gmem_add(&self->g, self->fd, 0, GIB, 4 * pg));
	ASSERT_OK(ring_gmem_add(&self->g, self->fd, 8 * pg, GIB + 4 * pg,
				4 * pg));
	ASSERT_OK(ring_gmem_translate(&self->g, GIB, 1, &h));
	a = h;
	ASSERT_OK(ring_gmem_translate(&self->g, GIB + 4 * pg, 1, &h));
	b = h;

	/* Whole region; a range ending exactly at its end. */
	EXPECT_OK(ring_gmem_translate(&self->g, GIB, 4 * pg, &h));
	EXPECT_TRUE(h == a);
	EXPECT_OK(ring_gmem_translate(&self->g, GIB + 4 * pg - 16, 16, &h));
	EXPECT_TRUE(h == a + 4 * pg - 16);
	/* One byte further crosses into the adjacent region: refused. */
	EXPECT_ERR(-EFAULT,
		   ring_gmem_translate(&self->g, GIB + 4 * pg - 16, 17, &h));
	EXPECT_ERR(-EFAULT, ring_gmem_translate(&self->g, GIB, 4 * pg + 1, &h));
	EXPECT_ERR(-EFAULT,
		   ring_gmem_translate(&self->g, GIB + 2 * pg, 4 * pg, &h));
	/* The second region translates to its own mapping. */
	EXPECT_OK(ring_gmem_translate(&self->g, GIB + 5 * pg, 3 * pg, &h));
	EXPECT_TRUE(h == b + pg);
	/* Gaps, before and after. */
	EXPECT_ERR(-EFAULT, ring_gmem_translate(&self->g, GIB - 1, 1, &h));
	EXPECT_ERR(-EFAULT, ring_gmem_translate(&self->g, GIB - 1, 2, &h));
	EXPECT_ERR(-EFAULT, ring_gmem_translate(&self->g, GIB + 8 * pg, 1, &h));
	/* u64 overflow of gpa + len must not wrap into a region. */
	EXPECT_ERR(-EFAULT, ring_gmem_translate(&self->g, GIB, UINT64_MAX, &h));
	EXPECT_ERR(-EFAULT, ring_gmem_translate(&self->g, GIB + pg,
						UINT64_MAX - GIB, &h));
	EXPECT_ERR(-EFAULT,
		   ring_gmem_translate(&self->g, UINT64_MAX, UINT64_MAX, &h));
	EXPECT_ERR(-EFAULT, ring_gmem_translate(&self->g, UINT64_MAX - 15,
						GIB + 32, &h));
	EXPECT_ERR(-EINVAL, ring_gmem_translate(&self->g, GIB, 0, &h));

	/* The mapping is the file: a write through it lands at its offset. */
	b[0] = 0x5a;
	EXPECT_EQ(pread(self->fd, &a[0], 1, (off_t)(8 * pg)), 1);
	EXPECT_EQ(a[0], 0x5a);
}

TEST_F(gmem, pin_blocks_remove)
{
	uint64_t pg = self->pg;
	void *h;
	int pin;

	ASSERT_OK(ring_gmem_add(&self->g, self->fd, 0, GIB, 4 * pg));
	EXPECT_ERR(-ENOENT, ring_gmem_remove(&self->g, GIB, 2 * pg));
	pin = ring_gmem_pin(&self->g, GIB + pg, 64, &h);
	ASSERT_GE(pin, 0);
	EXPECT_ERR(-EBUSY, ring_gmem_remove(&self->g, GIB, 4 * pg));
	ring_gmem_unpin(&self->g, pin);
	EXPECT_OK(ring_gmem_remove(&self->g, GIB, 4 * pg));
	EXPECT_EQ(self->g.total, 0);
	EXPECT_ERR(-EFAULT, ring_gmem_translate(&self->g, GIB + pg, 64, &h));
	EXPECT_ERR(-EFAULT, ring_gmem_pin(&self->g, GIB + pg, 64, &h));
	/* The slot is reusable. */
	EXPECT_OK(ring_gmem_add(&self->g, self->fd, 0, GIB, 4 * pg));
}

/* Does reading @p kill a child with SIGSEGV? */
static bool read_faults(const volatile uint8_t *p)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return false;
	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL);
		(void)*p;
		_exit(0);
	}
	if (waitpid(pid, &status, 0) != pid)
		return false;
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV;
}

/* One byte past either end of a region faults on a guard page. */
TEST_F(gmem, guard_pages_around_region)
{
	uint64_t pg = self->pg;
	uint8_t *first, *last;
	void *h;

	ASSERT_OK(ring_gmem_add(&self->g, self->fd, 0, GIB, 2 * pg));
	ASSERT_OK(ring_gmem_translate(&self->g, GIB, 1, &h));
	first = h;
	ASSERT_OK(ring_gmem_translate(&self->g, GIB + 2 * pg - 1, 1, &h));
	last = h;
	EXPECT_FALSE(read_faults(first));
	EXPECT_FALSE(read_faults(last));
	EXPECT_TRUE(read_faults(last + 1));
	EXPECT_TRUE(read_faults(first - 1));
}

/* A hugetlbfs memfd: mapped huge-aligned; offset/size must be huge. */
TEST_F(gmem, hugetlb_region)
{
	const uint64_t huge = 2ULL << 20;
	void *h;
	int fd, r;

	fd = memfd_create("gmem-huge",
			  MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB);
	if (fd < 0)
		SKIP("no hugetlbfs memfd here");
	if (ftruncate(fd, (off_t)(2 * huge)) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) < 0) {
		close(fd);
		SKIP("hugetlbfs memfd cannot be sized or sealed here");
	}
	EXPECT_ERR(-EINVAL, ring_gmem_add(&self->g, fd, self->pg, GIB, huge));
	EXPECT_ERR(-EINVAL, ring_gmem_add(&self->g, fd, 0, GIB, self->pg));
	r = ring_gmem_add(&self->g, fd, 0, GIB, huge);
	close(fd);
	if (r == -ENOMEM)
		SKIP("no huge pages reserved (HugePages_Total = 0)");
	ASSERT_OK(r);
	ASSERT_OK(ring_gmem_translate(&self->g, GIB, 1, &h));
	EXPECT_EQ((uintptr_t)h % huge, 0);
}

/* The list shows regions as added (gpa, size, file offset), and goes. */
TEST_F(gmem, list_as_added)
{
	struct ring_gmem_info out[RING_GMEM_MAX_REGIONS];
	const uint64_t pg = self->pg;
	unsigned int n = 99;
	bool seen[2] = { false, false };

	ASSERT_OK(ring_gmem_list(&self->g, out, RING_GMEM_MAX_REGIONS, &n));
	EXPECT_EQ(n, 0);
	ASSERT_OK(ring_gmem_add(&self->g, self->fd, 3 * pg, GIB, 2 * pg));
	ASSERT_OK(ring_gmem_add(&self->g, self->fd, 0, 4 * GIB, pg));
	ASSERT_OK(ring_gmem_list(&self->g, out, RING_GMEM_MAX_REGIONS, &n));
	ASSERT_EQ(n, 2);
	for (unsigned int i = 0; i < n; i++) {
		bool first = out[i].gpa == GIB;

		seen[!first] = true;
		EXPECT_EQ(out[i].gpa, first ? GIB : 4 * GIB);
		EXPECT_EQ(out[i].size, first ? 2 * pg : pg);
		EXPECT_EQ(out[i].offset, first ? 3 * pg : 0);
	}
	EXPECT_TRUE(seen[0] && seen[1]);
	/* @max bounds the copy, not the count. */
	ASSERT_OK(ring_gmem_list(&self->g, out, 1, &n));
	EXPECT_EQ(n, 2);
	ASSERT_OK(ring_gmem_remove(&self->g, GIB, 2 * pg));
	ASSERT_OK(ring_gmem_list(&self->g, out, RING_GMEM_MAX_REGIONS, &n));
	ASSERT_EQ(n, 1);
	EXPECT_EQ(out[0].gpa, 4 * GIB);
	ring_gmem_done(&self->g);
	ASSERT_OK(ring_gmem_list(&self->g, out, RING_GMEM_MAX_REGIONS, &n));
	EXPECT_EQ(n, 0);
}

/*
 * A reader thread lists while the owner keeps replacing a region by one
 * of another size and offset at the same gpa: every snapshot it gets is
 * one the table really had (the fixed region, and at most one of the two
 * others, never a mix of their fields).
 */
struct lister {
	struct ring_gmem *g;
	uint64_t pg;
	int stop; /* atomic */
	unsigned int snapshots, bad;
};

static bool known(const struct ring_gmem_info *x, uint64_t pg)
{
	return (x->gpa == GIB && x->size == pg && x->offset == 0) ||
	       (x->gpa == 2 * GIB && x->size == pg && x->offset == pg) ||
	       (x->gpa == 2 * GIB && x->size == 4 * pg && x->offset == 8 * pg);
}

static void *list_loop(void *arg)
{
	struct lister *ls = arg;
	struct ring_gmem_info out[RING_GMEM_MAX_REGIONS];
	unsigned int n;

	for (;;) {
		/* One pass more after the stop: on a quiet table. */
		bool last = __atomic_load_n(&ls->stop, __ATOMIC_ACQUIRE);

		if (ring_gmem_list(ls->g, out, RING_GMEM_MAX_REGIONS, &n)) {
			ls->bad += last; /* -EAGAIN only while it changes */
			continue;
		}
		ls->snapshots++;
		if (n < 1 || n > 2)
			ls->bad++;
		for (unsigned int i = 0; i < n; i++)
			ls->bad += !known(&out[i], ls->pg);
		if (last)
			return NULL;
	}
}

TEST_F(gmem, list_from_another_thread_is_consistent)
{
	struct lister ls = { .g = &self->g, .pg = self->pg };
	const uint64_t pg = self->pg;
	pthread_t t;

	ASSERT_OK(ring_gmem_add(&self->g, self->fd, 0, GIB, pg));
	ASSERT_EQ(pthread_create(&t, NULL, list_loop, &ls), 0);
	for (int i = 0; i < 20000; i++) {
		bool big = i & 1;

		ASSERT_OK(ring_gmem_add(&self->g, self->fd, big ? 8 * pg : pg,
					2 * GIB, big ? 4 * pg : pg));
		ASSERT_OK(
			ring_gmem_remove(&self->g, 2 * GIB, big ? 4 * pg : pg));
	}
	__atomic_store_n(&ls.stop, 1, __ATOMIC_RELEASE);
	ASSERT_EQ(pthread_join(t, NULL), 0);
	EXPECT_EQ(ls.bad, 0);
	EXPECT_GE(ls.snapshots, 1); /* the pass after the stop */
}

TEST_HARNESS_MAIN
