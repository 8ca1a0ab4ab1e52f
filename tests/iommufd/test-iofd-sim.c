/* SPDX-License-Identifier: MIT */
/*
 * The null and sim backends, IDR decoding and sysfs discovery: counts,
 * kernel-exact validation, vSID rewriting, the cost model's accounting
 * (counts and simulated charges, never wall-clock times), fault injection
 * and the IOTLB / config-cache oracle.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iommufd/iofd.h"
#include "iommufd/sim.h"
#include "tests/lib/tlib-core.h"

/* Selftest-style helper trio around iofd_invalidate(). */
static int _inv(struct iofd_viommu *v, const struct cmdq_cmd *c, uint32_t n,
		uint32_t *done)
{
	return iofd_invalidate(v, c, n, done);
}

#define inv(v, c, n)                           \
	do {                                   \
		uint32_t d_ = 0;               \
		ASSERT_OK(_inv(v, c, n, &d_)); \
		ASSERT_EQ(d_, (uint32_t)(n));  \
	} while (0)

#define inv_err(e, v, c, n, want_done)                \
	do {                                          \
		uint32_t d_ = 12345;                  \
		ASSERT_ERR(-(e), _inv(v, c, n, &d_)); \
		ASSERT_EQ(d_, (uint32_t)(want_done)); \
	} while (0)

static void sim_cfg(struct iofd_sim_config *c)
{
	iofd_sim_config_default(c);
	c->wait = IOFD_SIM_WAIT_NONE;
}

FIXTURE(sim)
{
	struct iofd_sim_config cfg;
	struct iofd_backend *b;
	struct iofd_hsmmu *h;
	struct iofd_viommu *v;
	uint32_t vdev;
};

FIXTURE_SETUP(sim)
{
	const struct iofd_viommu_spec spec = { .iommufd = -1 };
	struct iofd_config c = { .kind = "sim", .sim = &self->cfg };

	sim_cfg(&self->cfg);
	ASSERT_OK(iofd_backend_new(&c, &self->b));
	ASSERT_STREQ(iofd_backend_kind(self->b), "sim");
	ASSERT_OK(iofd_hsmmu_open(self->b, "smmu0", &self->h));
	ASSERT_OK(iofd_viommu_bind(self->h, &spec, &self->v));
	/* device (pSID) 0x900 as guest SID 0x10 */
	ASSERT_OK(iofd_vdev_alloc(self->v, 0x900, 0x10, &self->vdev));
}

FIXTURE_TEARDOWN(sim)
{
	tlib_iofd_close(self->b, self->h, self->v, self->vdev);
}

TEST_F(sim, happy_path_counts)
{
	struct cmdq_cmd c[130];
	struct iofd_counters ctr;
	uint32_t i;

	for (i = 0; i < 130; i++)
		c[i] = cmdq_build_tlbi_nh_va(1, 0, 0x1000ull * (i + 1), true,
					     NULL);
	inv(self->v, c, 130);
	inv(self->v, c, 1);
	iofd_viommu_counters(self->v, &ctr);
	EXPECT_EQ(ctr.ioctls, 2);
	EXPECT_EQ(ctr.cmds, 131);
	EXPECT_EQ(ctr.host_syncs, 3 + 1); /* ceil(130/63) + 1 */
	EXPECT_EQ(ctr.errors, 0);
	/* charged: 2 ioctls + 131 cmds + 4 syncs, nobody else on the queue */
	EXPECT_EQ(ctr.charged_ns, 2 * self->cfg.ioctl_ns +
					  131 * self->cfg.cmd_ns +
					  4 * self->cfg.sync_ns);
	iofd_hsmmu_counters(self->h, &ctr);
	EXPECT_EQ(ctr.cmds, 131);
	EXPECT_EQ(ctr.host_syncs, 4);
	/* the hardware queue is charged only for commands and syncs */
	EXPECT_EQ(ctr.charged_ns,
		  131 * self->cfg.cmd_ns + 4 * self->cfg.sync_ns);
}

TEST_F(sim, rewrites_vsid_and_vmid)
{
	struct cmdq_cmd c[4], out[8];
	uint16_t vmid = iofd_sim_vmid(self->v);

	c[0] = cmdq_build_cfgi_cd(0x10, 3, true);
	c[1] = cmdq_build_atc_inv(0x10, false, 0, false, 0x4000, 0);
	c[2] = cmdq_build_tlbi_nh_asid(7, 0x55);
	c[3] = cmdq_build_tlbi_nsnh_all();
	inv(self->v, c, 4);
	ASSERT_EQ(iofd_sim_issued(self->v, out, 8), 4);
	EXPECT_EQ(cmdq_sid(&out[0]), 0x900);
	EXPECT_EQ(cmdq_ssid(&out[0]), 3);
	EXPECT_EQ(cmdq_sid(&out[1]), 0x900);
	EXPECT_EQ(cmdq_tlbi_vmid(&out[2]), vmid);
	EXPECT_EQ(cmdq_tlbi_asid(&out[2]), 7);
	/* NSNH_ALL becomes NH_ALL of this VM only */
	EXPECT_EQ(cmdq_cmd_opcode(&out[3]), CMDQ_OP_TLBI_NH_ALL);
	EXPECT_EQ(cmdq_tlbi_vmid(&out[3]), vmid);
	EXPECT_EQ(out[3].d[1], 0);
}

TEST_F(sim, unknown_vsid_exact_done)
{
	struct cmdq_cmd c[100], out[IOFD_SIM_LOG];
	struct iofd_counters ctr;
	uint32_t i;

	for (i = 0; i < 100; i++)
		c[i] = cmdq_build_tlbi_nh_asid((uint16_t)i, 0);
	c[70] = cmdq_build_cfgi_cd_all(0x11); /* no vDEVICE for 0x11 */
	inv_err(EIO, self->v, c, 100, 70);
	/* 63 + the 7 before the bad one were issued, nothing after it */
	EXPECT_EQ(iofd_sim_issued(self->v, out, IOFD_SIM_LOG), 70);
	iofd_viommu_counters(self->v, &ctr);
	EXPECT_EQ(ctr.cmds, 70);
	EXPECT_EQ(ctr.host_syncs, 2);
	EXPECT_EQ(ctr.errors, 1);
}

TEST_F(sim, validation_like_newer_kernel)
{
	struct cmdq_cmd c[3];

	c[0] = cmdq_build_tlbi_nh_asid(1, 0);
	c[1] = cmdq_build_tlbi_nh_asid(2, 0);
	/* CFGI_STE is never forwarded */
	c[2] = cmdq_build_cfgi_ste(0x10, true);
	inv_err(EIO, self->v, c, 3, 2);
	/* CMD_SYNC is consumed by the service, never forwarded */
	c[0] = cmdq_build_sync(CMDQ_SYNC_CS_SEV, 0, 0, 0, 0);
	inv_err(EIO, self->v, c, 1, 0);
	/* a RES0 bit in a forwarded command */
	c[0] = cmdq_build_tlbi_nh_all(0);
	c[0].d[1] |= 1;
	inv_err(EIO, self->v, c, 1, 0);
	/* TLBI_NH_VA with range fields is fine with RIL ... */
	c[0] = cmdq_build_tlbi_nh_va(
		1, 0, 0x10000, false,
		&(struct cmdq_tlbi_range){ .num = 3, .tg = CMDQ_TG_4K });
	inv(self->v, c, 1);
}

TEST(sim_caps_from_config)
{
	const struct iofd_viommu_spec spec = { .iommufd = -1 };
	struct iofd_sim_config cfg;
	struct iofd_config c = { .kind = "sim", .sim = &cfg };
	struct iofd_backend *b;
	struct iofd_hsmmu *h;
	struct iofd_viommu *v;
	struct cmdq_cmd cmd;
	uint32_t done, vdev;

	sim_cfg(&cfg);
	cfg.caps.range_inv = false;
	cfg.caps.ats = false;
	ASSERT_OK(iofd_backend_new(&c, &b));
	ASSERT_OK(iofd_hsmmu_open(b, "smmu1", &h));
	ASSERT_EQ(iofd_hsmmu_caps(h)->range_inv, false);
	ASSERT_OK(iofd_viommu_bind(h, &spec, &v));
	ASSERT_OK(iofd_vdev_alloc(v, 5, 6, &vdev));
	cmd = cmdq_build_tlbi_nh_va(
		1, 0, 0x10000, false,
		&(struct cmdq_tlbi_range){ .num = 3, .tg = CMDQ_TG_4K });
	ASSERT_ERR(-EIO, iofd_invalidate(v, &cmd, 1, &done));
	cmd = cmdq_build_atc_inv(6, false, 0, false, 0, 0);
	ASSERT_ERR(-EIO, iofd_invalidate(v, &cmd, 1, &done));
	ASSERT_EQ(done, 0);
	ASSERT_OK(iofd_vdev_destroy(v, vdev));
	iofd_viommu_unbind(v);
	iofd_hsmmu_close(h);
	iofd_backend_free(b);
}

TEST_F(sim, vdev_errors)
{
	uint32_t id;

	ASSERT_ERR(-EEXIST, iofd_vdev_alloc(self->v, 0x900, 0x20, &id));
	ASSERT_ERR(-EEXIST, iofd_vdev_alloc(self->v, 0x901, 0x10, &id));
	ASSERT_ERR(-EINVAL, iofd_vdev_alloc(self->v, 0x901, 1ull << 32, &id));
	ASSERT_ERR(-ENOENT, iofd_vdev_destroy(self->v, 999));
}

TEST(sim_hsmmu_open_twice)
{
	struct iofd_config c = { .kind = "sim" };
	struct iofd_backend *b;
	struct iofd_hsmmu *h, *h2;

	ASSERT_ERR(-EINVAL,
		   iofd_backend_new(&(struct iofd_config){ .kind = "x" }, &b));
	ASSERT_OK(iofd_backend_new(&c, &b));
	ASSERT_OK(iofd_hsmmu_open(b, "a", &h));
	ASSERT_ERR(-EEXIST, iofd_hsmmu_open(b, "a", &h2));
	ASSERT_OK(iofd_hsmmu_open(b, "b", &h2));
	iofd_hsmmu_close(h2);
	iofd_hsmmu_close(h);
	iofd_backend_free(b);
}

TEST_F(sim, fault_injection_eio_once)
{
	struct cmdq_cmd c[10];
	uint32_t i;

	for (i = 0; i < 10; i++)
		c[i] = cmdq_build_tlbi_nh_asid((uint16_t)i, 0);
	/* fixture config is copied at backend_new: build a second one */
	iofd_viommu_unbind(self->v);
	self->v = NULL;
	iofd_hsmmu_close(self->h);
	iofd_backend_free(self->b);
	self->cfg.fail_at_cmd = 14;
	self->cfg.fail_errno = EIO;
	ASSERT_OK(iofd_backend_new(&(struct iofd_config){ .kind = "sim",
							  .sim = &self->cfg },
				   &self->b));
	ASSERT_OK(iofd_hsmmu_open(self->b, "smmu0", &self->h));
	ASSERT_OK(iofd_viommu_bind(self->h,
				   &(struct iofd_viommu_spec){ .iommufd = -1 },
				   &self->v));
	self->vdev = 0;
	inv(self->v, c, 10); /* commands 1..10 */
	inv_err(EIO, self->v, c, 10, 3); /* command 14 = index 3 */
	inv(self->v, c + 3, 7); /* fires once: the retry goes through */
}

TEST_F(sim, fault_injection_timeout)
{
	struct cmdq_cmd c[100];
	struct iofd_counters ctr;
	uint32_t i;

	for (i = 0; i < 100; i++)
		c[i] = cmdq_build_tlbi_nh_va(1, 0, 0x1000ull * i, true, NULL);
	iofd_viommu_unbind(self->v);
	self->v = NULL;
	iofd_hsmmu_close(self->h);
	iofd_backend_free(self->b);
	self->cfg.fail_at_cmd = 70;
	self->cfg.fail_errno = ETIMEDOUT;
	ASSERT_OK(iofd_backend_new(&(struct iofd_config){ .kind = "sim",
							  .sim = &self->cfg },
				   &self->b));
	ASSERT_OK(iofd_hsmmu_open(self->b, "smmu0", &self->h));
	ASSERT_OK(iofd_viommu_bind(self->h,
				   &(struct iofd_viommu_spec){ .iommufd = -1 },
				   &self->v));
	self->vdev = 0;
	for (i = 0; i < 100; i++)
		ASSERT_OK(iofd_sim_tlb_fill(self->v, 1, 0x1000ull * i));
	/* second chunk [63, 100) times out: done = 63 */
	inv_err(ETIMEDOUT, self->v, c, 100, 63);
	/* the first chunk completed, the timed-out one completed nothing */
	EXPECT_FALSE(iofd_sim_tlb_lookup(self->v, 1, 0x1000ull * 62));
	EXPECT_TRUE(iofd_sim_tlb_lookup(self->v, 1, 0x1000ull * 63));
	iofd_viommu_counters(self->v, &ctr);
	EXPECT_EQ(ctr.host_syncs, 2);
	EXPECT_EQ(ctr.cmds, 100);
}

TEST_F(sim, oracle_tlb_semantics)
{
	const uint64_t base = 0x400000;
	struct cmdq_cmd c;
	uint32_t i;

	for (i = 0; i < 16; i++) {
		ASSERT_OK(iofd_sim_tlb_fill(self->v, 1, base + 0x1000ull * i));
		ASSERT_OK(iofd_sim_tlb_fill(self->v, 2, base + 0x1000ull * i));
	}
	/* range: (NUM + 1) << SCALE = 4 << 1 = 8 pages of 4K from base */
	c = cmdq_build_tlbi_nh_va(
		1, 0, base, true,
		&(struct cmdq_tlbi_range){
			.num = 3, .scale = 1, .tg = CMDQ_TG_4K, .ttl = 3 });
	inv(self->v, &c, 1);
	for (i = 0; i < 16; i++) {
		EXPECT_EQ(iofd_sim_tlb_lookup(self->v, 1, base + 0x1000ull * i),
			  i >= 8);
		EXPECT_TRUE(
			iofd_sim_tlb_lookup(self->v, 2, base + 0x1000ull * i));
	}
	/* VAA: any ASID, one page without range */
	c = cmdq_build_tlbi_nh_vaa(0, base + 0xa000, false, NULL);
	inv(self->v, &c, 1);
	EXPECT_FALSE(iofd_sim_tlb_lookup(self->v, 2, base + 0xa000));
	EXPECT_FALSE(iofd_sim_tlb_lookup(self->v, 1, base + 0xa000));
	EXPECT_TRUE(iofd_sim_tlb_lookup(self->v, 2, base + 0xb000));
	/* ASID */
	c = cmdq_build_tlbi_nh_asid(2, 0);
	inv(self->v, &c, 1);
	EXPECT_FALSE(iofd_sim_tlb_lookup(self->v, 2, base + 0xb000));
	EXPECT_TRUE(iofd_sim_tlb_lookup(self->v, 1, base + 0xb000));
	/* NSNH_ALL clears the rest */
	c = cmdq_build_tlbi_nsnh_all();
	inv(self->v, &c, 1);
	EXPECT_EQ(iofd_sim_oracle_entries(self->v), 0);
}

TEST_F(sim, oracle_cd_and_atc)
{
	struct cmdq_cmd c;

	ASSERT_OK(iofd_sim_cd_fill(self->v, 0x10, 1));
	ASSERT_OK(iofd_sim_cd_fill(self->v, 0x10, 2));
	ASSERT_OK(iofd_sim_atc_fill(self->v, 0x10, IOFD_SIM_NO_SSID, 0x8000));
	ASSERT_OK(iofd_sim_atc_fill(self->v, 0x10, IOFD_SIM_NO_SSID, 0x20000));
	ASSERT_OK(iofd_sim_atc_fill(self->v, 0x10, 5, 0x8000));
	c = cmdq_build_cfgi_cd(0x10, 1, true);
	inv(self->v, &c, 1);
	EXPECT_FALSE(iofd_sim_cd_lookup(self->v, 0x10, 1));
	EXPECT_TRUE(iofd_sim_cd_lookup(self->v, 0x10, 2));
	c = cmdq_build_cfgi_cd_all(0x10);
	inv(self->v, &c, 1);
	EXPECT_FALSE(iofd_sim_cd_lookup(self->v, 0x10, 2));
	/* ATC_INV size 3 = 8 pages aligned: [0x8000, 0x10000) without PASID */
	c = cmdq_build_atc_inv(0x10, false, 0, false, 0x9000, 3);
	inv(self->v, &c, 1);
	EXPECT_FALSE(
		iofd_sim_atc_lookup(self->v, 0x10, IOFD_SIM_NO_SSID, 0x8000));
	EXPECT_TRUE(
		iofd_sim_atc_lookup(self->v, 0x10, IOFD_SIM_NO_SSID, 0x20000));
	EXPECT_TRUE(iofd_sim_atc_lookup(self->v, 0x10, 5, 0x8000));
	c = cmdq_build_atc_inv(0x10, true, 5, false, 0, CMDQ_ATC_INV_SIZE_ALL);
	inv(self->v, &c, 1);
	EXPECT_FALSE(iofd_sim_atc_lookup(self->v, 0x10, 5, 0x8000));
	EXPECT_EQ(iofd_sim_oracle_entries(self->v), 1);
}

/*
 * Global (nG = 0) entries: every ASID hits them; by-VA (any ASID), by-VAA
 * and ALL invalidations remove them, by-ASID ones do not (SMMUv3 4.4.2).
 */
TEST_F(sim, oracle_global_entries)
{
	const uint64_t base = 0x800000;
	struct cmdq_cmd c;
	uint32_t i;

	for (i = 0; i < 4; i++)
		ASSERT_OK(iofd_sim_tlb_fill_global(self->v,
						   base + 0x1000ull * i));
	ASSERT_OK(iofd_sim_tlb_fill(self->v, 1, base + 0x4000));
	EXPECT_TRUE(iofd_sim_tlb_lookup(self->v, 7, base));
	c = cmdq_build_tlbi_nh_asid(1, 0);
	inv(self->v, &c, 1);
	EXPECT_FALSE(iofd_sim_tlb_lookup(self->v, 1, base + 0x4000));
	for (i = 0; i < 4; i++)
		EXPECT_TRUE(
			iofd_sim_tlb_lookup(self->v, 1, base + 0x1000ull * i));
	/* By VA with another ASID still removes the global entry. */
	c = cmdq_build_tlbi_nh_va(9, 0, base, true, NULL);
	inv(self->v, &c, 1);
	EXPECT_FALSE(iofd_sim_tlb_lookup(self->v, 1, base));
	EXPECT_TRUE(iofd_sim_tlb_lookup(self->v, 1, base + 0x1000));
	c = cmdq_build_tlbi_nh_vaa(0, base + 0x1000, true, NULL);
	inv(self->v, &c, 1);
	EXPECT_FALSE(iofd_sim_tlb_lookup(self->v, 3, base + 0x1000));
	c = cmdq_build_tlbi_nh_all(0);
	inv(self->v, &c, 1);
	EXPECT_EQ(iofd_sim_oracle_entries(self->v), 0);

	/* ATC: Global with SSV removes every PASID's entries, not the
	 * entries without PASID. */
	ASSERT_OK(iofd_sim_atc_fill(self->v, 0x10, 5, 0x8000));
	ASSERT_OK(iofd_sim_atc_fill(self->v, 0x10, 6, 0x8000));
	ASSERT_OK(iofd_sim_atc_fill(self->v, 0x10, IOFD_SIM_NO_SSID, 0x8000));
	c = cmdq_build_atc_inv(0x10, true, 5, true, 0, CMDQ_ATC_INV_SIZE_ALL);
	inv(self->v, &c, 1);
	EXPECT_FALSE(iofd_sim_atc_lookup(self->v, 0x10, 5, 0x8000));
	EXPECT_FALSE(iofd_sim_atc_lookup(self->v, 0x10, 6, 0x8000));
	EXPECT_TRUE(
		iofd_sim_atc_lookup(self->v, 0x10, IOFD_SIM_NO_SSID, 0x8000));
}

/*
 * Issue 12 item 2 end to end: a guest SYNC group "TLBI_NH_VA(1, va);
 * TLBI_NH_ASID(1)" coalesced and issued must leave no global translation
 * of va. (The coalescer used to drop the by-VA command.)
 */
TEST_F(sim, coalesced_group_removes_global_entry)
{
	struct cmdq_cmd c[2] = { cmdq_build_tlbi_nh_va(1, 0, 0x5000, true,
						       NULL),
				 cmdq_build_tlbi_nh_asid(1, 0) };
	size_t n;

	ASSERT_OK(iofd_sim_tlb_fill_global(self->v, 0x5000));
	ASSERT_OK(iofd_sim_tlb_fill(self->v, 1, 0x6000));
	n = cmdq_coalesce(c, 2);
	inv(self->v, c, (uint32_t)n);
	EXPECT_FALSE(iofd_sim_tlb_lookup(self->v, 2, 0x5000));
	EXPECT_FALSE(iofd_sim_tlb_lookup(self->v, 1, 0x6000));
}

/*
 * The sim plays the kernel with its own table (iommufd/accept.h), not
 * cmdq_validate(): it accepts a TLBI whose TG names a granule the host
 * lacks (the kernel does not check that; only the service refuses it)
 * and rejects a reserved bit on its own.
 */
TEST_F(sim, validates_independently_of_cmdq)
{
	struct cmdq_cmd c = cmdq_build_tlbi_nh_va(
		1, 0, 0x10000, true,
		&(struct cmdq_tlbi_range){
			.num = 1, .tg = CMDQ_TG_16K, .ttl = 2 });

	ASSERT_FALSE(self->cfg.caps.gran16k);
	ASSERT_EQ(cmdq_validate(&self->cfg.caps, &c, NULL), CMDQ_CERROR_ILL);
	inv(self->v, &c, 1);
	c.d[0] |= 1ull << 26; /* RES0 in TLBI_NH_VA */
	inv_err(EIO, self->v, &c, 1, 0);
}

/*
 * A "service" that drops one invalidation of a guest SYNC group must be
 * caught: after the group completed, the oracle still holds the entry.
 */
static uint32_t forward_all_but(struct cmdq_cmd *c, uint32_t n, uint32_t drop)
{
	uint32_t i, k = 0;

	for (i = 0; i < n; i++)
		if (i != drop)
			c[k++] = c[i];
	return k;
}

TEST_F(sim, oracle_catches_dropped_invalidation)
{
	struct cmdq_cmd c[8];
	uint32_t i, n, stale = 0;

	for (i = 0; i < 8; i++) {
		ASSERT_OK(iofd_sim_tlb_fill(self->v, 3, 0x1000ull * i));
		c[i] = cmdq_build_tlbi_nh_va(3, 0, 0x1000ull * i, true, NULL);
	}
	n = forward_all_but(c, 8, 5);
	inv(self->v, c, n);
	for (i = 0; i < 8; i++)
		stale += iofd_sim_tlb_lookup(self->v, 3, 0x1000ull * i);
	EXPECT_EQ(stale, 1);
	EXPECT_TRUE(iofd_sim_tlb_lookup(self->v, 3, 0x5000));
}

/*
 * Two callers share one host queue: the hardware is charged exactly the
 * sum of the work, and each caller at least its own work; in BLOCK mode
 * the sum of caller charges exceeds the hardware time only by the
 * ioctl costs plus the time spent queued behind the other caller.
 */
TEST_TIMEOUT(sim_shared_queue, 30)
{
	struct iofd_sim_config cfg;
	struct iofd_config c = { .kind = "sim", .sim = &cfg };
	const struct iofd_viommu_spec spec = { .iommufd = -1 };
	struct iofd_counters hc, vc[2];
	struct cmdq_cmd cmds[63];
	struct tlib_issuer a[2];
	struct iofd_backend *b;
	struct iofd_hsmmu *h;
	uint64_t work;
	int i;

	iofd_sim_config_default(&cfg);
	cfg.wait = IOFD_SIM_WAIT_BLOCK;
	cfg.sync_ns = 20000;
	ASSERT_OK(iofd_backend_new(&c, &b));
	ASSERT_OK(iofd_hsmmu_open(b, "q", &h));
	for (i = 0; i < 63; i++)
		cmds[i] = cmdq_build_tlbi_nh_asid((uint16_t)i, 0);
	for (i = 0; i < 2; i++) {
		a[i] = (struct tlib_issuer){ .c = cmds, .n = 63, .rounds = 50 };
		ASSERT_OK(iofd_viommu_bind(h, &spec, &a[i].v));
	}
	tlib_threads(tlib_issue, a, sizeof(a[0]), 2);
	work = 50 * (63 * (uint64_t)cfg.cmd_ns + cfg.sync_ns);
	iofd_hsmmu_counters(h, &hc);
	EXPECT_EQ(hc.ioctls, 100);
	EXPECT_EQ(hc.host_syncs, 100);
	EXPECT_EQ(hc.charged_ns, 2 * work);
	for (i = 0; i < 2; i++) {
		iofd_viommu_counters(a[i].v, &vc[i]);
		EXPECT_EQ(vc[i].host_syncs, 50);
		EXPECT_GE(vc[i].charged_ns, work + 50 * cfg.ioctl_ns);
		iofd_viommu_unbind(a[i].v);
	}
	iofd_hsmmu_close(h);
	iofd_backend_free(b);
}

TEST(null_counts)
{
	const struct iofd_viommu_spec spec = { .iommufd = -1 };
	struct iofd_config c = { .kind = "null" };
	struct iofd_counters ctr;
	struct iofd_backend *b;
	struct iofd_hsmmu *h;
	struct iofd_viommu *v;
	struct cmdq_cmd cmds[127];
	uint32_t done, id;

	memset(cmds, 0, sizeof(cmds)); /* null accepts even garbage */
	ASSERT_OK(iofd_backend_new(&c, &b));
	ASSERT_OK(iofd_hsmmu_open(b, "n0", &h));
	ASSERT_OK(iofd_viommu_bind(h, &spec, &v));
	ASSERT_OK(iofd_vdev_alloc(v, 1, 2, &id));
	ASSERT_OK(iofd_invalidate(v, cmds, 127, &done));
	ASSERT_EQ(done, 127);
	ASSERT_OK(iofd_invalidate(v, cmds, 63, &done));
	ASSERT_ERR(-EINVAL, iofd_invalidate(v, cmds, 0, &done));
	iofd_viommu_counters(v, &ctr);
	EXPECT_EQ(ctr.ioctls, 2);
	EXPECT_EQ(ctr.cmds, 190);
	EXPECT_EQ(ctr.host_syncs, 3 + 1);
	EXPECT_EQ(ctr.charged_ns, 0);
	iofd_hsmmu_counters(h, &ctr);
	EXPECT_EQ(ctr.cmds, 190);
	ASSERT_OK(iofd_vdev_destroy(v, id));
	iofd_viommu_unbind(v);
	iofd_hsmmu_close(h);
	iofd_backend_free(b);
}

TEST(caps_from_idr)
{
	uint32_t idr[6] = { 0 };
	struct cmdq_caps c;

	ASSERT_ERR(-EOPNOTSUPP, iofd_caps_from_idr(idr, &c));
	idr[0] = (1u << 12) | (1u << 10); /* ASID16, ATS */
	idr[1] = (20u << 6) | 32u; /* SSIDSIZE 20, SIDSIZE 32 */
	idr[3] = 1u << 10; /* RIL */
	idr[5] = (1u << 4) | (1u << 6) | 5u; /* 4K, 64K, OAS 48 bits */
	ASSERT_OK(iofd_caps_from_idr(idr, &c));
	EXPECT_EQ(c.asid_bits, 16);
	EXPECT_TRUE(c.ats);
	EXPECT_EQ(c.ssid_bits, 20);
	EXPECT_EQ(c.sid_bits, 32);
	EXPECT_TRUE(c.range_inv);
	EXPECT_TRUE(c.gran4k);
	EXPECT_FALSE(c.gran16k);
	EXPECT_TRUE(c.gran64k);
	EXPECT_FALSE(c.ds);
	/* QEMU-like: 8-bit ASIDs, no ATS, no substreams, no RIL, 16K + DS */
	idr[0] = 0;
	idr[1] = 16;
	idr[3] = 0;
	idr[5] = (1u << 5) | (1u << 3);
	ASSERT_OK(iofd_caps_from_idr(idr, &c));
	EXPECT_EQ(c.asid_bits, 8);
	EXPECT_FALSE(c.ats);
	EXPECT_EQ(c.ssid_bits, 0);
	EXPECT_EQ(c.sid_bits, 16);
	EXPECT_FALSE(c.range_inv);
	EXPECT_TRUE(c.gran16k);
	EXPECT_FALSE(c.gran4k);
	EXPECT_TRUE(c.ds);
}

static int rm_one(const char *path, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	return remove(path);
}

static void mkpath(const char *p)
{
	if (mkdir(p, 0700) && errno != EEXIST)
		FAIL("mkdir %s: %s", p, strerror(errno));
}

TEST(discover_fake_sysfs)
{
	char root[] = "/tmp/iofd-sysfs-XXXXXX", p[256], q[256];
	char names[4][IOFD_NAME_MAX];
	size_t n;

	ASSERT_NONNULL(mkdtemp(root));
	/* two SMMUv3 with driver links, one intel IOMMU, one bare smmu3. */
	snprintf(p, sizeof(p), "%s/drv", root);
	mkpath(p);
	snprintf(p, sizeof(p), "%s/drv/arm-smmu-v3", root);
	mkpath(p);
	snprintf(p, sizeof(p), "%s/drv/dmar", root);
	mkpath(p);
	const char *entries[][2] = {
		{ "smmu3.0x0000000009050000", "arm-smmu-v3" },
		{ "smmu3.0x0000000009060000", "arm-smmu-v3" },
		{ "dmar0", "dmar" },
		{ "smmu3.0x0000000010000000", NULL }
	};
	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s/%s", root, entries[i][0]);
		mkpath(p);
		snprintf(p, sizeof(p), "%s/%s/device", root, entries[i][0]);
		mkpath(p);
		if (!entries[i][1])
			continue;
		snprintf(p, sizeof(p), "%s/%s/device/driver", root,
			 entries[i][0]);
		snprintf(q, sizeof(q), "%s/drv/%s", root, entries[i][1]);
		ASSERT_EQ(symlink(q, p), 0);
	}
	ASSERT_OK(iofd_discover(root, names, 4, &n));
	ASSERT_EQ(n, 3);
	ASSERT_STREQ(names[0], "smmu3.0x0000000009050000");
	ASSERT_STREQ(names[1], "smmu3.0x0000000009060000");
	ASSERT_STREQ(names[2], "smmu3.0x0000000010000000");
	ASSERT_OK(iofd_discover(root, names, 1, &n));
	ASSERT_EQ(n, 3);
	snprintf(p, sizeof(p), "%s/nonexistent", root);
	ASSERT_ERR(-ENOENT, iofd_discover(p, names, 4, &n));
	ASSERT_EQ(nftw(root, rm_one, 8, FTW_DEPTH | FTW_PHYS), 0);
}

TEST_HARNESS_MAIN
