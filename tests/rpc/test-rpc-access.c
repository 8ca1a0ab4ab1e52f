/* SPDX-License-Identifier: MIT */
/*
 * Who may connect to smmu-offloadd and what each peer sees (issue 12,
 * item 6): GetStats and List scoped to the caller's own objects, the full
 * view for admins only; the kernel's overflow uid/gid (what an id that is
 * unmapped in the daemon's user namespace reads as) never admitted
 * without an explicit opt-in; gids matched against supplementary groups.
 *
 * Peers of other uids: the test process (root) switches its effective
 * ids around connect() (SO_PEERCRED and SO_PEERGROUPS record the
 * credentials of the connect() call) and back; without root the tests
 * SKIP. The daemon runs as a child process (tests/security/daemon.c).
 */
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <smmu-offload/client.h>
#include <smmu-offload/vcmdq.h>
#include <smmu-offload/ring-prod.h>

#include "tests/harness.h"
#include "tests/lib/tlib.h"

#define UID_A 4321
#define UID_B 4322
#define GROUP_X 777
/* Only against a hang: every wait here is on an event. */
#define HANG_GUARD_MS 20000

/* ---- peers of other ids --------------------------------------------- */

static void need_root(void)
{
	if (geteuid() != 0)
		SKIP("needs root to connect as other uids");
}

/* Read by the test, independently of the daemon's rpc_overflow_ids(). */
static unsigned int overflow_id(const char *which)
{
	char path[64];
	unsigned int v = 65534;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/sys/kernel/overflow%s", which);
	f = fopen(path, "re");
	if (f) {
		if (fscanf(f, "%u", &v) != 1)
			v = 65534;
		fclose(f);
	}
	return v;
}

/*
 * Connect as @uid/@gid with supplementary @groups: switch the effective
 * ids (the saved uid stays 0 so we can switch back), connect, switch
 * back. Returns smmu_client_connect()'s result.
 */
static int connect_as(const struct tlib_daemon *d, uid_t uid, gid_t gid,
		      const gid_t *groups, size_t n_groups,
		      struct smmu_client **ret)
{
	int r;

	ASSERT_EQ(setgroups(n_groups, groups), 0);
	ASSERT_EQ(setegid(gid), 0);
	ASSERT_EQ(seteuid(uid), 0);
	r = smmu_client_connect(d->sock, "access", ret);
	ASSERT_EQ(seteuid(0), 0);
	ASSERT_EQ(setegid(0), 0);
	ASSERT_EQ(setgroups(0, NULL), 0);
	return r;
}

static struct smmu_client *connect_uid(const struct tlib_daemon *d, uid_t uid)
{
	struct smmu_client *c = NULL;

	ASSERT_OK(connect_as(d, uid, uid, NULL, 0, &c));
	return c;
}

/* The daemon with @extra; every peer may reach the socket file. */
static void start(struct tlib_daemon *d, const char *const *extra)
{
	ASSERT_EQ(chmod(d->dir, 0711), 0);
	tlib_daemon_start(d, extra);
}

/* Start-up with @extra must fail as a usage error (exit 2). */
static void start_refused(struct tlib_daemon *d, const char *const *extra)
{
	int st = tlib_daemon_exit(d, extra);

	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(WEXITSTATUS(st), 2);
}

TLIB_DAEMON_FIXTURE(acc, tlib_daemon_quiet)

/* ---- scoping -------------------------------------------------------- */

static void vring_attach(struct smmu_client *c, uint32_t vs,
			 struct tlib_ring *r)
{
	tlib_ring_new(r, 6, 0);
	tlib_client_ring_attach(c, vs, r);
}

/* A counter's value; -ENOENT (absent) as UINT64_MAX. */
static uint64_t stat_of(struct smmu_client *c, enum smmu_client_scope s,
			uint32_t id, const char *name)
{
	uint64_t v = UINT64_MAX;

	if (_tlib_stat(c, s, id, name, &v))
		v = UINT64_MAX;
	return v;
}

static int stats_err(struct smmu_client *c, enum smmu_client_scope s,
		     uint32_t id)
{
	struct smmu_client_stats *st = NULL;
	int r = smmu_client_stats(c, s, id, &st);

	smmu_client_stats_free(st);
	return r;
}

/*
 * Two VMMs of different uids on one host SMMU: each lists and reads only
 * its own vSMMU, ring and devices (vSIDs); host SMMU counters and the
 * service's client/request numbers are the admin's. Root sees all.
 */
TEST_F(acc, stats_and_list_scoped_to_the_caller)
{
	const char *const args[] = {
		"--socket-mode", "0666", "--allow-uid", "4321",
		"--allow-uid",	 "4322", NULL
	};
	struct smmu_client *a, *b, *root;
	struct smmu_client_list *l;
	struct smmu_client_hsmmu *h;
	uint32_t vs_a, vs_b, vdev, nh, vq;
	struct tlib_ring ra;
	int page;

	need_root();
	start(&self->d, args);
	a = connect_uid(&self->d, UID_A);
	b = connect_uid(&self->d, UID_B);
	ASSERT_OK(smmu_client_vsmmu_create(a, "sim0", -1, 0, 0, &vs_a));
	ASSERT_OK(smmu_client_device_attach(a, vs_a, 1, 0x10, &vdev));
	ASSERT_OK(smmu_client_device_attach(a, vs_a, 2, 0x11, &vdev));
	vring_attach(a, vs_a, &ra);
	ASSERT_OK(smmu_client_vsmmu_create(b, "sim0", -1, 0, 0, &vs_b));
	ASSERT_OK(smmu_client_device_attach(b, vs_b, 3, 0x20, &vdev));
	/* A software vCMDQ of A's (an unenabled page). */
	page = memfd_create("page", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	ASSERT_GE(page, 0);
	ASSERT_EQ(ftruncate(page, SMMU_VCMDQ_FILE_SIZE), 0);
	ASSERT_EQ(fcntl(page, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
	ASSERT_OK(smmu_client_vcmdq_attach(a, vs_a, page, 2, -1, &vq));

	/* A sees its vSMMU, ring and two vSIDs; nothing of B's. */
	ASSERT_OK(smmu_client_list(a, 0, &l));
	ASSERT_EQ(l->n_vsmmus, 1);
	EXPECT_EQ(l->vsmmus[0].id, vs_a);
	EXPECT_TRUE(l->vsmmus[0].owned);
	ASSERT_EQ(l->n_rings, 1);
	EXPECT_EQ(l->rings[0].id, ra.id);
	ASSERT_EQ(l->n_devices, 2);
	for (uint32_t i = 0; i < l->n_devices; i++) {
		EXPECT_EQ(l->devices[i].vsmmu_id, vs_a);
		EXPECT_NE(l->devices[i].vsid, 0x20);
	}
	smmu_client_list_free(l);

	/* B: its vSMMU and vSID only; A's objects are not its business. */
	ASSERT_OK(smmu_client_list(b, 0, &l));
	ASSERT_EQ(l->n_vsmmus, 1);
	EXPECT_EQ(l->vsmmus[0].id, vs_b);
	EXPECT_EQ(l->n_rings, 0);
	ASSERT_EQ(l->n_devices, 1);
	EXPECT_EQ(l->devices[0].vsid, 0x20);
	smmu_client_list_free(l);
	ASSERT_ERR(-EPERM, smmu_client_list(b, vs_a, &l));
	ASSERT_ERR(-EPERM, stats_err(b, SMMU_CLIENT_SCOPE_VSMMU, vs_a));
	ASSERT_ERR(-EPERM, stats_err(b, SMMU_CLIENT_SCOPE_RING, ra.id));
	ASSERT_ERR(-EPERM, stats_err(b, SMMU_CLIENT_SCOPE_VCMDQ, vq));
	ASSERT_ERR(-EPERM, smmu_client_vcmdq_set_base(b, vq, 0, 0));
	ASSERT_ERR(-EPERM, smmu_client_vcmdq_set_ready(b, vq, 0, true));
	ASSERT_ERR(-EPERM, smmu_client_vcmdq_detach(b, vq));
	ASSERT_ERR(-EPERM, smmu_client_gmem_add(b, vs_a, page, 0, 0, 4096));
	ASSERT_ERR(-EPERM, smmu_client_gmem_remove(b, vs_a, 0, 4096));
	EXPECT_EQ(stat_of(a, SMMU_CLIENT_SCOPE_VCMDQ, vq, "nq"), 2);
	/* Host SMMU counters add up both VMs: admin only. */
	ASSERT_ERR(-EPERM, stats_err(b, SMMU_CLIENT_SCOPE_HSMMU, 0));
	ASSERT_ERR(-EPERM, stats_err(a, SMMU_CLIENT_SCOPE_HSMMU, 0));
	/* Its own objects' counters it may read. */
	EXPECT_EQ(stat_of(a, SMMU_CLIENT_SCOPE_VSMMU, vs_a, "n_devices"), 2);
	EXPECT_EQ(stat_of(a, SMMU_CLIENT_SCOPE_RING, ra.id, "vsmmu_id"), vs_a);
	EXPECT_EQ(stat_of(b, SMMU_CLIENT_SCOPE_VSMMU, vs_b, "n_devices"), 1);

	/* Service scope: its own counts, no other clients' numbers. */
	EXPECT_EQ(stat_of(b, SMMU_CLIENT_SCOPE_SERVICE, 0, "n_vsmmus"), 1);
	EXPECT_EQ(stat_of(b, SMMU_CLIENT_SCOPE_SERVICE, 0, "n_rings"), 0);
	EXPECT_EQ(stat_of(b, SMMU_CLIENT_SCOPE_SERVICE, 0, "n_devices"), 1);
	EXPECT_EQ(stat_of(b, SMMU_CLIENT_SCOPE_SERVICE, 0, "clients"),
		  UINT64_MAX);
	EXPECT_EQ(stat_of(b, SMMU_CLIENT_SCOPE_SERVICE, 0, "requests"),
		  UINT64_MAX);
	/* The host SMMU list: names for everyone, occupancy for admins. */
	ASSERT_OK(smmu_client_list_hsmmus(b, &h, &nh));
	ASSERT_EQ(nh, 1);
	EXPECT_EQ(strcmp(h[0].name, "sim0"), 0);
	EXPECT_EQ(h[0].n_vsmmus, 0);
	EXPECT_EQ(h[0].n_rings, 0);
	free(h);

	/* Root (an admin) sees everything. */
	ASSERT_OK(smmu_client_connect(self->d.sock, "root", &root));
	ASSERT_OK(smmu_client_list(root, 0, &l));
	EXPECT_EQ(l->n_vsmmus, 2);
	EXPECT_EQ(l->n_rings, 1);
	EXPECT_EQ(l->n_devices, 3);
	smmu_client_list_free(l);
	ASSERT_OK(smmu_client_list(root, vs_a, &l));
	EXPECT_EQ(l->n_devices, 2);
	smmu_client_list_free(l);
	EXPECT_EQ(stat_of(root, SMMU_CLIENT_SCOPE_SERVICE, 0, "n_vsmmus"), 2);
	EXPECT_EQ(stat_of(root, SMMU_CLIENT_SCOPE_SERVICE, 0, "clients"), 3);
	EXPECT_EQ(stat_of(root, SMMU_CLIENT_SCOPE_HSMMU, 0, "n_vsmmus"), 2);
	EXPECT_EQ(stat_of(root, SMMU_CLIENT_SCOPE_VSMMU, vs_b, "n_devices"), 1);
	EXPECT_EQ(stat_of(root, SMMU_CLIENT_SCOPE_VCMDQ, vq, "nq"), 2);
	ASSERT_OK(smmu_client_list_hsmmus(root, &h, &nh));
	EXPECT_EQ(h[0].n_vsmmus, 2);
	EXPECT_EQ(h[0].n_rings, 1);
	free(h);

	smmu_client_free(root);
	smmu_client_free(a);
	smmu_client_free(b);
	tlib_ring_free(&ra);
	close(page);
	tlib_daemon_stop(&self->d);
}

/* ---- the overflow uid/gid ------------------------------------------- */

/*
 * The overflow uid is refused even when its group is allowed, and a
 * configuration naming it without the opt-in does not start; with
 * --allow-overflow-id yes and the number it is admitted.
 */
TEST_F(acc, overflow_uid_never_admitted_without_opt_in)
{
	uid_t ou = overflow_id("uid");
	gid_t og = overflow_id("gid");
	char ou_s[16], og_s[16];
	struct smmu_client *c = NULL;
	struct passwd *pw;

	need_root();
	snprintf(ou_s, sizeof(ou_s), "%u", (unsigned int)ou);
	snprintf(og_s, sizeof(og_s), "%u", (unsigned int)og);
	{
		const char *const no_opt_in[] = { "--allow-uid", ou_s, NULL };
		const char *const gid_no_opt_in[] = { "--allow-gid", og_s,
						      NULL };

		start_refused(&self->d, no_opt_in);
		start_refused(&self->d, gid_no_opt_in);
	}
	/* A name for it ("nobody") is refused even with the opt-in. */
	pw = getpwuid(ou);
	if (pw) {
		char name[64];
		const char *const by_name[] = { "--allow-uid", name,
						"--allow-overflow-id", "yes",
						NULL };

		snprintf(name, sizeof(name), "%s", pw->pw_name);
		start_refused(&self->d, by_name);
	}

	/* An unmapped peer whose group is allowed: still refused. */
	{
		const char *const by_group[] = { "--socket-mode", "0666",
						 "--allow-gid", "4321", NULL };
		gid_t grp = 4321;

		start(&self->d, by_group);
		ASSERT_ERR(-EACCES,
			   connect_as(&self->d, ou, 4321, NULL, 0, &c));
		ASSERT_ERR(-EACCES, connect_as(&self->d, ou, ou, &grp, 1, &c));
		/* The same group on a mapped uid is fine. */
		ASSERT_OK(connect_as(&self->d, UID_A, 4321, NULL, 0, &c));
		smmu_client_free(c);
		tlib_daemon_stop(&self->d);
	}

	/* The opt-in plus the number: admitted. */
	{
		const char *const opt_in[] = {
			"--socket-mode",       "0666", "--allow-uid", ou_s,
			"--allow-overflow-id", "yes",  NULL
		};

		start(&self->d, opt_in);
		ASSERT_OK(connect_as(&self->d, ou, ou, NULL, 0, &c));
		smmu_client_free(c);
		tlib_daemon_stop(&self->d);
	}
}

/* ---- supplementary groups ------------------------------------------- */

/*
 * --allow-gid matches a supplementary group of the peer (SO_PEERGROUPS),
 * not only the primary gid that SO_PEERCRED reports.
 */
TEST_F(acc, supplementary_group_allowed)
{
	const char *const args[] = { "--socket-mode", "0666", "--allow-gid",
				     "777", NULL };
	const gid_t x = GROUP_X, other = GROUP_X + 1;
	const gid_t both[2] = { GROUP_X + 1, GROUP_X };
	struct smmu_client *c = NULL;
	struct smmu_client_list *l;

	need_root();
	start(&self->d, args);
	ASSERT_OK(connect_as(&self->d, UID_A, UID_A, &x, 1, &c));
	/* Admitted for real: it can talk to the service. */
	ASSERT_OK(smmu_client_list(c, 0, &l));
	smmu_client_list_free(l);
	smmu_client_free(c);
	ASSERT_OK(connect_as(&self->d, UID_B, UID_B, both, 2, &c));
	smmu_client_free(c);
	/* Neither primary nor supplementary: refused. */
	ASSERT_ERR(-EACCES, connect_as(&self->d, UID_A, UID_A, &other, 1, &c));
	ASSERT_ERR(-EACCES, connect_as(&self->d, UID_A, UID_A, NULL, 0, &c));
	tlib_daemon_stop(&self->d);
}

TEST_HARNESS_MAIN
