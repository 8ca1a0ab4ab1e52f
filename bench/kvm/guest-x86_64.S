/* SPDX-License-Identifier: MIT */
/*
 * The x86-64 guest program of the KVM harness (bench/kvm/guest.h has the
 * layout). It runs at CPL3 in 64-bit long mode, identity-mapped, with
 * interrupts off, and is data to the host: the bytes between
 * kvm_guest_start and kvm_guest_end are copied to KG_CODE. Every memory
 * reference is an absolute guest address or relative to the vCPU block
 * in %rdi, and every jump is relative, so the copy runs anywhere.
 * An arm64 guest is a guest-aarch64.S beside this one, with the same
 * guest.h layout and programs.
 *
 * Entry: %rdi = this vCPU's block (KG_VCPU(i)), %rsp = its end.
 *
 * KG_PROG_BENCH replays the host's batches as Linux's arm-smmu-v3 driver
 * submits them (arm_smmu_cmdq_issue_cmdlist, simplified to one lock):
 *   take the VM's CMDQ lock; while the queue lacks room, read CMDQ_CONS
 *   (an exit); copy the batch into the queue; write CMDQ_PROD once (an
 *   exit); drop the lock; if the batch has a CMD_SYNC, poll CMDQ_CONS
 *   (an exit per read) until it has passed the SYNC (on the linear index, see CONS_LINEAR:
 *   Linux's queue_consumed() on index + wrap-bit values is ambiguous once
 *   other vCPUs move CONS a whole queue past it). With KG_V_MSIPOLL set
 *   the last SYNC asks for an MSI write of 0 into its own queue slot and
 *   the guest polls that word in RAM instead (Linux's MSIPOLL): no exit.
 * It stops when the host sets KG_VM_STOP or after KG_V_LIMIT batches, and
 * ends with a store to KG_MMIO_DONE (an exit the host ends the run on).
 */
#include "bench/kvm/guest.h"

#define ABS(a) (a)

/* %rax = TSC; clobbers %rdx. lfence: do not let it run early. */
.macro TSC
	lfence
	rdtsc
	shl	$32, %rdx
	or	%rdx, %rax
.endm

/*
 * %r8 = the linear consumer index, from \cons (an index + wrap-bit
 * register). The wrap-bit test alone (Linux's queue_consumed()) is
 * ambiguous: while a vCPU is descheduled between its PROD write and its
 * poll, the other vCPUs can move CONS more than Q past its SYNC, which
 * then reads as not consumed, forever once they stop. The room rule keeps
 * CONS >= PROD - Q at all times (PROD: the linear producer index \prod),
 * so with P0 and P2 read before and after CONS, P2 - Q <= CONS <= P2 and
 * CONS >= P0 - Q: if P2 - P0 < Q, CONS is within 2Q behind P2 and
 * P2 - ((P2 - CONS) mod 2Q) names it; otherwise a queue's worth went in
 * meanwhile and P2 - Q (>= P0) is a CONS already passed. No second read:
 * one exit per poll, as the harness counts. Then raises \view, the
 * queue's last-seen linear CONS shared by the vCPUs, to %r8 (lock
 * cmpxchg: a poller that was descheduled never lowers it). With \err, a
 * CONS with a bit of \errmask set jumps there. Clobbers %rax, %rdx.
 */
.macro CONS_LINEAR prod, cons, view, err, errmask
	mov	\prod, %r8
	mov	\cons, %eax
	.ifnb \err
	test	$\errmask, %eax
	jnz	\err
	.endif
	mov	\prod, %rdx
	sub	%rdx, %r8
	neg	%r8
	cmp	$KG_CMDQ_ENTS, %r8
	jae	64f
	mov	%edx, %r8d
	sub	%eax, %r8d
	and	$KG_CMDQ_PMASK, %r8d
	jmp	65f
64:	mov	$KG_CMDQ_ENTS, %r8d
65:	sub	%r8, %rdx
	mov	%rdx, %r8
	mov	\view, %rax
62:	cmp	%rax, %r8
	jbe	63f
	lock cmpxchg %r8, \view
	jne	62b
63:
.endm

	.section .rodata.kvm_guest, "a"
	.balign 16
	.globl	kvm_guest_start
	.globl	kvm_guest_end
kvm_guest_start:
	mov	%cs, %eax
	mov	%rax, KG_V_CS(%rdi)
	mov	KG_V_PROG(%rdi), %rax
	cmp	$KG_PROG_BENCH, %rax
	je	bench
	cmp	$KG_PROG_MMIO_WRITE, %rax
	je	prog_mmio
	cmp	$KG_PROG_IOEVENTFD, %rax
	je	prog_ioeventfd
	cmp	$KG_PROG_COALESCED, %rax
	je	prog_coalesced
	cmp	$KG_PROG_DOORBELL, %rax
	je	prog_doorbell
	cmp	$KG_PROG_WAKE, %rax
	je	prog_wake
	cmp	$KG_PROG_VCMDQ, %rax
	je	prog_vcmdq
done:
	movl	$1, ABS(KG_MMIO + KG_MMIO_DONE)
1:	pause
	jmp	1b

/* ---- the driver's submission loop --------------------------------------
 * %r15 vCPU block, %r14 slot number, %r13 slot address, %r12 TSC at start
 * of the batch.
 */
bench:
	mov	%rdi, %r15
	xor	%r14d, %r14d
next:
	mov	ABS(KG_VM + KG_VM_STOP), %rax
	test	%rax, %rax
	jnz	done
	mov	KG_V_LIMIT(%r15), %rax
	test	%rax, %rax
	jz	1f
	cmp	KG_V_BATCHES(%r15), %rax
	jbe	done
1:	imul	$KG_SLOT_SIZE, %r14, %r13
	lea	KG_SLOTS(%r15, %r13), %r13
	TSC
	mov	%rax, %r12
	call	cmdq_submit
	TSC
	sub	%r12, %rax
	add	%rax, KG_V_BUSY(%r15)
	incq	KG_V_BATCHES(%r15)
	inc	%r14
	cmp	$KG_NSLOTS, %r14
	jb	next
	xor	%r14d, %r14d
	jmp	next

/*
 * cmdq_submit: the batch in slot %r13 through the SMMU CMDQ (trapped
 * PROD and CONS), as the header says; KG_PROG_VCMDQ's base-CMDQ path too.
 * In: %r15 vCPU block, %r13 slot, %r12 TSC at the start of the batch.
 * With a SYNC: its round trip in KG_V_LAT, KG_S_LAT(%r13), KG_V_LAT_SEQ
 * counted. Keeps %r12-%r15 and %rdi; clobbers %rax, %rbx, %rcx, %rdx,
 * %rsi, %rbp, %r8-%r11. Inside: %rbx linear producer index, %rcx
 * commands, %r10 last SYNC + 1 (0: none), %r11 the SYNC's linear index,
 * %r9 TSC at the PROD write, %rbp the MSIPOLL word (0: poll CONS).
 */
cmdq_submit:
lock:
	mov	$1, %eax
	xchg	%rax, ABS(KG_VM + KG_VM_LOCK)
	test	%rax, %rax
	jz	locked
1:	pause
	cmpq	$0, ABS(KG_VM + KG_VM_LOCK)
	jne	1b
	jmp	lock
locked:
	TSC
	sub	%r12, %rax
	add	%rax, KG_V_SPIN(%r15)
	mov	KG_S_N(%r13), %ecx
space:
	/* used = prod - cons (linear); room while used + n <= Q */
	mov	ABS(KG_VM + KG_VM_PROD), %rax
	sub	ABS(KG_VM + KG_VM_CONS), %rax
	mov	$KG_CMDQ_ENTS, %edx
	sub	%rax, %rdx
	cmp	%rcx, %rdx
	jae	write
	CONS_LINEAR ABS(KG_VM+KG_VM_PROD), ABS(KG_MMIO+KG_REG_CMDQ_CONS), \
		ABS(KG_VM+KG_VM_CONS)
	jmp	space
write:
	mov	ABS(KG_VM + KG_VM_PROD), %rbx
	lea	KG_S_CMDS(%r13), %rsi
	xor	%edx, %edx
1:	lea	(%rbx, %rdx), %rax
	and	$(KG_CMDQ_ENTS - 1), %eax
	shl	$4, %rax
	mov	(%rsi), %r8
	mov	%r8, ABS(KG_CMDQ)(%rax)
	mov	8(%rsi), %r8
	mov	%r8, ABS(KG_CMDQ + 8)(%rax)
	add	$16, %rsi
	inc	%rdx
	cmp	%rcx, %rdx
	jb	1b
	mov	KG_S_SYNC(%r13), %r10d
	lea	-1(%rbx, %r10), %r11
	/* MSIPOLL: the last SYNC signals with CS=SIG_IRQ, MSIData 0, into
	 * its own queue slot (%rbp), as arm_smmu_cmdq_build_sync_cmd() does. */
	xor	%ebp, %ebp
	cmpq	$0, KG_V_MSIPOLL(%r15)
	je	1f
	test	%r10, %r10
	jz	1f
	mov	%r11, %rax
	and	$(KG_CMDQ_ENTS - 1), %eax
	shl	$4, %rax
	lea	ABS(KG_CMDQ)(%rax), %rbp
	mov	(%rbp), %edx		/* 32-bit: MSIData (63:32) = 0 */
	and	$~KG_SYNC_CS_MASK, %edx
	or	$KG_SYNC_CS_IRQ, %edx
	mov	%rdx, (%rbp)
	mov	%rbp, 8(%rbp)		/* MSIAddr (51:2) = the slot */
1:	add	%rcx, %rbx
	mov	%rbx, ABS(KG_VM + KG_VM_PROD)
	add	%rcx, KG_V_CMDS(%r15)
	TSC
	mov	%rax, %r9
	mov	%ebx, %eax
	and	$KG_CMDQ_PMASK, %eax
	mov	%eax, ABS(KG_MMIO + KG_REG_CMDQ_PROD)
	movq	$0, ABS(KG_VM + KG_VM_LOCK)
	test	%r10, %r10
	jz	nosync
	test	%rbp, %rbp
	jnz	msipoll
poll:
	CONS_LINEAR ABS(KG_VM+KG_VM_PROD), ABS(KG_MMIO+KG_REG_CMDQ_CONS), \
		ABS(KG_VM+KG_VM_CONS)
	/* consumed iff the linear cons has passed the SYNC */
	cmp	%r11, %r8
	jbe	poll
	jmp	synced
msipoll:
	/* Linux's __arm_smmu_cmdq_poll_until_msi(): RAM only, no exit. */
	pause
	cmpl	$0, (%rbp)
	jne	msipoll
synced:
	TSC
	sub	%r9, %rax
	mov	%rax, KG_S_LAT(%r13)
	mov	%rax, KG_V_LAT(%r15)
	incq	KG_V_LAT_SEQ(%r15)
nosync:
	ret

/* ---- exit-cost programs: ITERS operations between two TSC reads -------- */
.macro STORE_LOOP addr
	mov	%rdi, %r15
	mov	KG_V_ITERS(%r15), %rcx
	TSC
	mov	%rax, KG_V_T0(%r15)
1:	movl	%ecx, ABS(\addr)
	dec	%rcx
	jnz	1b
	TSC
	mov	%rax, KG_V_T1(%r15)
	jmp	done
.endm

prog_mmio:
	STORE_LOOP (KG_MMIO + KG_MMIO_PLAIN)
prog_ioeventfd:
	STORE_LOOP (KG_MMIO + KG_MMIO_IOEVENTFD)
prog_coalesced:
	STORE_LOOP (KG_MMIO + KG_MMIO_COALESCED)

/* Store a sequence number, spin until the host echoes it back. */
prog_doorbell:
	mov	%rdi, %r15
	mov	KG_V_ITERS(%r15), %rcx
	TSC
	mov	%rax, KG_V_T0(%r15)
	xor	%ebx, %ebx
1:	inc	%rbx
	mov	%rbx, KG_V_BELL(%r15)
2:	pause
	cmp	KG_V_ANSWER(%r15), %rbx
	jne	2b
	cmp	%rcx, %rbx
	jb	1b
	TSC
	mov	%rax, KG_V_T1(%r15)
	jmp	done
/* KG_PROG_WAKE (guest.h): %r15 vCPU block, %rbx i, %r12/%r13 TSC before
 * and after the store, %r14 xorshift state. */
prog_wake:
	mov	%rdi, %r15
	mov	KG_W_SEED(%r15), %r14
	xor	%ebx, %ebx
1:	inc	%rbx
	cmp	KG_V_ITERS(%r15), %rbx
	ja	done
	testq	$KG_WF_GATE, KG_W_FLAGS(%r15)
	jz	3f
2:	cmp	KG_W_GO(%r15), %rbx
	jbe	3f
	pause
	jmp	2b
3:	mov	KG_W_ADDR(%r15), %rsi
	TSC
	mov	%rax, %r12
	movl	%ebx, (%rsi)
	mov	KG_W_BELL(%r15), %rsi
	test	%rsi, %rsi
	jz	4f
	movl	%ebx, (%rsi)
4:	TSC
	mov	%rax, %r13
	testq	$KG_WF_CHECK, KG_W_FLAGS(%r15)
	jz	5f
	mov	KG_W_ADDR(%r15), %rsi
	mov	(%rsi), %eax
	cmp	%ebx, %eax
	je	5f
	cmpq	$0, KG_W_BAD(%r15)
	jne	5f
	mov	%rbx, KG_W_BAD(%r15)
5:	mov	%rbx, %rax
	and	KG_W_SYNCMASK(%r15), %rax
	jnz	7f
	mov	KG_W_CADDR(%r15), %rsi
6:	mov	(%rsi), %eax
	cmp	%ebx, %eax
	je	7f
	pause
	jmp	6b
7:	TSC
	sub	%r12, %rax
	mov	%rax, KG_W_TRT(%r15)
	mov	%r13, %rax
	sub	%r12, %rax
	mov	%rax, KG_W_TSTORE(%r15)
	mov	%rbx, KG_W_SEQ(%r15)
	mov	KG_W_SPINMASK(%r15), %rcx
	test	%rcx, %rcx
	jz	1b
	mov	%r14, %rax
	shl	$13, %rax
	xor	%rax, %r14
	mov	%r14, %rax
	shr	$7, %rax
	xor	%rax, %r14
	mov	%r14, %rax
	shl	$17, %rax
	xor	%rax, %r14
	and	%r14, %rcx
8:	test	%rcx, %rcx
	jz	1b
	pause
	dec	%rcx
	jmp	8b
/* ---- KG_PROG_VCMDQ (guest.h): the tegra241-cmdqv driver ------------------
 * Page0 registers of queue l: KG_CMDQV + KG_CV_PAGE0 + 0x80 * l (RAM);
 * everything else in the window traps.
 */
#define CV(off) ABS(KG_CMDQV + (off))
#define Q_CONS 0x00
#define Q_PROD 0x04
#define Q_CONFIG 0x08
#define Q_STATUS 0x0c
#define Q_GERROR 0x10
#define Q_GERRORN 0x14
#define CONS_ERR 0x7f000000

/* Poll bit0 of the 32-bit register at %rsi until it equals %ecx.
 * %eax = 0, or 1 after KG_V_VTIMEOUT ticks. Clobbers %rax, %rdx, %r8. */
vpoll_bit0:
	TSC
	mov	%rax, %r8
1:	mov	(%rsi), %eax
	and	$1, %eax
	cmp	%ecx, %eax
	je	2f
	pause
	TSC
	sub	%r8, %rax
	cmp	KG_V_VTIMEOUT(%r15), %rax
	jb	1b
	mov	$1, %eax
	ret
2:	xor	%eax, %eax
	ret

/* Queue deinit of queue %r12 (facts 2.3 step 6a): CONFIG 0, poll STATUS
 * 0, PROD 0, CONS 0, BASE 0, CONS_INDX_BASE 0, GERRORN fix-up. %r13 =
 * its page0 registers, %r14 = its page1 registers. %eax = 0 or KG_VE_QOFF. */
vq_deinit:
	imul	$0x80, %r12, %r13
	lea	CV(KG_CV_PAGE1)(%r13), %r14
	lea	CV(KG_CV_PAGE0)(%r13), %r13
	movl	$0, Q_CONFIG(%r13)
	lea	Q_STATUS(%r13), %rsi
	xor	%ecx, %ecx
	call	vpoll_bit0
	test	%eax, %eax
	jnz	1f
	movl	$0, Q_PROD(%r13)
	movl	$0, Q_CONS(%r13)
	movq	$0, KG_CV_BASE(%r14)
	movq	$0, KG_CV_CONS_INDX_BASE(%r14)
	mov	Q_GERRORN(%r13), %eax
	mov	Q_GERROR(%r13), %edx
	cmp	%eax, %edx
	je	2f
	mov	%edx, Q_GERRORN(%r13)
2:	xor	%eax, %eax
	ret
1:	mov	$KG_VE_QOFF, %eax
	ret

/* The reset sequence (facts 2.3). %eax = 0 or a KG_VE_* code, %r12 the
 * queue it failed on. */
cmdqv_reset:
	/* 1. CMDQV: keep CONFIG, EN off, poll, EN on, poll. */
	mov	CV(KG_CV_CONFIG), %ebx
	and	$~1, %ebx
	mov	%ebx, CV(KG_CV_CONFIG)
	mov	$(KG_CMDQV + KG_CV_STATUS), %esi
	xor	%ecx, %ecx
	call	vpoll_bit0
	test	%eax, %eax
	jnz	9f
	or	$1, %ebx
	mov	%ebx, CV(KG_CV_CONFIG)
	mov	$1, %ecx
	call	vpoll_bit0
	test	%eax, %eax
	jnz	9f
	/* 2. CMDQ_ALLOC(q) = VINTF 0 | lidx q, not yet ALLOCATED. */
	xor	%r12d, %r12d
1:	lea	(%r12, %r12), %eax
	mov	%eax, CV(KG_CV_ALLOC)(, %r12, 4)
	inc	%r12
	cmp	$KG_VCMDQ_NQ, %r12
	jb	1b
	/* 3. VINTF0 deinit: queues in descending order, then the VINTF. */
	mov	$(KG_VCMDQ_NQ - 1), %r12
2:	call	vq_deinit
	test	%eax, %eax
	jnz	8f
	mov	CV(KG_CV_ALLOC)(, %r12, 4), %eax
	and	$~1, %eax
	mov	%eax, CV(KG_CV_ALLOC)(, %r12, 4)
	dec	%r12
	jns	2b
	movl	$0, CV(KG_CV_VINTF_CONFIG)
	mov	$(KG_CMDQV + KG_CV_VINTF_STATUS), %esi
	xor	%ecx, %ecx
	call	vpoll_bit0
	test	%eax, %eax
	jnz	7f
	/* 4. VINTF0: HYP_OWN | VMID 0, then with EN; HYP_OWN reads 0. */
	movl	$KG_CV_VINTF_HYP_OWN, CV(KG_CV_VINTF_CONFIG)
	movl	$(KG_CV_VINTF_HYP_OWN | 1), CV(KG_CV_VINTF_CONFIG)
	mov	$1, %ecx
	call	vpoll_bit0
	test	%eax, %eax
	jnz	7f
	mov	CV(KG_CV_VINTF_CONFIG), %eax
	/* 5./6. Queues in ascending order: ALLOCATED, deinit, BASE, EN. */
	xor	%r12d, %r12d
3:	mov	CV(KG_CV_ALLOC)(, %r12, 4), %eax
	or	$1, %eax
	mov	%eax, CV(KG_CV_ALLOC)(, %r12, 4)
	call	vq_deinit
	test	%eax, %eax
	jnz	8f
	mov	%r12, %rax
	shl	$12, %rax
	add	$(KG_VQMEM(0) | KG_CMDQ_LOG2), %rax
	mov	%rax, KG_CV_BASE(%r14)		/* one 64-bit store: traps */
	movl	$1, Q_CONFIG(%r13)		/* RAM: the service reacts */
	lea	Q_STATUS(%r13), %rsi
	mov	$1, %ecx
	call	vpoll_bit0
	test	%eax, %eax
	jnz	6f
	inc	%r12
	cmp	$KG_VCMDQ_NQ, %r12
	jb	3b
	xor	%eax, %eax
	ret
6:	mov	$KG_VE_QON, %eax
8:	ret
7:	mov	$KG_VE_VINTF, %eax
	ret
9:	mov	$KG_VE_CMDQV, %eax
	ret

/* The error exit: %eax = KG_VE_*, %r12 / %rax's detail in KG_V_VERRVAL. */
verr_cons:
	mov	%rax, KG_V_VERRVAL(%r15)
	mov	$KG_VE_CONSERR, %eax
	jmp	1f
verr:
	mov	%r12, KG_V_VERRVAL(%r15)
1:	mov	%rax, KG_V_VERR(%r15)
	movq	$1, ABS(KG_VM + KG_VM_STOP)
	jmp	done

/* %r15 vCPU block, %rbp queue registers (page0), %rdi KG_VQ(queue),
 * %r14 queue memory; then as in bench: %r13 slot, %r12 TSC at start,
 * %rbx linear producer index, %rcx commands, %r10 last SYNC + 1, %r11
 * its linear index, %r9 TSC at the PROD store. */
prog_vcmdq:
	mov	%rdi, %r15
	cmpq	$0, KG_V_VINIT(%r15)
	je	1f
	call	cmdqv_reset
	test	%eax, %eax
	jnz	verr
	movq	$1, ABS(KG_VM + KG_VM_VREADY)
1:	cmpq	$0, ABS(KG_VM + KG_VM_VREADY)
	jne	2f
	cmpq	$0, ABS(KG_VM + KG_VM_STOP)
	jne	done
	pause
	jmp	1b
2:	movl	$1, ABS(KG_MMIO + KG_MMIO_SETUP)
	mov	KG_V_QUEUE(%r15), %rax
	imul	$0x80, %rax, %rbp
	add	$(KG_CMDQV + KG_CV_PAGE0), %rbp
	mov	%rax, %r14
	shl	$12, %r14
	add	$KG_VQMEM(0), %r14
	shl	$6, %rax
	lea	KG_VQ(0)(%rax), %rdi
vnext:
	xor	%r12d, %r12d			/* TSC when it began to wait */
vwait:
	cmpq	$0, ABS(KG_VM + KG_VM_STOP)
	jne	done
	mov	KG_V_BATCHES(%r15), %r8
	mov	KG_V_LIMIT(%r15), %rdx
	test	%rdx, %rdx
	jz	1f
	cmp	%r8, %rdx
	jbe	done
1:	cmp	KG_V_READY(%r15), %r8		/* A_READY: x86 loads are ordered */
	jb	2f
	test	%r12, %r12
	jnz	3f
	TSC
	mov	%rax, %r12
3:	pause
	jmp	vwait
2:	test	%r12, %r12
	jz	4f
	TSC
	sub	%r12, %rax
	add	%rax, KG_V_HWAIT(%r15)
4:	mov	%r8, %rax
	and	$(KG_NSLOTS - 1), %eax
	imul	$KG_SLOT_SIZE, %rax, %r13
	lea	KG_SLOTS(%r15, %r13), %r13
	TSC
	mov	%rax, %r12
	/* The queue of this batch: the VCMDQ if it accepts every command
	 * (tegra241_guest_vcmdq_supports_cmd(); CMD_SYNC goes with its
	 * batch), else the whole batch to the SMMU CMDQ (trapped). */
	mov	KG_S_N(%r13), %ecx
	lea	KG_S_CMDS(%r13), %rsi
1:	movzbl	(%rsi), %eax
	cmp	$0x11, %eax			/* TLBI_NH_ASID */
	je	2f
	cmp	$0x12, %eax			/* TLBI_NH_VA */
	je	2f
	cmp	$0x40, %eax			/* ATC_INV */
	je	2f
	cmp	$0x46, %eax			/* CMD_SYNC */
	jne	vbase
2:	add	$16, %rsi
	dec	%ecx
	jnz	1b
vlock:
	mov	$1, %eax
	xchg	%rax, KG_VQ_LOCK(%rdi)
	test	%rax, %rax
	jz	vlocked
1:	pause
	cmpq	$0, ABS(KG_VM + KG_VM_STOP)
	jne	done
	cmpq	$0, KG_VQ_LOCK(%rdi)
	jne	1b
	jmp	vlock
vlocked:
	TSC
	sub	%r12, %rax
	add	%rax, KG_V_SPIN(%r15)
	mov	KG_S_N(%r13), %ecx
vspace:
	mov	KG_VQ_PROD(%rdi), %rax
	sub	KG_VQ_CONS(%rdi), %rax
	mov	$KG_CMDQ_ENTS, %edx
	sub	%rax, %rdx
	cmp	%rcx, %rdx
	jae	vwrite
	/* Q_CONS: RAM, no exit */
	CONS_LINEAR KG_VQ_PROD(%rdi), Q_CONS(%rbp), KG_VQ_CONS(%rdi), \
		verr_cons, CONS_ERR
	pause
	jmp	vspace
vwrite:
	mov	KG_VQ_PROD(%rdi), %rbx
	lea	KG_S_CMDS(%r13), %rsi
	xor	%edx, %edx
1:	lea	(%rbx, %rdx), %rax
	and	$(KG_CMDQ_ENTS - 1), %eax
	shl	$4, %rax
	mov	(%rsi), %r8
	cmp	$0x46, %r8b			/* CMD_SYNC: CS = NONE on a VCMDQ */
	jne	2f
	and	$~KG_SYNC_CS_MASK, %r8
2:	mov	%r8, (%r14, %rax)
	mov	8(%rsi), %r8
	mov	%r8, 8(%r14, %rax)
	add	$16, %rsi
	inc	%rdx
	cmp	%rcx, %rdx
	jb	1b
	mov	KG_S_SYNC(%r13), %r10d
	lea	-1(%rbx, %r10), %r11
	add	%rcx, %rbx
	mov	%rbx, KG_VQ_PROD(%rdi)
	add	%rcx, KG_V_CMDS(%r15)
	TSC
	mov	%rax, %r9
	/* G_PROD: x86 keeps the entry stores before this one (dma_wmb). */
	mov	%ebx, %eax
	and	$KG_CMDQ_PMASK, %eax
	mov	%eax, Q_PROD(%rbp)		/* RAM: no exit */
	movq	$0, KG_VQ_LOCK(%rdi)
	test	%r10, %r10
	jz	vnosync
vpoll:
	/* A_CONS: the Q_CONS load (x86: loads are acquire) */
	CONS_LINEAR KG_VQ_PROD(%rdi), Q_CONS(%rbp), KG_VQ_CONS(%rdi), \
		verr_cons, CONS_ERR
	cmp	%r11, %r8
	ja	vsynced
	pause
	TSC
	sub	%r9, %rax
	cmp	KG_V_VTIMEOUT(%r15), %rax
	jb	vpoll
	mov	%r11, %r12
	mov	$KG_VE_SYNC, %eax
	jmp	verr
vsynced:
	TSC
	sub	%r9, %rax
	mov	%rax, KG_S_LAT(%r13)		/* per batch: the host may lag */
	mov	%rax, KG_V_LAT(%r15)
	incq	KG_V_LAT_SEQ(%r15)
	jmp	vnosync
vbase:
	/* bench's submission, unchanged; it keeps %r12-%r15 and %rdi. */
	push	%rbp
	call	cmdq_submit
	pop	%rbp
	mov	KG_S_N(%r13), %eax
	add	%rax, KG_V_BASECMDS(%r15)
	incq	KG_V_BASEBATCHES(%r15)
vnosync:
	TSC
	sub	%r12, %rax
	add	%rax, KG_V_BUSY(%r15)
	incq	KG_V_BATCHES(%r15)		/* after LAT: the host reads it last */
	jmp	vnext
kvm_guest_end:

	.section .note.GNU-stack, "", @progbits
