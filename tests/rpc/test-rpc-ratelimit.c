/* SPDX-License-Identifier: MIT */
/*
 * daemon_ratelimit: the token bucket of the daemon's guest-triggered log
 * messages. Pure logic on a fake clock.
 */
#include "daemon/ratelimit.h"
#include "tests/harness.h"

#define SEC 1000000000ull

/* Allow one message at @now; returns whether it was allowed. */
static bool allow(struct daemon_ratelimit *rl, uint64_t now, uint64_t *ret_supp)
{
	uint64_t supp = UINT64_MAX;
	bool ok = daemon_ratelimit_allow(rl, now, &supp);

	/* Always set, and 0 whenever the message is refused. */
	ASSERT_NE(supp, UINT64_MAX);
	if (!ok)
		ASSERT_EQ(supp, 0);
	if (ret_supp)
		*ret_supp = supp;
	return ok;
}

TEST(init_rejects_bad_parameters)
{
	struct daemon_ratelimit rl;

	ASSERT_ERR(-EINVAL, daemon_ratelimit_init(&rl, 0, SEC, 0));
	ASSERT_ERR(-EINVAL, daemon_ratelimit_init(&rl, 10, 9, 0));
	ASSERT_OK(daemon_ratelimit_init(&rl, 10, 10, 0));
	ASSERT_OK(daemon_ratelimit_init(&rl, 1, 1, 0));
}

TEST(burst_then_suppressed)
{
	struct daemon_ratelimit rl;
	uint64_t supp;

	ASSERT_OK(daemon_ratelimit_init(&rl, 5, 10 * SEC, 100 * SEC));
	for (int i = 0; i < 5; i++) {
		ASSERT_TRUE(allow(&rl, 100 * SEC, &supp));
		ASSERT_EQ(supp, 0);
	}
	/* A flood at the same instant: all refused, all counted. */
	for (int i = 0; i < 1000; i++)
		ASSERT_FALSE(allow(&rl, 100 * SEC, NULL));
	ASSERT_EQ(rl.suppressed, 1000);
	ASSERT_EQ(rl.suppressed_total, 1000);
	/* One message's worth of time (10 s / 5) minus 1 ns: still no. */
	ASSERT_FALSE(allow(&rl, 102 * SEC - 1, NULL));
	/* Then exactly one, which reports the 1001 dropped. */
	ASSERT_TRUE(allow(&rl, 102 * SEC, &supp));
	ASSERT_EQ(supp, 1001);
	ASSERT_EQ(rl.suppressed, 0);
	ASSERT_EQ(rl.suppressed_total, 1001);
	ASSERT_FALSE(allow(&rl, 102 * SEC, NULL));
	ASSERT_TRUE(allow(&rl, 104 * SEC, &supp));
	ASSERT_EQ(supp, 1);
}

TEST(long_idle_refills_only_to_burst)
{
	struct daemon_ratelimit rl;
	int allowed = 0;

	ASSERT_OK(daemon_ratelimit_init(&rl, 3, SEC, 0));
	for (int i = 0; i < 3; i++)
		ASSERT_TRUE(allow(&rl, 0, NULL));
	/* An hour later the bucket holds 3, not 3600 * 3. */
	for (int i = 0; i < 100; i++)
		allowed += allow(&rl, 3600 * SEC, NULL);
	ASSERT_EQ(allowed, 3);
}

TEST(steady_rate_over_time)
{
	struct daemon_ratelimit rl;
	uint64_t t, allowed = 0, refused = 0;

	/* 10 per minute, offered 1 per second for 10 minutes: the burst
	 * plus one per 6 s get through. */
	ASSERT_OK(daemon_ratelimit_init(&rl, 10, 60 * SEC, 0));
	for (t = 0; t < 600; t++) {
		if (allow(&rl, t * SEC, NULL))
			allowed++;
		else
			refused++;
	}
	ASSERT_GE(allowed, 10 + 599 / 6 - 1);
	ASSERT_LE(allowed, 10 + 599 / 6 + 1);
	ASSERT_EQ(allowed + refused, 600);
	ASSERT_EQ(rl.suppressed_total, refused);
}

TEST(clock_going_backwards_adds_nothing)
{
	struct daemon_ratelimit rl;

	ASSERT_OK(daemon_ratelimit_init(&rl, 2, 2 * SEC, 50 * SEC));
	ASSERT_TRUE(allow(&rl, 50 * SEC, NULL));
	ASSERT_TRUE(allow(&rl, 50 * SEC, NULL));
	ASSERT_FALSE(allow(&rl, 10 * SEC, NULL));
	/* The earlier time did not move last_ns back: no credit at 51 s
	 * beyond the one second since 50 s. */
	ASSERT_TRUE(allow(&rl, 51 * SEC, NULL));
	ASSERT_FALSE(allow(&rl, 51 * SEC, NULL));
}

TEST(flush_reports_only_when_a_token_is_back)
{
	struct daemon_ratelimit rl;
	uint64_t supp = 99;

	ASSERT_OK(daemon_ratelimit_init(&rl, 2, 2 * SEC, 0));
	/* Nothing suppressed: nothing to flush, no token spent. */
	ASSERT_FALSE(daemon_ratelimit_flush(&rl, 0, &supp));
	ASSERT_EQ(supp, 0);
	ASSERT_TRUE(allow(&rl, 0, NULL));
	ASSERT_TRUE(allow(&rl, 0, NULL));
	for (int i = 0; i < 7; i++)
		ASSERT_FALSE(allow(&rl, 0, NULL));
	/* No token yet: the flush neither reports nor counts itself. */
	supp = 99;
	ASSERT_FALSE(daemon_ratelimit_flush(&rl, SEC - 1, &supp));
	ASSERT_EQ(supp, 0);
	ASSERT_EQ(rl.suppressed, 7);
	ASSERT_EQ(rl.suppressed_total, 7);
	ASSERT_TRUE(daemon_ratelimit_flush(&rl, SEC, &supp));
	ASSERT_EQ(supp, 7);
	/* It spent the token and reset the count. */
	ASSERT_FALSE(allow(&rl, SEC, NULL));
	ASSERT_EQ(rl.suppressed, 1);
	/* Two tokens back by 3 s: the flush takes one, a message the other;
	 * the message has nothing left to report. */
	ASSERT_TRUE(daemon_ratelimit_flush(&rl, 3 * SEC, &supp));
	ASSERT_EQ(supp, 1);
	ASSERT_TRUE(allow(&rl, 3 * SEC, &supp));
	ASSERT_EQ(supp, 0);
	ASSERT_FALSE(allow(&rl, 3 * SEC, NULL));
	ASSERT_EQ(rl.suppressed_total, 9);
}

TEST_HARNESS_MAIN
