/* SPDX-License-Identifier: MIT */
/*
 * daemon_ratelimit: a token bucket for log messages a guest or a client can
 * trigger (ring halts, backend errors, bad requests), so that a hostile
 * guest cannot flood the host log. Each message class has its own bucket:
 * up to @burst messages at once, refilled at @burst per @interval_ns.
 * Messages refused are counted; the first message allowed after some
 * were refused reports how many, so the log says "N suppressed".
 *
 * Pure logic: the caller passes the time (CLOCK_MONOTONIC ns in the
 * daemon, anything monotonic in tests). Nothing allocates or logs.
 *
 * Thread context: a bucket belongs to one thread (the daemon's main
 * thread); no locking.
 */
#ifndef SMMU_OFFLOAD_DAEMON_RATELIMIT_H
#define SMMU_OFFLOAD_DAEMON_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

/**
 * struct daemon_ratelimit - one message class's bucket. Owned by the thread
 * that logs the class. Initialise with daemon_ratelimit_init().
 * @interval_ns: time to refill the whole bucket.
 * @burst:       bucket depth (messages allowed back to back).
 * @credit_ns:   credit in ns, at most @interval_ns; a message costs
 *               @interval_ns / @burst of it, time adds to it 1:1.
 * @last_ns:     time of the last refill.
 * @suppressed:  messages refused since the last allowed one.
 * @suppressed_total: messages refused since init (for tests/metrics).
 */
struct daemon_ratelimit {
	uint64_t interval_ns;
	uint32_t burst;
	uint64_t credit_ns;
	uint64_t last_ns;
	uint64_t suppressed;
	uint64_t suppressed_total;
};

/**
 * daemon_ratelimit_init() - a full bucket at time @now_ns.
 * @burst:       >= 1.
 * @interval_ns: >= @burst (so that one message costs at least 1 ns).
 * Return: 0, -EINVAL.
 */
int daemon_ratelimit_init(struct daemon_ratelimit *rl, uint32_t burst,
			  uint64_t interval_ns, uint64_t now_ns);

/**
 * daemon_ratelimit_allow() - may one message of this class be logged now?
 * @now_ns:         monotonic time; a time before the last call counts as
 *                  no time passing.
 * @ret_suppressed: always set: when the message is allowed, how many
 *                  were refused since the previous allowed one (the
 *                  caller logs "N suppressed" first); 0 when refused.
 * Return: true to log the message, false to drop it (counted).
 */
bool daemon_ratelimit_allow(struct daemon_ratelimit *rl, uint64_t now_ns,
			    uint64_t *ret_suppressed);

/**
 * daemon_ratelimit_flush() - report suppressed messages when the class went
 * quiet: if some were suppressed and a message may be logged now, spend
 * that message on the report. Counts nothing as suppressed.
 * @ret_suppressed: always set: how many to report (0 when returning
 *                  false).
 * Return: true to log "N suppressed" with *@ret_suppressed.
 */
bool daemon_ratelimit_flush(struct daemon_ratelimit *rl, uint64_t now_ns,
			    uint64_t *ret_suppressed);

#endif
