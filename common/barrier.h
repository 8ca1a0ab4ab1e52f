/* SPDX-License-Identifier: MIT */
/*
 * The project's one set of memory-ordering primitives, on C11 atomics.
 * Nothing else in the tree uses __atomic/__sync builtins or volatile for
 * synchronisation.
 *
 * RELEASE (store_release): every memory access before it in program order
 * is visible to a thread that observes the stored value with an ACQUIRE
 * load. ACQUIRE (load_acquire): no memory access after it in program order
 * is performed before it. A release store and an acquire load of the same
 * location "pair": the pairing is what makes data written before the
 * release readable after the acquire. smp_mb() is a full fence, needed only
 * for store->load ordering (the NEED_WAKEUP / WANT_SIGNAL re-check).
 *
 * Every use in the tree carries a label (R1, A1, ...) naming its partner.
 *
 * The shared ring lives in memory shared with another process; C11 atomics
 * on lock-free 32-bit objects are address-free, so they are valid there.
 */
#ifndef SMMU_OFFLOAD_BARRIER_H
#define SMMU_OFFLOAD_BARRIER_H

#include <stdatomic.h>

/*
 * Relaxed access: one untorn load/store the compiler cannot repeat or
 * elide; no ordering. For an index read once into a local, or a field only
 * this thread writes.
 */
#define READ_ONCE(x)                                                         \
	atomic_load_explicit((__extension__(_Atomic __typeof__(x) *) & (x)), \
			     memory_order_relaxed)
#define WRITE_ONCE(x, v)                                                      \
	atomic_store_explicit((__extension__(_Atomic __typeof__(x) *) & (x)), \
			      (v), memory_order_relaxed)

#define smp_store_release(p, v)                                               \
	atomic_store_explicit((__extension__(_Atomic __typeof__(*(p)) *)(p)), \
			      (v), memory_order_release)
#define smp_load_acquire(p)                                                  \
	atomic_load_explicit((__extension__(_Atomic __typeof__(*(p)) *)(p)), \
			     memory_order_acquire)

/* Atomic read-modify-write on a shared flag word, full ordering. */
#define atomic_fetch_or_full(p, v)                                   \
	atomic_fetch_or_explicit(                                    \
		(__extension__(_Atomic __typeof__(*(p)) *)(p)), (v), \
		memory_order_seq_cst)
#define atomic_fetch_and_full(p, v)                                  \
	atomic_fetch_and_explicit(                                   \
		(__extension__(_Atomic __typeof__(*(p)) *)(p)), (v), \
		memory_order_seq_cst)

#define smp_mb() atomic_thread_fence(memory_order_seq_cst)

#endif
