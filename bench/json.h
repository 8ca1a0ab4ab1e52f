/* SPDX-License-Identifier: MIT */
/*
 * The JSON pieces smmu-bench's two reports share (report.c for the
 * simulated vCPUs, kvm/kvm-report.c for --vcpu kvm; bench/SCHEMA.md):
 * strings, nullable strings, a histogram's quantiles and the simulator's
 * wait names. Every call writes to @f and reports no error: the caller
 * learns of a failed write from fclose().
 *
 * Thread context: stateless; a FILE is the caller's.
 */
#ifndef SMMU_OFFLOAD_BENCH_JSON_H
#define SMMU_OFFLOAD_BENCH_JSON_H

#include <stdio.h>

#include "core/hist.h"
#include "iommufd/sim.h"

/* bj_str() - @s as a quoted JSON string: '"' and '\\' escaped, control
 * characters as \u00XX, other bytes as they are. */
void bj_str(FILE *f, const char *s);

/* bj_str_or_null() - bj_str(@s), or null where @s is NULL. */
void bj_str_or_null(FILE *f, const char *s);

/* bj_hist_tail() - the end of a latency object: `, "p50": N, "p90": N,
 * "p99": N, "p999": N, "max": N}` from @h (the caller opens the object). */
void bj_hist_tail(FILE *f, const struct core_hist *h);

/* bj_wait_name() - the name of a simulator wait mode as --wait takes it
 * ("spin", "block", "none"); a static string. */
const char *bj_wait_name(enum iofd_sim_wait w);

#endif
