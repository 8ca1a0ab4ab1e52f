/* SPDX-License-Identifier: MIT */
/*
 * The guest ABI of the KVM harness: guest-physical layout, the vSMMU
 * register window and the fields the host and the guest program share.
 * Included by the guest program (guest-<arch>.S, assembler: #defines
 * only) and by the host side (vmm.c, kvm-bench.c, exit-costs.c).
 *
 * Guest memory is identity-mapped (virtual == physical). One VM:
 *   KG_GDT .. KG_PT_END   descriptor table and page tables (x86-64)
 *   KG_CODE               the guest program (copied by the host)
 *   KG_VM                 struct kg_vm: the VM's shared state: the guest's
 *                         CMDQ lock and producer index, the host's stop flag
 *   KG_CMDQ               the command queue (SMMUv3 layout: 16-byte
 *                         entries, 1 << KG_CMDQ_LOG2 of them)
 *   KG_VCPU(i)            vCPU i's block: its fields (KG_V_*), KG_NSLOTS
 *                         batch slots the host fills, its stack at the end
 *   KG_MMIO               the vSMMU register window: no memory slot, every
 *                         access is a KVM_EXIT_MMIO (or an in-kernel
 *                         ioeventfd / coalesced-MMIO write for the
 *                         exit-cost programs)
 *
 * Ownership: KG_VM's lock and producer fields belong to the guest (vCPUs
 * of the VM take the lock); KG_V_STOP and the batch slots are written by
 * the host only while the vCPU that reads them is in an exit (slots) or
 * as a single store the guest polls (stop); KG_V_* statistics are written
 * by the vCPU and read by the host on that vCPU's exits.
 */
#ifndef SMMU_OFFLOAD_BENCH_KVM_GUEST_H
#define SMMU_OFFLOAD_BENCH_KVM_GUEST_H

#define KG_GDT 0x1000
#define KG_TSS 0x1800
#define KG_PML4 0x2000
#define KG_PDPT 0x3000
#define KG_PD 0x4000 /* two pages: 0..1 GiB, 1..2 GiB in 2 MiB pages */
#define KG_PT_END 0x6000
#define KG_CODE 0x10000
#define KG_CODE_MAX 0x10000

#define KG_VM 0x100000
#define KG_VM_LOCK 0x00 /* u64: 0 free, 1 taken (xchg) */
#define KG_VM_PROD 0x08 /* u64: guest's linear producer index */
#define KG_VM_CONS 0x10 /* u64: linear CONS the guest last saw (max) */
#define KG_VM_STOP 0x40 /* u64: host sets 1 to end the run */

#define KG_CMDQ 0x110000
#define KG_CMDQ_LOG2 8
#define KG_CMDQ_ENTS (1 << KG_CMDQ_LOG2)
/* PROD/CONS register values: index + wrap bit = linear index mod 2Q. */
#define KG_CMDQ_PMASK ((2 << KG_CMDQ_LOG2) - 1)

#define KG_VCPU_BASE 0x200000
#define KG_VCPU_SIZE 0x100000 /* fields, slots, stack from the top down */
#define KG_VCPU(i) (KG_VCPU_BASE + (i)*KG_VCPU_SIZE)
#define KG_MAX_VCPUS 16
#define KG_RAM_SIZE (KG_VCPU_BASE + KG_MAX_VCPUS * KG_VCPU_SIZE)

/* vCPU block fields (u64 each). */
#define KG_V_PROG 0x00 /* which program: KG_PROG_* */
#define KG_V_ITERS 0x08 /* exit-cost programs: iterations */
#define KG_V_LIMIT 0x10 /* bench: stop after this many batches, 0 = none */
#define KG_V_BATCHES 0x18 /* bench: batches submitted and completed */
#define KG_V_CMDS 0x20 /* bench: commands submitted */
#define KG_V_BUSY 0x28 /* bench: TSC ticks in the driver, summed */
#define KG_V_LAT_SEQ 0x30 /* bench: SYNC round trips measured */
#define KG_V_LAT 0x38 /* bench: the last one, TSC ticks */
#define KG_V_SPIN 0x40 /* bench: TSC ticks spent waiting for the lock */
#define KG_V_T0 0x48 /* exit-cost: TSC at start */
#define KG_V_T1 0x50 /* exit-cost: TSC at end */
#define KG_V_CS 0x58 /* the guest's %cs at entry (x86: CPL = low 2 bits) */
#define KG_V_MSIPOLL 0x60 /* bench: wait for SYNCs by MSI write, not CONS */

/* CMD_SYNC d0 fields the guest sets for MSIPOLL (SMMUv3: CS = d0[13:12]). */
#define KG_SYNC_CS_MASK 0x3000
#define KG_SYNC_CS_IRQ 0x1000
#define KG_V_BELL 0x80 /* exit-cost doorbell: guest writes (own line) */
#define KG_V_ANSWER 0xc0 /* exit-cost doorbell: host answers (own line) */

/* Batch slots: slot k at KG_VCPU(i) + KG_SLOTS + k * KG_SLOT_SIZE. */
#define KG_SLOTS 0x1000
/* A power of two (the guest masks with KG_NSLOTS - 1); the slots end
 * below KG_VCPU_SIZE with room for the stack above them. Many slots let
 * the vcmdq harness run rarely (kvm-vcmdq.c). */
#define KG_NSLOTS 512
#define KG_SLOT_SIZE 0x500 /* header + 64 16-byte commands, rounded up */
#define KG_S_N 0x00 /* u32: commands (1..64) */
#define KG_S_SYNC 0x04 /* u32: index of the last CMD_SYNC + 1, 0 = none */
#define KG_S_LAT 0x08 /* u64, vcmdq: the guest's round trip of its SYNC */
#define KG_S_CMDS 0x10

/* Programs. */
#define KG_PROG_BENCH 0
#define KG_PROG_MMIO_WRITE 1 /* ITERS stores to KG_MMIO_PLAIN */
#define KG_PROG_IOEVENTFD 2 /* ITERS stores to KG_MMIO_IOEVENTFD */
#define KG_PROG_COALESCED 3 /* ITERS stores to KG_MMIO_COALESCED */
#define KG_PROG_DOORBELL 4 /* ITERS RAM doorbell round trips */

/* The vSMMU register window (SMMUv3 page 0 offsets) and harness pages. */
#define KG_MMIO 0x40000000
#define KG_MMIO_SIZE 0x10000
#define KG_REG_CMDQ_PROD 0x98
#define KG_REG_CMDQ_CONS 0x9c
#define KG_MMIO_DONE 0x1000 /* any store: the vCPU's run is over */
#define KG_MMIO_PLAIN 0x2000
#define KG_MMIO_IOEVENTFD 0x3000
#define KG_MMIO_COALESCED 0x4000

/*
 * KG_PROG_WAKE (bench/kvm/wake-paths.c, tests/bench/test-wake-paths.c):
 * the idle-to-active transition of a software vCMDQ. The register page
 * KG_W_PAGE is one 4 KiB page in its own memory slot, backed by a memfd
 * the service also maps; queue 0's CONS is at +0x0 and PROD at +0x4, as
 * in Tegra241's VINTF page0. For i = 1 .. ITERS the guest: (GATE) waits
 * until the host's KG_W_GO >= i; stores i (32 bits) to KG_W_ADDR and, if
 * KG_W_BELL is set, to that doorbell address too; (CHECK) reads
 * KG_W_ADDR back and records the first i it did not read in KG_W_BAD;
 * when (i & KG_W_SYNCMASK) == 0, polls KG_W_CADDR until it holds i;
 * publishes the store's and the round trip's TSC ticks, then KG_W_SEQ =
 * i; spins a random (xorshift, KG_W_SEED) count & KG_W_SPINMASK.
 * Fields below are u64 in the vCPU block; the host writes GO and the
 * parameters, the guest the rest.
 */
#define KG_PROG_WAKE 5
#define KG_W_PAGE 0x20000000
#define KG_W_CONS 0x0
#define KG_W_PROD 0x4
#define KG_W_ADDR 0x100 /* where PROD is stored */
#define KG_W_BELL 0x108 /* 0, or a doorbell address also stored to */
#define KG_W_FLAGS 0x110 /* KG_WF_* */
#define KG_W_SYNCMASK 0x118
#define KG_W_SPINMASK 0x120
#define KG_W_SEED 0x128 /* nonzero */
#define KG_W_CADDR 0x130 /* where CONS is polled */
#define KG_W_GO 0x140 /* host: store i may go (own line) */
#define KG_W_SEQ 0x180 /* guest: last i done (own line) */
#define KG_W_TSTORE 0x188 /* guest: TSC ticks of store i (and bell) */
#define KG_W_TRT 0x190 /* guest: ticks from store i to CONS == i */
#define KG_W_BAD 0x198 /* guest: first i read back wrong, 0 = none */
#define KG_WF_GATE 1
#define KG_WF_CHECK 2

/*
 * KG_PROG_VCMDQ (smmu-bench --vcpu kvm, mode vcmdq): the guest side of a
 * Tegra241 CMDQV (tegra241-cmdqv-facts.md sections 1 and 2) as Linux's
 * tegra241-cmdqv driver drives it, one VINTF (VINTF0) with KG_VCMDQ_NQ
 * logical queues. The CMDQV window KG_CMDQV (KG_CV_SIZE bytes) is
 * trapped MMIO except VINTF0 page0 (KG_CV_PAGE0, 64 KiB), which is a RAM
 * memory slot backed by the register-page memfd
 * (smmu-offload/vcmdq.h) the service also maps: the guest's PROD stores
 * and CONS/STATUS polls there never exit.
 * The vCPU with KG_V_VINIT set runs the driver's reset sequence (CMDQV
 * disable/enable, CMDQ_ALLOC, VINTF0 deinit with every queue's deinit,
 * VINTF0 enable, then per queue in ascending order: ALLOCATED, deinit,
 * BASE, CONFIG.EN, poll STATUS) and sets KG_VM_VREADY; the others wait
 * for it. Then every vCPU stores to KG_MMIO_SETUP once (the host counts
 * the exits before it as setup) and loops: wait until the host has made
 * batch KG_V_BATCHES ready (KG_V_READY > KG_V_BATCHES; the host fills the
 * oracle and the slot first, as the other modes do on the PROD exit),
 * pick the queue as Linux's arm-smmu-v3 does with tegra241-cmdqv
 * (tegra241-cmdqv-facts.md 2.4): if every command of the batch is one a
 * guest-owned VINTF accepts (TLBI_NH_ASID, TLBI_NH_VA, ATC_INV, CMD_SYNC)
 * the batch goes to its VCMDQ as follows; otherwise the whole batch goes
 * to the SMMU CMDQ with KG_PROG_BENCH's submission (trapped PROD write,
 * CONS read exits; the same code), counted in KG_V_BASECMDS and
 * KG_V_BASEBATCHES. On the VCMDQ path:
 * take its queue's lock (queue KG_V_QUEUE), wait for room by
 * reading CONS in the page, copy the batch into the queue in guest RAM at
 * KG_VQMEM(queue), store PROD (32 bits) in the page, drop the lock and
 * poll CONS in the page until it passed the CMD_SYNC (whose CS the
 * guest sets to NONE while copying, as Linux does on every VCMDQ), leave
 * the round trip in the slot (KG_S_LAT), count the batch. A CONS.ERR, or a STATUS or SYNC wait
 * longer than KG_V_VTIMEOUT TSC ticks, ends the run with KG_V_VERR (a
 * KG_VE_* code) and KG_V_VERRVAL, and sets KG_VM_STOP for the others.
 * Linux picks the queue per batch by its first command and, when a
 * later one is rejected, flushes the batch so far (with a SYNC) to the
 * VCMDQ and goes on on the SMMU CMDQ; the harness sends a batch with any
 * rejected command whole to the SMMU CMDQ: the same for mixed and storm
 * (their CFGI_CD comes first), a trace batch with a rejected command
 * after accepted ones is not split.
 * Not modelled (no effect on the submission path): SID_MATCH/REPLACE
 * clearing, the CMD_SYNC on the SMMU CMDQ in queue deinit, the error ISR.
 */
#define KG_PROG_VCMDQ 6
#define KG_VM_VREADY 0x48 /* u64: vCPU 0 finished the CMDQV reset */
/* Per logical queue l, in KG_VM: the guest's lock and shadows. */
#define KG_VQ(l) (KG_VM + 0x100 + 0x40 * (l))
#define KG_VQ_LOCK 0x00 /* u64: 0 free, 1 taken */
#define KG_VQ_PROD 0x08 /* u64: linear producer index */
#define KG_VQ_CONS 0x10 /* u64: linear CONS last seen (max) */
/* The queues in guest RAM: 1 << KG_CMDQ_LOG2 entries each, aligned to
 * their size (BASE = KG_VQMEM(l) | KG_CMDQ_LOG2). */
#define KG_VQMEM(l) (0x120000 + 0x1000 * (l))
#define KG_VCMDQ_NQ 2 /* PARAM 0x4011, as QEMU: one VINTF, two queues */

#define KG_V_QUEUE 0x68 /* host: logical queue of this vCPU (idx % 2) */
#define KG_V_READY 0x70 /* host: batches made ready (own use: R_READY) */
#define KG_V_VERR 0x78 /* guest: 0, or a KG_VE_* code */
#define KG_V_VINIT 0x100 /* host: 1 = this vCPU runs the reset sequence */
#define KG_V_VTIMEOUT 0x108 /* host: poll timeout, TSC ticks (1 s) */
#define KG_V_VERRVAL 0x110 /* guest: the CONS value or queue of the error */
#define KG_V_HWAIT 0x118 /* guest: TSC ticks waiting for KG_V_READY */
#define KG_V_BASECMDS 0x1a0 /* guest: commands sent to the SMMU CMDQ */
#define KG_V_BASEBATCHES 0x1a8 /* guest: batches sent to the SMMU CMDQ */
#define KG_VE_CMDQV 1 /* CMDQV STATUS did not follow CONFIG.EN */
#define KG_VE_VINTF 2 /* VINTF0 STATUS did not follow CONFIG.EN */
#define KG_VE_QOFF 3 /* queue STATUS did not drop to 0 */
#define KG_VE_QON 4 /* queue STATUS did not rise to 1 */
#define KG_VE_CONSERR 5 /* CONS.ERR set (KG_V_VERRVAL = CONS) */
#define KG_VE_SYNC 6 /* CONS did not pass the CMD_SYNC in time */

#define KG_MMIO_SETUP 0x5000 /* any store: this vCPU's setup is over */

/* The CMDQV window (tegra241-cmdqv-facts.md 1.1-1.5). */
#define KG_CMDQV 0x40100000
#define KG_CV_SIZE 0x50000
#define KG_CV_CONFIG 0x000
#define KG_CV_PARAM 0x004
#define KG_CV_STATUS 0x008
#define KG_CV_VINTF_ERR_MAP 0x014 /* 64 bits */
#define KG_CV_VINTF_INT_MASK 0x01c /* 64 bits */
#define KG_CV_CMDQ_ERR_MAP 0x024 /* 128 bits */
#define KG_CV_ALLOC 0x200 /* + 4 * q */
#define KG_CV_VINTF 0x1000 /* VINTF0 registers */
#define KG_CV_VINTF_CONFIG 0x1000
#define KG_CV_VINTF_STATUS 0x1004
#define KG_CV_VINTF_SID_MATCH 0x1040 /* + 4 * s */
#define KG_CV_VINTF_SID_REPLACE 0x1080 /* + 4 * s */
#define KG_CV_VINTF_LVCMDQ_ERR_MAP 0x10c0 /* 128 bits */
#define KG_CV_VINTF_HYP_OWN 0x20000 /* CONFIG bit17 */
#define KG_CV_PAGE0 0x30000 /* VINTF0 page0: the RAM slot */
#define KG_CV_PAGE1 0x40000 /* VINTF0 page1: BASE, CONS_INDX_BASE */
#define KG_CV_BASE 0x00 /* page1 + 0x80 * l, 64 bits */
#define KG_CV_CONS_INDX_BASE 0x08 /* page1 + 0x80 * l, 64 bits */
#define KG_CV_PARAM_VALUE 0x4011

#endif
