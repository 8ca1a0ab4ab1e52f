/* SPDX-License-Identifier: MIT */
/*
 * A small kselftest-style test harness.
 *
 * Each test runs in a forked child (a crash or a hung test fails only that
 * test), under a per-test alarm as a backstop; results are printed as TAP so
 * meson counts them (protocol: 'tap'). Set T_NOFORK=1 to run tests in-process
 * (for gdb), and pass substrings on the command line to select tests.
 *
 *   TEST(name) { ... }                         a plain test
 *   FIXTURE(fx) { fields };                    a fixture type
 *   FIXTURE_SETUP(fx) { self->... }            runs before each TEST_F
 *   FIXTURE_TEARDOWN(fx) { ... }               runs after, even on ASSERT
 *   TEST_F(fx, name) { self->... }             a test with a fixture
 *   TEST_F_TIMEOUT(fx, name, secs)             ... with its own timeout
 *   TEST_XFAIL(name, why), TEST_F_XFAIL(fx, name, why),
 *   TEST_XFAIL_TIMEOUT(name, secs, why), TEST_F_XFAIL_TIMEOUT(...)
 *                                              an expected failure
 *
 * ASSERT_* stop the test (the teardown still runs), EXPECT_* record a
 * failure and go on. SKIP(reason) ends the test as skipped: use it only
 * for a path that truly cannot run here, never to hide a failure. Skips
 * are "ok N name # SKIP reason" lines, counted one by one by
 * scripts/test.sh.
 *
 * Expected failures: a test that shows a defect nobody has fixed yet
 * is marked with @why naming the bug (e.g. "issue 12 item 3: ..."), here
 * or from meson.build with T_XFAIL="name: why[; name: why]" in the test's
 * environment (for a failure only some builds have). It never counts as a
 * pass: failing in any way (a check, a crash, its timeout) it prints
 * "not ok N name # TODO expected failure: why", an expected failure that does
 * not fail the program (meson: EXPECTEDFAIL; scripts/test.sh lists it
 * apart). Passing, it prints "ok N name # TODO unexpectedly passed ...",
 * which meson counts as UNEXPECTEDPASS and the program exits 1: the bug
 * is fixed, remove the marker. Skipping is still a skip. Do not use
 * meson's should_fail for this: it turns every failure of the whole
 * program into a pass.
 */
#ifndef SMMU_OFFLOAD_TESTS_HARNESS_H
#define SMMU_OFFLOAD_TESTS_HARNESS_H

#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define T_DEFAULT_TIMEOUT 30

struct t_case {
	const char *name;
	void (*run)(void *self);
	void (*setup)(void *self);
	void (*teardown)(void *self);
	size_t self_size;
	unsigned int timeout_s;
	const char *xfail; /* NULL, or why this test is expected to fail */
	struct t_case *next;
};

void t_register(struct t_case *tc);
int t_main(int argc, char **argv);

/* Internal state of the running test (child process). */
extern sigjmp_buf t_abort_jmp;
extern int t_failed;
extern const char *t_skip_reason;
void t_report(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
_Noreturn void t_abort(void);
_Noreturn void t_skip(const char *reason);
const char *t_errname(long long e);

#define T_REGISTER_(id, tname, runfn, setupfn, teardownfn, size, tmo, xf) \
	static struct t_case t_case_##id = {                              \
		.name = tname,                                            \
		.run = runfn,                                             \
		.setup = setupfn,                                         \
		.teardown = teardownfn,                                   \
		.self_size = size,                                        \
		.timeout_s = tmo,                                         \
		.xfail = xf,                                              \
	};                                                                \
	__attribute__((constructor)) static void t_ctor_##id(void)        \
	{                                                                 \
		t_register(&t_case_##id);                                 \
	}

#define T_TEST_(name, secs, xf)                                         \
	static void t_body_##name(void);                                \
	static void t_run_##name(void *self)                            \
	{                                                               \
		(void)self;                                             \
		t_body_##name();                                        \
	}                                                               \
	T_REGISTER_(name, #name, t_run_##name, NULL, NULL, 0, secs, xf) \
	static void t_body_##name(void)

#define TEST_TIMEOUT(name, secs) T_TEST_(name, secs, NULL)
#define TEST(name) TEST_TIMEOUT(name, T_DEFAULT_TIMEOUT)
#define TEST_XFAIL_TIMEOUT(name, secs, why) T_TEST_(name, secs, why)
#define TEST_XFAIL(name, why) T_TEST_(name, T_DEFAULT_TIMEOUT, why)

#define FIXTURE(fx) struct t_fixture_##fx
#define FIXTURE_SETUP(fx)                                      \
	static void t_setup_##fx(struct t_fixture_##fx *self); \
	static void t_setup_void_##fx(void *self)              \
	{                                                      \
		t_setup_##fx(self);                            \
	}                                                      \
	static void t_setup_##fx(struct t_fixture_##fx *self)
#define FIXTURE_TEARDOWN(fx)                                      \
	static void t_teardown_##fx(struct t_fixture_##fx *self); \
	static void t_teardown_void_##fx(void *self)              \
	{                                                         \
		t_teardown_##fx(self);                            \
	}                                                         \
	static void t_teardown_##fx(struct t_fixture_##fx *self)

#define T_TEST_F_(fx, name, secs, xf)                                  \
	static void t_body_##fx##_##name(struct t_fixture_##fx *self); \
	static void t_run_##fx##_##name(void *self)                    \
	{                                                              \
		t_body_##fx##_##name(self);                            \
	}                                                              \
	T_REGISTER_(fx##_##name, #fx "." #name, t_run_##fx##_##name,   \
		    t_setup_void_##fx, t_teardown_void_##fx,           \
		    sizeof(struct t_fixture_##fx), secs, xf)           \
	static void t_body_##fx##_##name(struct t_fixture_##fx *self)

#define TEST_F_TIMEOUT(fx, name, secs) T_TEST_F_(fx, name, secs, NULL)
#define TEST_F(fx, name) TEST_F_TIMEOUT(fx, name, T_DEFAULT_TIMEOUT)
#define TEST_F_XFAIL_TIMEOUT(fx, name, secs, why) T_TEST_F_(fx, name, secs, why)
#define TEST_F_XFAIL(fx, name, why) T_TEST_F_(fx, name, T_DEFAULT_TIMEOUT, why)

/*
 * Comparisons by value, whatever the two types: a negative value of a
 * signed type compares as signed, everything else as uintmax_t (so a u64
 * above INT64_MAX is not negative). Values are printed in decimal and hex.
 */
static inline int t_neg(int is_signed, intmax_t v)
{
	return is_signed && v < 0;
}

#define T_SIGNED_(x) ((__typeof__(x))-1 < (__typeof__(x))1)
#define T_CMP_(kind, op, a, b, fatal)                                         \
	do {                                                                  \
		__extension__ __auto_type t_a_ = (a);                         \
		__extension__ __auto_type t_b_ = (b);                         \
		int t_neg_ = t_neg(T_SIGNED_(t_a_), (intmax_t)t_a_) ||        \
			     t_neg(T_SIGNED_(t_b_), (intmax_t)t_b_);          \
		int t_c_ =                                                    \
			t_neg_ ? ((intmax_t)t_a_ > (intmax_t)t_b_) -          \
					 ((intmax_t)t_a_ < (intmax_t)t_b_) :  \
				 ((uintmax_t)t_a_ > (uintmax_t)t_b_) -        \
					 ((uintmax_t)t_a_ < (uintmax_t)t_b_); \
		if (!(t_c_ op 0)) {                                           \
			t_report(__FILE__, __LINE__,                          \
				 kind "(%s, %s): %jd (0x%jx) vs %jd (0x%jx)", \
				 #a, #b, (intmax_t)t_a_, (uintmax_t)t_a_,     \
				 (intmax_t)t_b_, (uintmax_t)t_b_);            \
			if (fatal)                                            \
				t_abort();                                    \
		}                                                             \
	} while (0)

#define ASSERT_EQ(a, b) T_CMP_("ASSERT_EQ", ==, a, b, 1)
#define ASSERT_NE(a, b) T_CMP_("ASSERT_NE", !=, a, b, 1)
#define ASSERT_LT(a, b) T_CMP_("ASSERT_LT", <, a, b, 1)
#define ASSERT_LE(a, b) T_CMP_("ASSERT_LE", <=, a, b, 1)
#define ASSERT_GT(a, b) T_CMP_("ASSERT_GT", >, a, b, 1)
#define ASSERT_GE(a, b) T_CMP_("ASSERT_GE", >=, a, b, 1)
#define EXPECT_EQ(a, b) T_CMP_("EXPECT_EQ", ==, a, b, 0)
#define EXPECT_NE(a, b) T_CMP_("EXPECT_NE", !=, a, b, 0)
#define EXPECT_LT(a, b) T_CMP_("EXPECT_LT", <, a, b, 0)
#define EXPECT_LE(a, b) T_CMP_("EXPECT_LE", <=, a, b, 0)
#define EXPECT_GT(a, b) T_CMP_("EXPECT_GT", >, a, b, 0)
#define EXPECT_GE(a, b) T_CMP_("EXPECT_GE", >=, a, b, 0)

#define T_BOOL_(kind, want, expr, fatal)                                  \
	do {                                                              \
		if ((bool)(expr) != (bool)(want)) {                       \
			t_report(__FILE__, __LINE__, kind "(%s)", #expr); \
			if (fatal)                                        \
				t_abort();                                \
		}                                                         \
	} while (0)

#define ASSERT_TRUE(e) T_BOOL_("ASSERT_TRUE", 1, e, 1)
#define ASSERT_FALSE(e) T_BOOL_("ASSERT_FALSE", 0, e, 1)
#define EXPECT_TRUE(e) T_BOOL_("EXPECT_TRUE", 1, e, 0)
#define EXPECT_FALSE(e) T_BOOL_("EXPECT_FALSE", 0, e, 0)
#define ASSERT_NULL(p) T_BOOL_("ASSERT_NULL", 1, (p) == NULL, 1)
#define ASSERT_NONNULL(p) T_BOOL_("ASSERT_NONNULL", 1, (p) != NULL, 1)

#define ASSERT_STREQ(a, b)                                                     \
	do {                                                                   \
		const char *t_sa_ = (a), *t_sb_ = (b);                         \
		if (!t_sa_ || !t_sb_ || strcmp(t_sa_, t_sb_)) {                \
			t_report(__FILE__, __LINE__,                           \
				 "ASSERT_STREQ(%s, %s): \"%s\" vs \"%s\"", #a, \
				 #b, t_sa_ ? t_sa_ : "(null)",                 \
				 t_sb_ ? t_sb_ : "(null)");                    \
			t_abort();                                             \
		}                                                              \
	} while (0)

/*
 * Functions that return 0 or -errno: OK asserts success, ERR asserts the
 * exact negative errno, so test bodies read like the errno table.
 */
#define T_ERRNO_(kind, want, expr, fatal)                                    \
	do {                                                                 \
		long long t_r_ = (long long)(expr);                          \
		long long t_w_ = (long long)(want);                          \
		if (t_r_ != t_w_) {                                          \
			t_report(__FILE__, __LINE__,                         \
				 kind "(%s): got %lld (%s), want %lld (%s)", \
				 #expr, t_r_, t_errname(t_r_), t_w_,         \
				 t_errname(t_w_));                           \
			if (fatal)                                           \
				t_abort();                                   \
		}                                                            \
	} while (0)

#define ASSERT_OK(expr) T_ERRNO_("ASSERT_OK", 0, expr, 1)
#define EXPECT_OK(expr) T_ERRNO_("EXPECT_OK", 0, expr, 0)
#define ASSERT_ERR(neg_errno, expr) T_ERRNO_("ASSERT_ERR", neg_errno, expr, 1)
#define EXPECT_ERR(neg_errno, expr) T_ERRNO_("EXPECT_ERR", neg_errno, expr, 0)

#define FAIL(...)                                          \
	do {                                               \
		t_report(__FILE__, __LINE__, __VA_ARGS__); \
		t_abort();                                 \
	} while (0)

#define SKIP(reason) t_skip(reason)

#define TEST_HARNESS_MAIN                  \
	int main(int argc, char **argv)    \
	{                                  \
		return t_main(argc, argv); \
	}

/* Seconds since an arbitrary point, for deadlines in event waits. */
double t_now(void);
/* A seed for property tests and random generators: t_seed_fresh(). */
uint64_t t_seed(void);
/* splitmix64: deterministic, seedable pseudo-random numbers. */
uint64_t t_rand(uint64_t *state);

/*
 * t_seed_fresh() - the seed of this process: $SMMU_TEST_SEED (or the old
 * $T_SEED) if set, else a fresh one from getrandom(). Printed once, as
 * "# seed=0x..." on stdout (a TAP comment), when first drawn; the same
 * value is returned afterwards (per test process: each test is a fork).
 * Any thread.
 */
uint64_t t_seed_fresh(void);

#endif
