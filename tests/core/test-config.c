/* SPDX-License-Identifier: MIT */
/* core_config_set(): every key reaches its field, aliases, ranges, errors.
 * Expected values are written out here, not derived from core's table. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "tests/harness.h"
#include "tests/lib/tlib.h"

TEST(numbers_reach_their_fields)
{
	struct core_config c = { 0 };

	ASSERT_OK(core_config_set(&c, "max-inflight", "32"));
	ASSERT_OK(core_config_set(&c, "poll-us", "0x10"));
	ASSERT_OK(core_config_set(&c, "vcmdq-poll-us", "300"));
	ASSERT_OK(core_config_set(&c, "vcmdq-idle-us", "250"));
	ASSERT_OK(core_config_set(&c, "ring-budget", "128"));
	ASSERT_OK(core_config_set(&c, "max-batch", "4096"));
	ASSERT_OK(core_config_set(&c, "rate-limit", "20000000000"));
	ASSERT_OK(core_config_set(&c, "rate-burst", "7"));
	ASSERT_OK(core_config_set(&c, "max-rings", "9"));
	ASSERT_OK(core_config_set(&c, "ctl-timeout-ms", "10"));
	EXPECT_EQ(c.max_inflight, 32u);
	EXPECT_EQ(c.poll_us, 16u);
	EXPECT_EQ(c.vcmdq_poll_us, 300u);
	EXPECT_EQ(c.vcmdq_idle_us, 250u);
	EXPECT_EQ(c.ring_budget, 128u);
	EXPECT_EQ(c.max_batch, 4096u);
	EXPECT_EQ(c.rate_cmds, UINT64_C(20000000000));
	EXPECT_EQ(c.rate_burst, 7u);
	EXPECT_EQ(c.max_rings, 9u);
	EXPECT_EQ(c.ctl_timeout_ms, 10u);
}

TEST(words_and_strings)
{
	struct core_config c = { 0 };
	const char *cpus = "0-1,3", *root = "/tmp/iommu";

	ASSERT_OK(core_config_set(&c, "issue-mode", "async"));
	EXPECT_EQ(c.issue_mode, CORE_ISSUE_ASYNC);
	ASSERT_OK(core_config_set(&c, "issue-mode", "auto"));
	EXPECT_EQ(c.issue_mode, CORE_ISSUE_AUTO);
	ASSERT_OK(core_config_set(&c, "issue-mode", "inline"));
	EXPECT_EQ(c.issue_mode, CORE_ISSUE_INLINE);
	ASSERT_OK(core_config_set(&c, "loop", "epoll"));
	EXPECT_EQ(c.loop, CORE_LOOP_EPOLL);
	ASSERT_OK(core_config_set(&c, "loop", "io_uring"));
	EXPECT_EQ(c.loop, CORE_LOOP_URING);
	ASSERT_OK(core_config_set(&c, "loop", "auto"));
	EXPECT_EQ(c.loop, CORE_LOOP_AUTO);
	ASSERT_OK(core_config_set(&c, "backend", "sim"));
	ASSERT_STREQ(c.backend.kind, "sim");
	ASSERT_OK(core_config_set(&c, "cpus", cpus));
	EXPECT_TRUE(c.cpus == cpus);
	ASSERT_OK(core_config_set(&c, "sysfs-root", root));
	EXPECT_TRUE(c.backend.sysfs_root == root);
}

TEST(older_spellings_accepted)
{
	struct core_config c = { 0 };

	ASSERT_OK(core_config_set(&c, "loop", "uring"));
	EXPECT_EQ(c.loop, CORE_LOOP_URING);
	ASSERT_OK(core_config_set(&c, "issue", "async"));
	EXPECT_EQ(c.issue_mode, CORE_ISSUE_ASYNC);
	ASSERT_OK(core_config_set(&c, "rate-cmds", "5"));
	EXPECT_EQ(c.rate_cmds, UINT64_C(5));
}

TEST(bad_values_leave_config_alone)
{
	struct core_config c = { 0 };

	ASSERT_OK(core_config_set(&c, "poll-us", "50"));
	EXPECT_ERR(-EINVAL, core_config_set(&c, "poll-us", ""));
	EXPECT_ERR(-EINVAL, core_config_set(&c, "poll-us", "-1"));
	EXPECT_ERR(-EINVAL, core_config_set(&c, "poll-us", "5x"));
	EXPECT_ERR(-ERANGE, core_config_set(&c, "poll-us", "1000001"));
	EXPECT_ERR(-ERANGE, core_config_set(&c, "vcmdq-poll-us", "1000001"));
	EXPECT_ERR(-ERANGE, core_config_set(&c, "vcmdq-poll-us", "0"));
	EXPECT_EQ(c.poll_us, 50u);
	EXPECT_ERR(-ERANGE, core_config_set(&c, "max-inflight", "257"));
	EXPECT_ERR(-ERANGE, core_config_set(&c, "max-batch", "4097"));
	EXPECT_ERR(-ERANGE, core_config_set(&c, "ring-budget", "4097"));
	EXPECT_ERR(-ERANGE, core_config_set(&c, "ctl-timeout-ms", "9"));
	EXPECT_ERR(-ERANGE, core_config_set(&c, "ctl-timeout-ms", "3600001"));
	EXPECT_ERR(-ERANGE, core_config_set(&c, "max-rings", "4294967296"));
	EXPECT_ERR(-EINVAL,
		   core_config_set(&c, "rate-limit", "18446744073709551616"));
	EXPECT_ERR(-EINVAL, core_config_set(&c, "loop", "kqueue"));
	EXPECT_ERR(-EINVAL, core_config_set(&c, "issue-mode", "later"));
	EXPECT_ERR(-EINVAL, core_config_set(&c, "backend", "vfio"));
	EXPECT_EQ(c.max_inflight, 0u);
	EXPECT_EQ(c.loop, CORE_LOOP_AUTO);
	EXPECT_TRUE(c.backend.kind == NULL);
	EXPECT_ERR(-ENOENT, core_config_set(&c, "poll_us", "1"));
	EXPECT_ERR(-ENOENT, core_config_set(&c, "socket", "/x"));
	EXPECT_ERR(-EINVAL, core_config_set(&c, "poll-us", NULL));
}

TEST(key_list)
{
	static const char *const want[] = {
		"backend",   "sysfs-root",    "issue-mode",	"max-inflight",
		"poll-us",   "vcmdq-poll-us", "vcmdq-idle-us",	"ring-budget",
		"max-batch", "rate-limit",    "rate-burst",	"loop",
		"cpus",	     "max-rings",     "ctl-timeout-ms", "sim-smmus",
	};
	unsigned int n = 0;

	while (core_config_key(n))
		n++;
	ASSERT_EQ(n, sizeof(want) / sizeof(want[0]));
	for (unsigned int i = 0; i < n; i++)
		ASSERT_STREQ(core_config_key(i), want[i]);
}

TEST(discover_sim_and_kernel)
{
	struct core_config c = { 0 };
	char names[4][CORE_NAME_MAX];
	unsigned int n = 99;

	EXPECT_ERR(-EINVAL, core_hsmmu_discover(&c, names, 4, &n));
	ASSERT_OK(core_config_set(&c, "backend", "null"));
	ASSERT_OK(core_hsmmu_discover(&c, names, 4, &n));
	ASSERT_EQ(n, 1u);
	ASSERT_STREQ(names[0], "sim0");
	ASSERT_OK(core_config_set(&c, "sim-smmus", "6"));
	ASSERT_OK(core_hsmmu_discover(&c, names, 4, &n));
	ASSERT_EQ(n, 6u); /* the count, though only 4 fit */
	ASSERT_STREQ(names[3], "sim3");
	EXPECT_ERR(-ERANGE, core_config_set(&c, "sim-smmus", "0"));
	/* kernel: a class directory that does not exist holds none. */
	ASSERT_OK(core_config_set(&c, "backend", "kernel"));
	ASSERT_OK(core_config_set(&c, "sysfs-root", "/nonexistent/iommu"));
	ASSERT_OK(core_hsmmu_discover(&c, names, 4, &n));
	ASSERT_EQ(n, 0u);
}

/* One name everywhere: smmu-offloadd offers every setting as --KEY (and
 * so as a config file key, which are the long options). */
TEST(daemon_offers_every_key)
{
	static char help[16384];
	const char *argv[] = { tlib_env("SMMU_OFFLOADD"), "--help", NULL };
	char opt[64];

	ASSERT_EQ(tlib_run(argv, help, sizeof(help)), 0);
	for (unsigned int i = 0; core_config_key(i); i++) {
		snprintf(opt, sizeof(opt), "--%s ", core_config_key(i));
		EXPECT_TRUE(strstr(help, opt) != NULL);
	}
}

/* The daemon polls for CORE_DEFAULT_POLL_US unless told otherwise (it
 * used to leave core_config's 0, "never poll", while --help said 50). */
TEST(daemon_default_poll_us)
{
	static const char *const args[] = { "--log-level", "notice", NULL };
	static const char *const zero[] = { "--poll-us", "0", NULL };
	struct tlib_daemon d;
	char want[32];

	snprintf(want, sizeof(want), "poll_us %u,", CORE_DEFAULT_POLL_US);
	tlib_daemon_init(&d, args);
	d.capture_log = true;
	tlib_daemon_start(&d, NULL);
	EXPECT_TRUE(tlib_daemon_log_wait(&d, want, 10000));
	tlib_daemon_stop(&d);
	tlib_daemon_start(&d, zero);
	EXPECT_TRUE(tlib_daemon_log_wait(&d, "poll_us 0,", 10000));
	tlib_daemon_stop(&d);
	tlib_daemon_cleanup(&d);
}

TEST_HARNESS_MAIN
