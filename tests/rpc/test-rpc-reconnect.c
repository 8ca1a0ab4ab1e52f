/* SPDX-License-Identifier: MIT */
/*
 * smmu_client_reconnect(): smmu-offloadd is SIGKILLed with a guest SYNC
 * published but not yet consumed, restarted on the same socket, and the
 * client library alone brings the VMM back: it reconnects, re-creates the
 * vSMMU, the device and the ring on the same memfd, and the new service
 * completes the pending SYNC from the consumer index in shared memory.
 * The ids the VMM holds keep working. With no service, the call gives up
 * after its timeout.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <smmu-offload/client.h>
#include <smmu-offload/ring-prod.h>

#include "cmdq/cmdq.h"
#include "tests/harness.h"
#include "tests/lib/tlib.h"

FIXTURE(rc)
{
	struct tlib_daemon d;
	struct smmu_client *c;
	struct tlib_ring r;
};

FIXTURE_SETUP(rc)
{
	tlib_daemon_init(&self->d, tlib_daemon_quiet);
	self->r.memfd = self->r.db = self->r.cq = -1;
}

FIXTURE_TEARDOWN(rc)
{
	smmu_client_free(self->c);
	tlib_ring_free(&self->r);
	tlib_daemon_cleanup(&self->d);
}

TEST_F_TIMEOUT(rc, sigkill_restart_reconnect_completes, 60)
{
	uint32_t vs = 0, vdev = 0, rid = 0, idx;

	tlib_daemon_start(&self->d, NULL);
	struct smmu_client_hsmmu *hs = NULL;
	uint32_t n = 0;

	ASSERT_OK(smmu_client_connect(self->d.sock, "reconnect", &self->c));
	ASSERT_OK(smmu_client_list_hsmmus(self->c, &hs, &n));
	ASSERT_GE(n, 1);
	ASSERT_OK(smmu_client_vsmmu_create(self->c, hs[0].name, -1, 0, 0, &vs));
	free(hs);
	ASSERT_OK(smmu_client_device_attach(self->c, vs, 0x100, 0x8, &vdev));
	tlib_ring_new(&self->r, 6, 0);
	tlib_client_ring_attach(self->c, vs, &self->r);
	rid = self->r.id;
	idx = tlib_ring_push_pair(&self->r, cmdq_build_tlbi_nh_asid(1, 0));
	ASSERT_OK(ring_prod_wait(&self->r.p, idx, 10000, 10000));

	/* The service dies; the guest goes on publishing meanwhile. */
	tlib_daemon_kill(&self->d);
	idx = tlib_ring_push_pair(&self->r, cmdq_build_tlbi_nh_asid(2, 0));
	ASSERT_FALSE(ring_prod_done_upto(&self->r.p, idx));
	tlib_daemon_start(&self->d, NULL);

	ASSERT_OK(smmu_client_reconnect(self->c, 10000));
	/* The new instance resumes the ring where the old one stopped. */
	ASSERT_OK(ring_prod_wait(&self->r.p, idx, 10000, 10000));
	idx = tlib_ring_push_pair(&self->r, cmdq_build_tlbi_nh_asid(3, 0));
	ASSERT_OK(ring_prod_wait(&self->r.p, idx, 10000, 10000));

	/* The VMM's ids still name its objects on the new service. */
	ASSERT_ERR(-EALREADY, smmu_client_ring_resume(self->c, rid));
	ASSERT_OK(smmu_client_ring_detach(self->c, rid));
	ASSERT_OK(smmu_client_device_detach(self->c, vs, 0x8));
	ASSERT_OK(smmu_client_vsmmu_destroy(self->c, vs));
	ASSERT_ERR(-ENOENT, smmu_client_vsmmu_destroy(self->c, vs));
	tlib_daemon_stop(&self->d);
}

/* Nobody listening: retries with backoff, then gives up at the timeout. */
TEST_F_TIMEOUT(rc, no_service_times_out, 30)
{
	tlib_daemon_start(&self->d, NULL);
	ASSERT_OK(smmu_client_connect(self->d.sock, "reconnect", &self->c));
	tlib_daemon_kill(&self->d);
	ASSERT_ERR(-ETIMEDOUT, smmu_client_reconnect(self->c, 200));
	/* And it recovers once the service is back. */
	tlib_daemon_start(&self->d, NULL);
	ASSERT_OK(smmu_client_reconnect(self->c, 10000));
	tlib_daemon_stop(&self->d);
}

TEST_HARNESS_MAIN
