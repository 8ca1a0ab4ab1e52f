/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include "daemon/ratelimit.h"

int daemon_ratelimit_init(struct daemon_ratelimit *rl, uint32_t burst,
			  uint64_t interval_ns, uint64_t now_ns)
{
	if (!burst || interval_ns < burst)
		return -EINVAL;
	*rl = (struct daemon_ratelimit){
		.interval_ns = interval_ns,
		.burst = burst,
		.credit_ns = interval_ns,
		.last_ns = now_ns,
	};
	return 0;
}

static void refill(struct daemon_ratelimit *rl, uint64_t now_ns)
{
	if (now_ns > rl->last_ns) {
		uint64_t gain = now_ns - rl->last_ns;

		if (gain >= rl->interval_ns - rl->credit_ns)
			rl->credit_ns = rl->interval_ns;
		else
			rl->credit_ns += gain;
		rl->last_ns = now_ns;
	}
}

bool daemon_ratelimit_allow(struct daemon_ratelimit *rl, uint64_t now_ns,
			    uint64_t *ret_suppressed)
{
	/* Credit is kept in ns so that refill needs no division per call;
	 * one message costs interval / burst ns of it. */
	uint64_t cost = rl->interval_ns / rl->burst;

	refill(rl, now_ns);
	if (rl->credit_ns < cost) {
		rl->suppressed++;
		rl->suppressed_total++;
		*ret_suppressed = 0;
		return false;
	}
	rl->credit_ns -= cost;
	*ret_suppressed = rl->suppressed;
	rl->suppressed = 0;
	return true;
}

bool daemon_ratelimit_flush(struct daemon_ratelimit *rl, uint64_t now_ns,
			    uint64_t *ret_suppressed)
{
	uint64_t cost = rl->interval_ns / rl->burst;

	refill(rl, now_ns);
	if (!rl->suppressed || rl->credit_ns < cost) {
		*ret_suppressed = 0;
		return false;
	}
	rl->credit_ns -= cost;
	*ret_suppressed = rl->suppressed;
	rl->suppressed = 0;
	return true;
}
