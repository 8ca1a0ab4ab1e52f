/* SPDX-License-Identifier: MIT */
/*
 * Test programs for harness.h itself, run by check-harness.py (never
 * registered on their own: some of them must fail). One of each outcome:
 * a pass, a skip, an expected failure failing by a check and by a crash,
 * one that passes although marked (a fixed bug), and a failing test that
 * only meson.build's T_XFAIL marks.
 */
#include "tests/harness.h"

#include <signal.h>

TEST(passes)
{
	ASSERT_EQ(1 + 1, 2);
}

TEST(skips)
{
	SKIP("nothing to run here");
}

TEST(plain_failure)
{
	EXPECT_EQ(1, 2);
}

TEST_XFAIL(xfail_fails, "demo bug 1")
{
	ASSERT_EQ(1, 2);
}

TEST_XFAIL_TIMEOUT(xfail_crashes, 5, "demo bug 2")
{
	raise(SIGSEGV);
}

TEST_XFAIL(xfail_fixed, "demo bug 3")
{
	ASSERT_EQ(2, 2);
}

FIXTURE(fx)
{
	int v;
};

FIXTURE_SETUP(fx)
{
	self->v = 1;
}

FIXTURE_TEARDOWN(fx)
{
	(void)self;
}

TEST_F_XFAIL(fx, xfail_fixture, "demo bug 4")
{
	ASSERT_EQ(self->v, 2);
}

TEST(env_marked)
{
	FAIL("fails unless T_XFAIL marks it");
}

TEST_HARNESS_MAIN
