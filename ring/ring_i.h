/* SPDX-License-Identifier: MIT */
/*
 * ring internals: the individual steps of the two notification
 * protocols, exposed so tests can run them in every interleaving. The
 * public functions are exactly compositions of these steps. Not
 * installed; nothing but ring/ and tests/ring/ includes this.
 */
#ifndef SMMU_OFFLOAD_RING_I_H
#define SMMU_OFFLOAD_RING_I_H

#include <sys/stat.h>

#include <smmu-offload/ring-prod.h>

#include "ring/ring_cons.h"

/*
 * ring_memfd_check() - a peer's memfd: a regular file carrying every seal
 * in @seals (F_SEAL_*). *@ret_st is its stat taken after the seals were
 * seen, so its size can no longer shrink. Return: 0, -EBADF (not a
 * regular file), -EINVAL (no seals support: not a memfd), -EPERM (a seal
 * missing), or an fstat errno.
 */
int ring_memfd_check(int memfd, int seals, struct stat *ret_st);

/*
 * NEED_WAKEUP (doorbell suppression).
 *   ring_prod_publish()        = prod_store; prod_kick
 *   ring_cons_set_need_wakeup() = cons_flag_set; cons_recheck
 */
/* R_PROD: store the pushed prod. */
void ring_prod_publish_prod(struct ring_prod *p);
/* F_PUB, read NEED_WAKEUP, write the doorbell if set. 0 or -errno. */
int ring_prod_publish_kick(struct ring_prod *p);
/* Store NEED_WAKEUP. */
void ring_cons_need_wakeup_flag(struct ring_cons *rc);
/* F_NEED, re-read prod (or resume_seq); clears the flag if pending. */
bool ring_cons_need_wakeup_recheck(struct ring_cons *rc);

/*
 * WANT_SIGNAL (completion signal suppression).
 *   ring_prod_wait() sleeps only after  want_flag; want_recheck == 1
 *   the service: ring_cons_complete(); ring_cons_want_signal()
 */
/* Store WANT_SIGNAL. */
void ring_prod_want_flag(struct ring_prod *p);
/* F_WANT, re-check: 0 done, -EPIPE halted, 1 must sleep. */
int ring_prod_want_recheck(struct ring_prod *p, uint32_t index);
/* Clear WANT_SIGNAL. */
void ring_prod_want_clear(struct ring_prod *p);

#endif
