/* SPDX-License-Identifier: MIT */
/*
 * smmu-offload-example: what a VMM does with libsmmu-offload, end to end,
 * against a daemon with a simulated backend:
 *
 *   smmu-offloadd --backend sim --socket /tmp/so.sock &
 *   smmu-offload-example --socket /tmp/so.sock
 *
 * 1. create a ring memfd and two eventfds, map the ring as producer;
 * 2. connect (handshake) and pick a host SMMU;
 * 3. create a vSMMU (kernel backend: pass the VMM's iommufd and vIOMMU
 *    id instead of -1/0), attach a device (dev id -> virtual SID);
 * 4. attach the ring; push guest commands and wait for their CMD_SYNC;
 * 5. push an illegal command: the ring halts with CERROR_ILL at that
 *    entry, as a real SMMU's command queue would; the VMM reports it to
 *    the guest (here: replaces the entry by a CMD_SYNC) and resumes;
 * 6. tear everything down (closing the connection would do it too).
 *
 * Only <smmu-offload/client.h> and <smmu-offload/ring-prod.h> are used.
 * Guest commands are the raw 16-byte SMMUv3 entries a VMM copies out of
 * the guest's command queue; they are spelled out by hand below.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <smmu-offload/client.h>
#include <smmu-offload/ring-prod.h>

#define EXAMPLE_DEV_ID 0x10 /* iommufd device id (sim: any) */
#define EXAMPLE_VSID 0x8 /* the guest's StreamID for it */
#define WAIT_SPIN_NS 20000
#define WAIT_TIMEOUT_MS 5000

/* SMMUv3 command encodings (little-endian words, opcode in bits 7:0). */
static struct smmu_ring_entry cmd_cfgi_cd(uint32_t sid, uint32_t ssid)
{
	/*
	 * CMD_CFGI_CD: SID in word 0 bits 63:32, SSID in bits 31:12, Leaf in
	 * word 1 bit 0. (CFGI_STE is not forwarded: STE changes are the
	 * VMM's own business, it re-attaches the nested domain.)
	 */
	return (struct smmu_ring_entry){
		{ 0x05 | (uint64_t)ssid << 12 | (uint64_t)sid << 32, 1 }
	};
}

static struct smmu_ring_entry cmd_tlbi_nh_asid(uint16_t asid)
{
	/* CMD_TLBI_NH_ASID: ASID in word 0 bits 63:48; VMID is the host's. */
	return (struct smmu_ring_entry){ { 0x11 | (uint64_t)asid << 48, 0 } };
}

static struct smmu_ring_entry cmd_sync(void)
{
	/* CMD_SYNC, CS = SIG_NONE: completion is the ring's cons moving. */
	return (struct smmu_ring_entry){ { 0x46, 0 } };
}

static struct smmu_ring_entry cmd_illegal(void)
{
	/* Opcode 0x7f is not an SMMUv3 command: CERROR_ILL. */
	return (struct smmu_ring_entry){ { 0x7f, 0 } };
}

static int fail(struct smmu_client *c, const char *what, int r)
{
	fprintf(stderr, "smmu-offload-example: %s: %s%s%s\n", what,
		strerror(-r), c && *smmu_client_error(c) ? ": " : "",
		c ? smmu_client_error(c) : "");
	return 1;
}

/* Push @n entries, publish, wait for the last one (a CMD_SYNC). */
static int push_and_wait(struct ring_prod *p, const struct smmu_ring_entry *e,
			 uint32_t n, uint32_t *ret_last)
{
	uint32_t first;
	int r = ring_prod_push(p, e, n, &first);

	if (r)
		return r;
	*ret_last = first + n - 1;
	r = ring_prod_publish(p);
	if (r)
		return r;
	return ring_prod_wait(p, first + n - 1, WAIT_SPIN_NS, WAIT_TIMEOUT_MS);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct smmu_ring_entry work[] = {
		cmd_cfgi_cd(EXAMPLE_VSID, 0),
		cmd_tlbi_nh_asid(1),
		cmd_sync(),
	};
	const struct smmu_ring_entry bad[] = { cmd_illegal(), cmd_sync() };
	struct smmu_client_stats *st = NULL;
	struct smmu_client_hsmmu *hs = NULL;
	struct smmu_client *c = NULL;
	struct ring_prod prod = { 0 };
	const char *path = NULL;
	uint32_t n_hs, vsmmu, vdev, ring, last, err, idx;
	uint64_t v;
	int memfd = -1, db = -1, cq = -1, opt, r, status = 1;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 's') {
			path = optarg;
		} else {
			fprintf(opt == 'h' ? stdout : stderr,
				"Usage: smmu-offload-example [--socket PATH]\n");
			return opt == 'h' ? 0 : 2;
		}
	}

	/* 1. The ring and its eventfds; the VMM owns them. */
	r = ring_memfd_create(8, &memfd);
	if (r)
		return fail(NULL, "ring_memfd_create", r);
	db = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	cq = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (db < 0 || cq < 0) {
		fail(NULL, "eventfd", -errno);
		goto out;
	}
	r = ring_prod_init(&prod, memfd, db, cq);
	if (r) {
		fail(NULL, "ring_prod_init", r);
		goto out;
	}

	/* 2. Connect and look at the host SMMUs. */
	r = smmu_client_connect(path, "smmu-offload-example", &c);
	if (r) {
		fail(NULL, "connect", r);
		goto out;
	}
	printf("connected: server %s, backend %s\n",
	       smmu_client_server_version(c), smmu_client_backend(c));
	r = smmu_client_list_hsmmus(c, &hs, &n_hs);
	if (r || !n_hs) {
		fail(c, "list host SMMUs", r ? r : -ENOENT);
		goto out;
	}

	/* 3. vSMMU and device. */
	r = smmu_client_vsmmu_create(c, hs[0].name, -1, 0, 0, &vsmmu);
	if (r) {
		fail(c, "create vSMMU", r);
		goto out;
	}
	r = smmu_client_device_attach(c, vsmmu, EXAMPLE_DEV_ID, EXAMPLE_VSID,
				      &vdev);
	if (r) {
		fail(c, "attach device", r);
		goto out;
	}
	printf("vSMMU %u on %s, vSID 0x%x -> vDEVICE %u\n", vsmmu, hs[0].name,
	       EXAMPLE_VSID, vdev);

	/* 4. Ring: the service dups the fds, we keep ours. */
	r = smmu_client_ring_attach(c, vsmmu, memfd, db, cq, &ring);
	if (r) {
		fail(c, "attach ring", r);
		goto out;
	}
	r = push_and_wait(&prod, work, 3, &last);
	if (r) {
		if (r == -EPIPE && !ring_prod_halt_info(&prod, &err, &idx))
			fprintf(stderr, "ring halted: err %u at index %u\n",
				err, idx);
		fail(c, "guest commands", r);
		goto out;
	}
	printf("ring %u: CMD_SYNC at index %u completed\n", ring, last);

	/* 5. An illegal command halts the ring at that entry. */
	r = push_and_wait(&prod, bad, 2, &last);
	if (r != -EPIPE) {
		fail(c, "illegal command did not halt the ring", r ? r : -EIO);
		goto out;
	}
	r = ring_prod_halt_info(&prod, &err, &idx);
	if (r) {
		fail(c, "halt info", r);
		goto out;
	}
	printf("ring %u halted: err %u (CERROR_ILL is %u) at index %u\n", ring,
	       err, SMMU_RING_ERR_CERROR_ILL, idx);
	/* A VMM would raise GERROR.CMDQ_ERR to the guest here; the guest
	 * fixes the entry. We replace it by a CMD_SYNC and resume. */
	r = ring_prod_rewrite(&prod, idx, &bad[1]);
	if (!r)
		r = smmu_client_ring_resume(c, ring);
	if (!r)
		r = ring_prod_wait(&prod, last, WAIT_SPIN_NS, WAIT_TIMEOUT_MS);
	if (r) {
		fail(c, "resume", r);
		goto out;
	}
	printf("ring %u resumed: index %u completed\n", ring, last);

	r = smmu_client_stats(c, SMMU_CLIENT_SCOPE_VSMMU, vsmmu, &st);
	if (r) {
		fail(c, "stats", r);
		goto out;
	}
	for (uint32_t i = 0; i < st->n_counters; i++)
		if (!smmu_client_stats_get(st, st->counters[i].name, &v) && v)
			printf("  %-20s %llu\n", st->counters[i].name,
			       (unsigned long long)v);

	/* 6. Explicit teardown, in order. */
	r = smmu_client_ring_detach(c, ring);
	if (!r)
		r = smmu_client_device_detach(c, vsmmu, EXAMPLE_VSID);
	if (!r)
		r = smmu_client_vsmmu_destroy(c, vsmmu);
	if (r) {
		fail(c, "teardown", r);
		goto out;
	}
	printf("done\n");
	status = 0;
out:
	smmu_client_stats_free(st);
	free(hs);
	smmu_client_free(c);
	ring_prod_done(&prod);
	if (cq >= 0)
		close(cq);
	if (db >= 0)
		close(db);
	if (memfd >= 0)
		close(memfd);
	return status;
}
