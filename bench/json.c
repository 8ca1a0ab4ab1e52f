/* SPDX-License-Identifier: MIT */
/* Shared JSON pieces of smmu-bench's reports: see json.h. */
#include <inttypes.h>

#include "bench/json.h"

void bj_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

void bj_str_or_null(FILE *f, const char *s)
{
	if (s)
		bj_str(f, s);
	else
		fprintf(f, "null");
}

void bj_hist_tail(FILE *f, const struct core_hist *h)
{
	fprintf(f,
		", \"p50\": %" PRIu64 ", \"p90\": %" PRIu64
		", \"p99\": %" PRIu64 ", \"p999\": %" PRIu64
		", \"max\": %" PRIu64 "}",
		core_hist_quantile(h, 0.5), core_hist_quantile(h, 0.9),
		core_hist_quantile(h, 0.99), core_hist_quantile(h, 0.999),
		h->max);
}

const char *bj_wait_name(enum iofd_sim_wait w)
{
	return w == IOFD_SIM_WAIT_SPIN	? "spin" :
	       w == IOFD_SIM_WAIT_BLOCK ? "block" :
					  "none";
}
