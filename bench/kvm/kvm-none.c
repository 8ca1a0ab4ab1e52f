/* SPDX-License-Identifier: MIT */
/* smmu-bench --vcpu kvm where the harness has no guest program (only
 * x86-64 has one) or no <linux/kvm.h>: say so, exit as "no KVM". */
#include <stdio.h>

#include "bench/kvm/kvm-bench.h"

int kvmb_run(const struct kvmb_opts *o, const struct wl *w)
{
	(void)o;
	(void)w;
	fprintf(stderr, "smmu-bench: --vcpu kvm: no usable KVM: this build "
			"has no guest program for this architecture\n");
	return KVMB_EXIT_NO_KVM;
}
