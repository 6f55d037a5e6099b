// SPDX-License-Identifier: GPL-2.0-only
/*
 * KVM introspection (KVMI) selftest
 *
 * The test plays both the device manager (it owns the VM fd and uses the
 * KVM_INTROSPECTION_* ioctls) and the introspection tool (it talks to KVM
 * over one end of a socketpair whose other end was handed to KVM with
 * KVM_INTROSPECTION_HOOK).
 *
 * Every case runs in its own child process, with its own VM, so that a
 * failed assertion or a hang fails only that case.
 *
 * Run "kvmi_test --demo" for a short human-readable session, or
 * "kvmi_test NAME..." to run only some cases ("--list" prints them).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <linux/kvm_para.h>
#include <linux/kvmi.h>

#include "test_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "ucall_common.h"

/*
 * Hang guards, not timing checks: they only turn a hang into a failure,
 * and are far above what any case needs even under Bochs.
 */
#define CASE_TIMEOUT_SEC	600
#define SOCKET_TIMEOUT_SEC	300

#define PAGE_BYTES		4096
#define INVALID_GPA		BIT_ULL(40)

#ifndef KVM_HC_XEN_HVM_OP
#define KVM_HC_XEN_HVM_OP	34
#endif

/* What the guest gets from the agent hypercall when no tool answered. */
#define HC_NO_TOOL		((__u64)-KVM_ENOSYS)

/* The registers the guest loads before the hypercall... */
#define GUEST_RBX		0x1234abcd5678ef01ULL
#define GUEST_RCX		0x2345bcde6789f012ULL
#define GUEST_RDX		0x3456cdef789a0123ULL
/* ...and those the tool sets with KVMI_VCPU_SET_REGISTERS. */
#define TOOL_RBX		0xfeedface00c0ffeeULL
#define TOOL_RCX		0xdeadc0debaadf00dULL
#define TOOL_RDX		0x0123456789abcdefULL

#define VCPU_EVENT_COMMON_SIZE	(sizeof(struct kvmi_event_hdr) + \
				 sizeof(struct kvmi_vcpu_event))
#define MAX_PENDING_PAUSE	1001
#define MAX_GET_REGISTERS_MSRS	481
#define NR_MULTI_VCPUS		4
#define MULTI_HYPERCALLS	10
#define MAX_RUNNERS		NR_MULTI_VCPUS

/* Not in the selftest headers of 6.12. */
#ifndef X86_FEATURE_AVX
#define X86_FEATURE_AVX		KVM_X86_CPU_FEATURE(0x1, 0, ECX, 28)
#endif
#ifndef X86_FEATURE_MTRR
#define X86_FEATURE_MTRR	KVM_X86_CPU_FEATURE(0x1, 0, EDX, 12)
#endif
#define RFLAGS_TF		BIT_ULL(8)

#define MTRR_TYPE_UC		0
#define MTRR_TYPE_WC		1
#define MTRR_TYPE_WT		4
#define MTRR_TYPE_WB		6
#define MTRR_DEF_FE		BIT_ULL(10)	/* MTRRdefType: fixed ranges on */
#define MTRR_DEF_E		BIT_ULL(11)	/* MTRRdefType: MTRRs on */
#define MTRR_MASK_VALID		BIT_ULL(11)
#define MSR_MTRR_BASE(n)	(0x200 + 2 * (n))
#define MSR_MTRR_MASK(n)	(0x201 + 2 * (n))
#define MSR_MTRR_FIX_64K	0x250
#define MSR_MTRR_DEF_TYPE	0x2ff

/* The legacy area of the XSAVE region (struct kvm_xsave). */
#define XSAVE_MXCSR		24
#define XSAVE_XMM(n)		(160 + 16 * (n))
#define XSAVE_XSTATE_BV		512

/* Every descriptor-table instruction of the guest is 0f 0x /r (%rax). */
#define DESC_INSN_LEN		3
#define DESC_POISON		(~0ULL)

#define MAX_STEPS		10000
#define LOOP_WRITES		1000
#define UNMAPPED_GVA		0x7f0000000000ULL

/* Guest page access (issue 5). */
#define PAGE_ACCESS_ALL		(KVMI_PAGE_ACCESS_R | KVMI_PAGE_ACCESS_W | \
				 KVMI_PAGE_ACCESS_X)
#define MAX_PAGE_ACCESS_ENTRIES	((KVMI_MAX_MSG_SIZE - \
				  sizeof(struct kvmi_vm_set_page_access)) / \
				 sizeof(struct kvmi_page_access_entry))
/* What the accesses of check_access() use in a test page. */
#define CODE_OFFSET		0x100	/* exec_code[] */
#define DATA_OFFSET		0x238	/* the u64 read and written */
#define EXEC_RET_OFFSET		5	/* the RET of exec_code[] */
#define EXEC_RESULT		0x1234
/* GOP_TOUCH writes at TOUCH_OFFSET + 8 * (page % 256). */
#define TOUCH_OFFSET		0x800
/* GOP_FILL and GOP_SUM: CORR_WORDS words per page, 0x100 bytes apart. */
#define CORR_OFFSET		0x400
#define CORR_WORDS		4
#define CORR_HASH_INIT		0xcbf29ce484222325ULL
#define CORR_PAGES		8
#define NR_MANY_PAGES		2048
#define NR_UNHOOK_PAGES		8
#define LOOP_MAX		200000	/* bound of an open-ended GOP_LOOP */
#define PF_EXTRA_PAGES		16	/* for the guest page tables */
#define PF_SLOT0_PAGES		64	/* test pages that fit in memslot 0 */
/* A memslot of the test, mapped at the same guest virtual address. */
#define TEST_SLOT		1
#define TEST_SLOT_GPA		0x40000000ULL
#define MOVED_SLOT_GPA		0x80000000ULL
/* Above KVM's own memslots, which are all below 4 GiB. */
#define TOP_SLOT_GPA		0x100000000ULL
/* The memslot of KVM's APIC access page (VMX, AVIC). */
#define APIC_ACCESS_GFN		0xfee00ULL
#define HUGE_BYTES		0x200000ULL
#define HUGE_REGIONS		2

static struct kvm_vm *test_vm;
static struct kvm_vcpu *test_vcpu;

/* The introspection tool's end of the socket. */
static int tool_fd = -1;
static __u32 tool_seq;

/* A whole message received from KVM. */
struct raw_msg {
	struct kvmi_msg_hdr hdr;
	__u8 data[KVMI_MAX_MSG_SIZE];
};

#define MAX_STASHED_EVENTS	16

/* The vCPU events received while the tool waited for a reply. */
static struct raw_msg stashed_events[MAX_STASHED_EVENTS];
static unsigned int nr_stashed_events;

/* The test pages: contiguous in gva and gpa; the guest has copies. */
static vm_vaddr_t test_page_gva;
static __u64 test_page_gpa;
static __u64 nr_test_pages;

static const __u8 test_uuid[16] = {
	0x6b, 0x76, 0x6d, 0x69, 0x2d, 0x73, 0x65, 0x6c,
	0x66, 0x74, 0x65, 0x73, 0x74, 0x2d, 0x30, 0x31,
};

/* ------------------------------------------------------------------ */
/* Guest side                                                          */
/* ------------------------------------------------------------------ */

enum {
	GUEST_OP_FILL = 1,
	GUEST_OP_CHECK,
	GUEST_OP_DONE,
};

/* The operation the memory guest performs after its next GUEST_SYNC. */
struct guest_mem_op {
	__u64 op;
	__u64 offset;
	__u64 size;
	__u64 seed;
};

static struct guest_mem_op guest_mem_op;

static const char demo_text[] = "Hello from the KVMI selftest guest!";

static inline __u8 pattern_byte(__u64 seed, __u64 offset)
{
	return (__u8)(seed * 0x9d + offset * 7 + (offset >> 8));
}

static void guest_idle_code(void)
{
	GUEST_DONE();
}

static void guest_mem_code(__u8 *page)
{
	__u64 op, offset, size, seed, i;

	for (;;) {
		GUEST_SYNC(0);

		op = READ_ONCE(guest_mem_op.op);
		offset = READ_ONCE(guest_mem_op.offset);
		size = READ_ONCE(guest_mem_op.size);
		seed = READ_ONCE(guest_mem_op.seed);

		if (op == GUEST_OP_DONE)
			break;

		for (i = offset; i < offset + size; i++) {
			__u8 expected = pattern_byte(seed, i);

			if (op == GUEST_OP_FILL) {
				WRITE_ONCE(page[i], expected);
				continue;
			}
			__GUEST_ASSERT(READ_ONCE(page[i]) == expected,
				       "page[%lu] = %#x, expected %#x",
				       (unsigned long)i,
				       READ_ONCE(page[i]), expected);
		}
	}

	GUEST_DONE();
}

static void guest_demo_code(char *page)
{
	memcpy(page, demo_text, sizeof(demo_text));
	GUEST_SYNC(0);
	GUEST_DONE();
}

/*
 * The vCPU guest: it spins until the host releases the next step, then
 * runs the operation chosen by the host and reports its result with
 * GUEST_SYNC(result).  The host never stops the vCPU for this, so the vCPU
 * stays in KVM_RUN and serves the vCPU commands.
 */
enum {
	GOP_NOP = 1,
	GOP_HYPERCALL,		/* rdi = guest_arg1, rsi = guest_arg2 */
	GOP_HYPERCALL_SET_REGS,	/* expects TOOL_RBX/RCX/RDX afterwards */
	GOP_HYPERCALL_LOOP,	/* guest_arg1 hypercalls, each returns 0 */
	GOP_INT3,		/* result: the #BP handler count */
	GOP_CPUID,		/* leaf 0 in guest_cpuid0[] */
	GOP_READ_CR,		/* CR arg1 (0, 3 or 4) */
	GOP_WRITE_CR,		/* CR arg1 = arg2; result: CR arg1 read back */
	GOP_RDMSR,		/* MSR arg1 */
	GOP_WRMSR,		/* MSR arg1 = arg2; result: MSR arg1 read back */
	GOP_XSETBV,		/* XCR0 = arg1; result: XGETBV(0) */
	GOP_DESCRIPTOR,		/* descriptor-table instruction arg1 (DI_*) */
	GOP_XMM_HYPERCALL,	/* hypercall with XMM0/XMM1 loaded */
	GOP_SINGLESTEP,		/* kvmi_ss_fn(); result: the flags it pushed */
	GOP_LOOP,		/* arg1 write loops (0: until guest_loop_stop) */
	GOP_READ,		/* result: the u64 at gva arg1 */
	GOP_WRITE,		/* the u64 at gva arg1 = arg2 */
	GOP_EXEC,		/* result: what the code at gva arg1 returns */
	GOP_TOUCH,		/* writes arg2 + i to touch_gva(i), i < arg1 */
	GOP_FILL,		/* the test pages' words = corr_value(arg1, k) */
	GOP_SUM,		/* result: the hash of the test pages' words */
	GOP_DONE,
};

/* The descriptor-table instructions of GOP_DESCRIPTOR. */
enum {
	DI_SGDT,
	DI_SIDT,
	DI_SLDT,
	DI_STR,
	DI_LGDT,
	DI_LIDT,
	DI_LLDT,
	NR_DESC_INSNS,
};

struct xmm_val {
	__u64 lo, hi;
};

/* What the guest's exception handler saw last. */
struct guest_exception {
	__u64 count;
	__u64 vector;
	__u64 error_code;
	__u64 cr2;
};

static __u64 guest_step;
static __u64 guest_op;
static __u64 guest_arg1;
static __u64 guest_arg2;
static __u64 guest_vmmcall;
static __u64 guest_bp_count;
static __u32 guest_cpuid0[4];
/* The exception vector of the last guest write (0: none). */
static __u64 guest_fault;
/* The values that LGDT, LIDT and LLDT load (the current ones). */
static struct desc_ptr guest_gdtr;
static struct desc_ptr guest_idtr;
static __u16 guest_ldtr;
/* XMM0 and XMM1 before and after GOP_XMM_HYPERCALL. */
static struct xmm_val guest_xmm_in[2];
static struct xmm_val guest_xmm_out[2];
static struct guest_exception guest_exc;
static __u64 guest_ss_go;
static __u64 guest_loop_stop;
static __u64 guest_loops_started;

struct hc_regs {
	__u64 rax, rbx, rcx, rdx, rsi, rdi;
};

static void guest_hypercall(struct hc_regs *r)
{
	if (READ_ONCE(guest_vmmcall))
		asm volatile("vmmcall"
			     : "+a"(r->rax), "+b"(r->rbx), "+c"(r->rcx),
			       "+d"(r->rdx), "+S"(r->rsi), "+D"(r->rdi)
			     : : "memory");
	else
		asm volatile("vmcall"
			     : "+a"(r->rax), "+b"(r->rbx), "+c"(r->rcx),
			       "+d"(r->rdx), "+S"(r->rsi), "+D"(r->rdi)
			     : : "memory");
}

/* The KVMI agent hypercall; returns rax. */
static __u64 kvmi_agent_hypercall(void)
{
	struct hc_regs r = {
		.rax = KVM_HC_XEN_HVM_OP,
		.rdi = KVM_HC_XEN_HVM_OP_GUEST_REQUEST_VM_EVENT,
	};

	guest_hypercall(&r);
	return r.rax;
}

/* A function made of an INT3 and a RET (see int3_gva()). */
static void __naked kvmi_int3_fn(void)
{
	asm volatile("int3\n\t"
		     "ret\n\t");
}

static void guest_bp_handler(struct ex_regs *regs)
{
	WRITE_ONCE(guest_bp_count, guest_bp_count + 1);
}

static __u64 guest_do_hypercall(__u64 op)
{
	struct hc_regs r = {
		.rax = KVM_HC_XEN_HVM_OP,
		.rbx = GUEST_RBX,
		.rcx = GUEST_RCX,
		.rdx = GUEST_RDX,
		.rdi = READ_ONCE(guest_arg1),
		.rsi = READ_ONCE(guest_arg2),
	};
	bool set = op == GOP_HYPERCALL_SET_REGS;

	guest_hypercall(&r);

	GUEST_ASSERT_EQ(r.rbx, set ? TOOL_RBX : GUEST_RBX);
	GUEST_ASSERT_EQ(r.rcx, set ? TOOL_RCX : GUEST_RCX);
	GUEST_ASSERT_EQ(r.rdx, set ? TOOL_RDX : GUEST_RDX);

	return r.rax;
}

static __u64 guest_read_cr(__u64 cr)
{
	if (cr == 0)
		return get_cr0();
	if (cr == 3)
		return get_cr3();
	return get_cr4();
}

/* MOV to CR from RAX (3 bytes); a #GP is caught and recorded. */
static __u64 guest_write_cr(__u64 cr, __u64 val)
{
	__u8 vector;

	if (cr == 0)
		vector = kvm_asm_safe("mov %%rax, %%cr0", "a"(val));
	else if (cr == 3)
		vector = kvm_asm_safe("mov %%rax, %%cr3", "a"(val));
	else
		vector = kvm_asm_safe("mov %%rax, %%cr4", "a"(val));
	WRITE_ONCE(guest_fault, vector);

	return guest_read_cr(cr);
}

/* WRMSR (2 bytes); a #GP is caught and recorded. */
static __u64 guest_wrmsr(__u32 msr, __u64 val)
{
	WRITE_ONCE(guest_fault, wrmsr_safe(msr, val));
	return rdmsr(msr);
}

/* XSETBV (3 bytes); a #GP is caught and recorded. */
static __u64 guest_xsetbv(__u64 val)
{
	if (!(get_cr4() & X86_CR4_OSXSAVE))
		set_cr4(get_cr4() | X86_CR4_OSXSAVE);
	WRITE_ONCE(guest_fault, xsetbv_safe(0, val));

	return xgetbv(0);
}

/*
 * Run descriptor-table instruction @insn (DESC_INSN_LEN bytes).  A store
 * returns what it stored (DESC_POISON or 0xffff if it did not run), a
 * load returns 0.
 */
static __u64 guest_descriptor_insn(__u64 insn)
{
	struct desc_ptr dt = { .size = 0xffff, .address = DESC_POISON };
	__u16 sel = 0xffff;

	switch (insn) {
	case DI_SGDT:
		asm volatile("sgdt (%0)" : : "a"(&dt) : "memory");
		GUEST_ASSERT(dt.address == DESC_POISON ||
			     dt.size == guest_gdtr.size);
		return dt.address;
	case DI_SIDT:
		asm volatile("sidt (%0)" : : "a"(&dt) : "memory");
		GUEST_ASSERT(dt.address == DESC_POISON ||
			     dt.size == guest_idtr.size);
		return dt.address;
	case DI_SLDT:
		asm volatile("sldt (%0)" : : "a"(&sel) : "memory");
		return sel;
	case DI_STR:
		asm volatile("str (%0)" : : "a"(&sel) : "memory");
		return sel;
	case DI_LGDT:
		asm volatile("lgdt (%0)" : : "a"(&guest_gdtr) : "memory");
		return 0;
	case DI_LIDT:
		asm volatile("lidt (%0)" : : "a"(&guest_idtr) : "memory");
		return 0;
	default:
		asm volatile("lldt (%0)" : : "a"(&guest_ldtr) : "memory");
		return 0;
	}
}

/*
 * The agent hypercall with XMM0 and XMM1 loaded from guest_xmm_in[], and
 * stored into guest_xmm_out[] afterwards (in one asm statement, so that
 * the compiler cannot use these registers in between).  Returns rax.
 */
static __u64 guest_xmm_hypercall(void)
{
	__u64 rax = KVM_HC_XEN_HVM_OP;

	asm volatile("movdqu %[in0], %%xmm0\n\t"
		     "movdqu %[in1], %%xmm1\n\t"
		     "cmpq $0, %[vmm]\n\t"
		     "jne 1f\n\t"
		     "vmcall\n\t"
		     "jmp 2f\n\t"
		     "1: vmmcall\n\t"
		     "2: movdqu %%xmm0, %[out0]\n\t"
		     "movdqu %%xmm1, %[out1]\n\t"
		     : [out0] "=m"(guest_xmm_out[0]),
		       [out1] "=m"(guest_xmm_out[1]), "+a"(rax)
		     : [in0] "m"(guest_xmm_in[0]), [in1] "m"(guest_xmm_in[1]),
		       [vmm] "m"(guest_vmmcall),
		       "D"((__u64)KVM_HC_XEN_HVM_OP_GUEST_REQUEST_VM_EVENT),
		       "S"(0ULL)
		     : "xmm0", "xmm1", "rdx", "r8", "r9", "r10", "memory");

	return rax;
}

/*
 * The single-stepped code: it spins until *@go is set, then runs NOP,
 * NOP, PUSHF, POP %rax (one byte each) and RET (see ss_seq_gva()), and
 * returns the flags that PUSHF stored.
 */
static __u64 __naked kvmi_ss_fn(__u64 *go)
{
	asm volatile("1: cmpq $0, (%rdi)\n\t"
		     "je 1b\n\t"
		     "nop\n\t"
		     "nop\n\t"
		     "pushfq\n\t"
		     "pop %rax\n\t"
		     "ret\n\t");
}

/* The MSR whose writes KVM itself passes through on this vendor. */
static __u32 passthrough_msr(void)
{
	return host_cpu_is_amd ? MSR_LSTAR : MSR_IA32_SYSENTER_CS;
}

/*
 * @n iterations (0: until guest_loop_stop is set) of writes that KVM does
 * not intercept with NPT/EPT: CR3, the pass-through MSR, and SGDT.
 */
static __u64 guest_loop(__u64 n)
{
	__u32 msr = passthrough_msr();
	__u64 cr3 = get_cr3(), val = rdmsr(msr), i;
	struct desc_ptr dt;

	/*
	 * n = 0: until the host says stop, but not forever: a vCPU that
	 * never leaves the guest must not depend on the host getting the CPU.
	 */
	__atomic_add_fetch(&guest_loops_started, 1, __ATOMIC_SEQ_CST);
	for (i = 0; n ? i < n : !READ_ONCE(guest_loop_stop) && i < LOOP_MAX;
	     i++) {
		asm volatile("mov %0, %%cr3" : : "r"(cr3) : "memory");
		wrmsr(msr, val);
		asm volatile("sgdt %0" : "=m"(dt));
	}

	return i;
}

/* The u64 of the test pages that the @i-th write of GOP_TOUCH goes to. */
static inline __u64 touch_gva(__u64 i)
{
	__u64 page = i % nr_test_pages;

	return test_page_gva + page * PAGE_BYTES + TOUCH_OFFSET +
	       (page % 256) * 8;
}

/* The @k-th word of the test pages for GOP_FILL and GOP_SUM. */
static inline __u64 corr_gva(__u64 k)
{
	return test_page_gva + k / CORR_WORDS * PAGE_BYTES + CORR_OFFSET +
	       k % CORR_WORDS * 0x100;
}

static inline __u64 corr_value(__u64 seed, __u64 k)
{
	return (seed ^ k) * 0x9e3779b97f4a7c15ULL + k;
}

static inline __u64 corr_hash(__u64 h, __u64 v)
{
	return (h ^ v) * 0x100000001b3ULL;
}

/*
 * Guest accesses to the test pages: one MOV each, which KVM can emulate
 * (the compiler could use SSE instructions, or read-modify-write ones).
 */
static __u64 guest_read_u64(__u64 gva)
{
	__u64 val;

	asm volatile("mov (%1), %0" : "=r"(val) : "r"(gva) : "memory");
	return val;
}

static void guest_write_u64(__u64 gva, __u64 val)
{
	asm volatile("mov %1, (%0)" : : "r"(gva), "r"(val) : "memory");
}

static __u64 guest_sum(void)
{
	__u64 h = CORR_HASH_INIT, k;

	for (k = 0; k < nr_test_pages * CORR_WORDS; k++)
		h = corr_hash(h, guest_read_u64(corr_gva(k)));
	return h;
}

static void guest_exception_handler(struct ex_regs *regs)
{
	__u64 cr2;

	asm volatile("mov %%cr2, %0" : "=r"(cr2));
	guest_exc.vector = regs->vector;
	guest_exc.error_code = regs->error_code;
	guest_exc.cr2 = cr2;
	guest_exc.count++;

	/* The only #DF comes from the WRMSR of guest_wrmsr(): skip it. */
	if (regs->vector == DF_VECTOR)
		regs->rip += 2;
}

static __u64 guest_do_op(__u64 op)
{
	__u64 arg1 = READ_ONCE(guest_arg1), arg2 = READ_ONCE(guest_arg2);
	__u32 *c = guest_cpuid0;
	__u64 i, n;

	switch (op) {
	case GOP_NOP:
		return 0;
	case GOP_HYPERCALL:
	case GOP_HYPERCALL_SET_REGS:
		return guest_do_hypercall(op);
	case GOP_HYPERCALL_LOOP:
		n = READ_ONCE(guest_arg1);
		for (i = 0; i < n; i++)
			GUEST_ASSERT_EQ(kvmi_agent_hypercall(), 0);
		return 0;
	case GOP_INT3:
		kvmi_int3_fn();
		return READ_ONCE(guest_bp_count);
	case GOP_CPUID:
		cpuid(0, &c[0], &c[1], &c[2], &c[3]);
		return c[0];
	case GOP_READ_CR:
		return guest_read_cr(arg1);
	case GOP_WRITE_CR:
		return guest_write_cr(arg1, arg2);
	case GOP_RDMSR:
		return rdmsr(arg1);
	case GOP_WRMSR:
		return guest_wrmsr(arg1, arg2);
	case GOP_XSETBV:
		return guest_xsetbv(arg1);
	case GOP_DESCRIPTOR:
		return guest_descriptor_insn(arg1);
	case GOP_XMM_HYPERCALL:
		return guest_xmm_hypercall();
	case GOP_SINGLESTEP:
		return kvmi_ss_fn(&guest_ss_go);
	case GOP_LOOP:
		return guest_loop(arg1);
	case GOP_READ:
		return guest_read_u64(arg1);
	case GOP_WRITE:
		guest_write_u64(arg1, arg2);
		return 0;
	case GOP_EXEC:
		return ((__u64 (*)(void))arg1)();
	case GOP_TOUCH:
		for (i = 0; i < arg1; i++)
			guest_write_u64(touch_gva(i), arg2 + i);
		return arg1;
	case GOP_FILL:
		for (i = 0; i < nr_test_pages * CORR_WORDS; i++)
			guest_write_u64(corr_gva(i), corr_value(arg1, i));
		return 0;
	case GOP_SUM:
		return guest_sum();
	default:
		GUEST_FAIL("Unknown op %lu", (unsigned long)op);
		return 0;
	}
}

static void guest_vcpu_code(void)
{
	__u64 step, op;

	for (step = 1;; step++) {
		while (READ_ONCE(guest_step) < step)
			asm volatile("pause" : : : "memory");

		op = READ_ONCE(guest_op);
		if (op == GOP_DONE)
			break;
		GUEST_SYNC(guest_do_op(op));
	}

	GUEST_DONE();
}

/* Used by the #BP intercept probe. */
static void guest_int3_code(void)
{
	kvmi_int3_fn();
	GUEST_DONE();
}

/* ------------------------------------------------------------------ */
/* Small utilities                                                     */
/* ------------------------------------------------------------------ */

static bool is_zero(const void *p, size_t size)
{
	const __u8 *b = p;
	size_t i;

	for (i = 0; i < size; i++)
		if (b[i])
			return false;
	return true;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static const char *err_str(int err)
{
	return err ? strerror(err < 0 ? -err : err) : "success";
}

/* ------------------------------------------------------------------ */
/* Device manager side: the introspection ioctls                      */
/* ------------------------------------------------------------------ */

/* All these return 0 or -errno. */

static int __hook(struct kvm_vm *vm, int fd, __u32 padding)
{
	struct kvm_introspection_hook hook = {
		.fd = fd,
		.padding = padding,
	};

	memcpy(hook.uuid, test_uuid, sizeof(hook.uuid));

	return __vm_ioctl(vm, KVM_INTROSPECTION_HOOK, &hook) ? -errno : 0;
}

static int __unhook(struct kvm_vm *vm)
{
	return __vm_ioctl(vm, KVM_INTROSPECTION_UNHOOK, NULL) ? -errno : 0;
}

static int __preunhook(struct kvm_vm *vm)
{
	return __vm_ioctl(vm, KVM_INTROSPECTION_PREUNHOOK, NULL) ? -errno : 0;
}

static int __command_feature(struct kvm_vm *vm, __u32 allow, __s32 id)
{
	struct kvm_introspection_feature feat = {
		.allow = allow,
		.id = id,
	};

	return __vm_ioctl(vm, KVM_INTROSPECTION_COMMAND, &feat) ? -errno : 0;
}

static int __event_feature(struct kvm_vm *vm, __u32 allow, __s32 id)
{
	struct kvm_introspection_feature feat = {
		.allow = allow,
		.id = id,
	};

	return __vm_ioctl(vm, KVM_INTROSPECTION_EVENT, &feat) ? -errno : 0;
}

#define EXPECT_ERR(call, expected)					\
do {									\
	int __r = (call);						\
	int __e = (expected);						\
									\
	TEST_ASSERT(__r == __e, "%s returned %d (%s), expected %d (%s)",\
		    #call, __r, err_str(__r), __e, err_str(__e));	\
} while (0)

static void allow_command(__s32 id)
{
	EXPECT_ERR(__command_feature(test_vm, 1, id), 0);
}

static void disallow_command(__s32 id)
{
	EXPECT_ERR(__command_feature(test_vm, 0, id), 0);
}

static void allow_event(__s32 id)
{
	EXPECT_ERR(__event_feature(test_vm, 1, id), 0);
}

static void set_socket_timeouts(int fd)
{
	struct timeval tv = { .tv_sec = SOCKET_TIMEOUT_SEC };

	TEST_ASSERT(!setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)),
		    "setsockopt(SO_RCVTIMEO) failed");
	TEST_ASSERT(!setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)),
		    "setsockopt(SO_SNDTIMEO) failed");
}

/* Returns the tool's end in @tool and KVM's end in @kvm_end. */
static void new_socket_pair(int *tool, int *kvm_end)
{
	int fds[2];

	TEST_ASSERT(!socketpair(AF_UNIX, SOCK_STREAM, 0, fds),
		    "socketpair() failed");
	set_socket_timeouts(fds[0]);
	*tool = fds[0];
	*kvm_end = fds[1];
}

static void close_tool_socket(void)
{
	if (tool_fd >= 0)
		close(tool_fd);
	tool_fd = -1;
}

/*
 * Hook @vm and keep the tool's end of the socket in tool_fd.  KVM holds its
 * own reference to its end, so ours is closed right away.
 */
static void hook_introspection(struct kvm_vm *vm)
{
	int tool, kvm_end;

	new_socket_pair(&tool, &kvm_end);
	EXPECT_ERR(__hook(vm, kvm_end, 0), 0);
	close(kvm_end);

	close_tool_socket();
	tool_fd = tool;
	tool_seq = 0;
	nr_stashed_events = 0;
}

static void unhook_introspection(struct kvm_vm *vm)
{
	EXPECT_ERR(__unhook(vm), 0);
	close_tool_socket();
}

/* A VM with one vCPU and @extra_pages more pages of guest memory. */
static void __create_vm(void *guest_code, __u64 extra_pages)
{
	test_vm = __vm_create_with_one_vcpu(&test_vcpu, extra_pages,
					    guest_code);
}

static void create_vm(void *guest_code)
{
	__create_vm(guest_code, 0);
}

static void setup_vm(void *guest_code)
{
	create_vm(guest_code);
	hook_introspection(test_vm);
}

static void teardown_vm(void)
{
	unhook_introspection(test_vm);
	kvm_vm_free(test_vm);
	test_vm = NULL;
	test_vcpu = NULL;
}

/* ------------------------------------------------------------------ */
/* Introspection tool side: the transport                              */
/* ------------------------------------------------------------------ */

/*
 * Receive up to @len bytes.  Returns the number of bytes received (less
 * than @len only on EOF) or -errno.
 */
static ssize_t recv_full(int fd, void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t r = recv(fd, (char *)buf + done, len - done, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (!r)
			break;
		done += r;
	}

	return done;
}

static void receive_exact(void *buf, size_t len, const char *what)
{
	ssize_t r = recv_full(tool_fd, buf, len);

	TEST_ASSERT(r == (ssize_t)len,
		    "Receiving %s: got %zd of %zu bytes (%s)", what, r, len,
		    r < 0 ? err_str(r) : "EOF");
}

/*
 * Send a message header with @hdr_size and @len bytes of payload, in one
 * sendmsg() call.  @hdr_size may differ from @len to build malformed
 * messages.  Returns 0 or -errno.
 */
static int __send_message(__u16 id, __u16 hdr_size, __u32 seq,
			  const void *data, size_t len)
{
	struct kvmi_msg_hdr hdr = {
		.id = id,
		.size = hdr_size,
		.seq = seq,
	};
	struct iovec iov[2] = {
		{ .iov_base = &hdr, .iov_len = sizeof(hdr) },
		{ .iov_base = (void *)data, .iov_len = len },
	};
	struct msghdr msg = {
		.msg_iov = iov,
		.msg_iovlen = len ? 2 : 1,
	};
	ssize_t r;

	r = sendmsg(tool_fd, &msg, MSG_NOSIGNAL);
	if (r < 0)
		return -errno;

	return r == (ssize_t)(sizeof(hdr) + len) ? 0 : -EIO;
}

/* Send a well-formed message and return its sequence number. */
static __u32 send_message(__u16 id, const void *data, size_t len)
{
	__u32 seq = ++tool_seq;
	int r;

	TEST_ASSERT(len <= KVMI_MAX_MSG_SIZE, "Message too big: %zu", len);
	r = __send_message(id, len, seq, data, len);
	TEST_ASSERT(!r, "Sending message id %u failed: %s", id, err_str(r));

	return seq;
}

static void receive_body(struct raw_msg *m)
{
	TEST_ASSERT(m->hdr.size <= KVMI_MAX_MSG_SIZE,
		    "Message id %u from KVM with size %u", m->hdr.id,
		    m->hdr.size);
	receive_exact(m->data, m->hdr.size, "the message body");
}

static void stash_event(const struct kvmi_msg_hdr *hdr)
{
	struct raw_msg *m;

	TEST_ASSERT(nr_stashed_events < MAX_STASHED_EVENTS,
		    "Too many events received while waiting for replies");
	m = &stashed_events[nr_stashed_events++];
	m->hdr = *hdr;
	receive_body(m);
}

/* The next message that is not a reply: a stashed event or a new one. */
static void receive_event_msg(struct raw_msg *m)
{
	if (nr_stashed_events) {
		*m = stashed_events[0];
		nr_stashed_events--;
		memmove(&stashed_events[0], &stashed_events[1],
			nr_stashed_events * sizeof(stashed_events[0]));
		return;
	}

	receive_exact(&m->hdr, sizeof(m->hdr), "the event message header");
	receive_body(m);
}

static void check_sregs_padding(const struct kvm_sregs *sregs,
				const char *what)
{
	const struct kvm_segment *segs[] = {
		&sregs->cs, &sregs->ds, &sregs->es, &sregs->fs,
		&sregs->gs, &sregs->ss, &sregs->tr, &sregs->ldt,
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(segs); i++)
		TEST_ASSERT(!segs[i]->padding,
			    "%s: non-zero padding in segment %u", what, i);
	TEST_ASSERT(is_zero(sregs->gdt.padding, sizeof(sregs->gdt.padding)) &&
		    is_zero(sregs->idt.padding, sizeof(sregs->idt.padding)),
		    "%s: non-zero padding in gdt/idt", what);
}

static void check_registers_padding(const void *rpl)
{
	const struct kvmi_vcpu_get_registers_reply *regs = rpl;
	__u32 i;

	TEST_ASSERT(!regs->padding, "GET_REGISTERS reply: non-zero padding");
	TEST_ASSERT(!regs->msrs.pad, "GET_REGISTERS reply: non-zero msrs.pad");
	for (i = 0; i < regs->msrs.nmsrs && i < MAX_GET_REGISTERS_MSRS; i++)
		TEST_ASSERT(!regs->msrs.entries[i].reserved,
			    "GET_REGISTERS reply: non-zero entries[%u].reserved",
			    i);
	check_sregs_padding(&regs->sregs, "GET_REGISTERS reply");
}

/* Check the padding of the command-specific reply data. */
static void check_reply_padding(__u16 id, const void *rpl)
{
	const struct kvmi_get_version_reply *version = rpl;
	const struct kvmi_vm_get_info_reply *info = rpl;
	const struct kvmi_vcpu_get_mtrr_type_reply *mtrr = rpl;

	switch (id) {
	case KVMI_GET_VERSION:
		TEST_ASSERT(is_zero(version->features.padding,
				    sizeof(version->features.padding)),
			    "GET_VERSION reply: non-zero features.padding");
		break;
	case KVMI_VM_GET_INFO:
		TEST_ASSERT(is_zero(info->padding, sizeof(info->padding)),
			    "VM_GET_INFO reply: non-zero padding");
		break;
	case KVMI_VCPU_GET_REGISTERS:
		check_registers_padding(rpl);
		break;
	case KVMI_VCPU_GET_MTRR_TYPE:
		TEST_ASSERT(is_zero(mtrr->padding, sizeof(mtrr->padding)),
			    "GET_MTRR_TYPE reply: non-zero padding");
		break;
	default:
		break;
	}
}

/*
 * Receive the reply to the message (@id, @seq).  On success, @rpl_size
 * bytes of reply data are stored in @rpl.  Returns the err field.
 */
static int receive_reply(__u16 id, __u32 seq, void *rpl, size_t rpl_size)
{
	struct kvmi_error_code ec;
	struct kvmi_msg_hdr hdr;

	/* A vCPU event may come first; keep it for receive_vcpu_event(). */
	for (;;) {
		receive_exact(&hdr, sizeof(hdr), "the reply header");
		if (hdr.id != KVMI_VCPU_EVENT ||
		    hdr.size < VCPU_EVENT_COMMON_SIZE)
			break;
		stash_event(&hdr);
	}

	TEST_ASSERT(hdr.id == id, "Reply id %u, expected %u", hdr.id, id);
	TEST_ASSERT(hdr.seq == seq, "Reply seq %u, expected %u (id %u)",
		    hdr.seq, seq, id);
	TEST_ASSERT(hdr.size >= sizeof(ec),
		    "Reply size %u is smaller than kvmi_error_code (id %u)",
		    hdr.size, id);

	receive_exact(&ec, sizeof(ec), "the reply error code");
	TEST_ASSERT(!ec.padding, "Non-zero kvmi_error_code.padding %#x (id %u)",
		    ec.padding, id);

	if (ec.err) {
		TEST_ASSERT(ec.err < 0, "Positive err %d (id %u)", ec.err, id);
		TEST_ASSERT(hdr.size == sizeof(ec),
			    "Error reply size %u, expected %zu (id %u, err %d)",
			    hdr.size, sizeof(ec), id, ec.err);
		return ec.err;
	}

	TEST_ASSERT(hdr.size == sizeof(ec) + rpl_size,
		    "Reply size %u, expected %zu (id %u)",
		    hdr.size, sizeof(ec) + rpl_size, id);
	if (rpl_size) {
		receive_exact(rpl, rpl_size, "the reply data");
		check_reply_padding(id, rpl);
	}

	return 0;
}

/*
 * Send command @id with @req_size bytes of payload and wait for its reply.
 * Returns the err field of the reply (0 or -KVM_E*).
 */
static int do_command(__u16 id, const void *req, size_t req_size,
		      void *rpl, size_t rpl_size)
{
	__u32 seq = send_message(id, req, req_size);

	return receive_reply(id, seq, rpl, rpl_size);
}

static void __expect_command(int line, int expected, __u16 id,
			     const void *req, size_t req_size)
{
	int err = do_command(id, req, req_size, NULL, 0);

	TEST_ASSERT(err == expected,
		    "line %d: command %u (payload %zu bytes) returned %d, expected %d",
		    line, id, req_size, err, expected);
}

/* For the commands without reply data. */
#define expect_command(expected, id, req, req_size) \
	__expect_command(__LINE__, expected, id, req, req_size)

/* The tool must see EOF: no reply, no event, nothing but EOF. */
static void expect_eof(void)
{
	char c;
	ssize_t r;

	r = recv(tool_fd, &c, 1, 0);
	TEST_ASSERT(r == 0, "Expected EOF on the tool socket, recv() = %zd (%s)",
		    r, r < 0 ? strerror(errno) : "data received");
}

/*
 * Like expect_eof(), but tolerate replies that were still queued and
 * ECONNRESET (AF_UNIX reports it when KVM released its end while it still
 * held unread requests).  Used when commands were in flight.
 */
static void expect_closed(void)
{
	char buf[256];
	int i;

	for (i = 0; i < 100000; i++) {
		ssize_t r = recv(tool_fd, buf, sizeof(buf), 0);

		if (!r)
			return;
		if (r < 0 && errno != ECONNRESET && errno != EINTR)
			TEST_FAIL("Expected EOF on the tool socket: %s",
				  strerror(errno));
	}
	TEST_FAIL("Expected EOF on the tool socket, data keeps coming");
}

/* The tool must receive nothing within @ms milliseconds. */
static void expect_nothing(int ms)
{
	struct pollfd pfd = { .fd = tool_fd, .events = POLLIN };
	int r;

	r = poll(&pfd, 1, ms);
	TEST_ASSERT(r == 0, "Unexpected data/EOF on the tool socket (poll = %d)",
		    r);
}

/* Receive a VM event, check its headers and return its seq. */
static __u32 receive_vm_event(__u16 event)
{
	struct kvmi_event_hdr ev;
	struct kvmi_msg_hdr hdr;

	receive_exact(&hdr, sizeof(hdr), "the event message header");
	TEST_ASSERT(hdr.id == KVMI_VM_EVENT, "Event message id %u, expected %u",
		    hdr.id, KVMI_VM_EVENT);
	TEST_ASSERT(hdr.size == sizeof(ev), "Event message size %u, expected %zu",
		    hdr.size, sizeof(ev));
	TEST_ASSERT(hdr.seq != 0, "Event message seq is 0");

	receive_exact(&ev, sizeof(ev), "the event header");
	TEST_ASSERT(ev.event == event, "Event id %u, expected %u",
		    ev.event, event);
	TEST_ASSERT(is_zero(ev.padding, sizeof(ev.padding)),
		    "Non-zero kvmi_event_hdr.padding");

	return hdr.seq;
}

/* ------------------------------------------------------------------ */
/* Introspection tool side: the commands                               */
/* ------------------------------------------------------------------ */

static void get_version(struct kvmi_get_version_reply *rpl)
{
	int err = do_command(KVMI_GET_VERSION, NULL, 0, rpl, sizeof(*rpl));

	TEST_ASSERT(!err, "GET_VERSION failed: %d", err);
}

/* A cheap way to check that the connection is still usable. */
static void check_connection_alive(void)
{
	struct kvmi_get_version_reply rpl;

	get_version(&rpl);
	TEST_ASSERT(rpl.version == KVMI_VERSION, "Bad version %u", rpl.version);
}

/*
 * After the connection ended, the VM stays hooked until UNHOOK; then it
 * can be hooked again.
 */
static void expect_hooked_until_unhook(void)
{
	int tool, kvm_end;

	new_socket_pair(&tool, &kvm_end);
	EXPECT_ERR(__hook(test_vm, kvm_end, 0), -EEXIST);
	close(tool);
	close(kvm_end);

	EXPECT_ERR(__unhook(test_vm), 0);
	hook_introspection(test_vm);
	check_connection_alive();
}

static int vm_check_command(__u16 id, __u16 padding1, __u32 padding2)
{
	struct kvmi_vm_check_command req = {
		.id = id,
		.padding1 = padding1,
		.padding2 = padding2,
	};

	return do_command(KVMI_VM_CHECK_COMMAND, &req, sizeof(req), NULL, 0);
}

static int vm_check_event(__u16 id, __u16 padding1, __u32 padding2)
{
	struct kvmi_vm_check_event req = {
		.id = id,
		.padding1 = padding1,
		.padding2 = padding2,
	};

	return do_command(KVMI_VM_CHECK_EVENT, &req, sizeof(req), NULL, 0);
}

static int vm_get_info(struct kvmi_vm_get_info_reply *rpl)
{
	return do_command(KVMI_VM_GET_INFO, NULL, 0, rpl, sizeof(*rpl));
}

static int vm_control_events(__u16 event_id, __u8 enable, __u8 padding1,
			     __u32 padding2)
{
	struct kvmi_vm_control_events req = {
		.event_id = event_id,
		.enable = enable,
		.padding1 = padding1,
		.padding2 = padding2,
	};

	return do_command(KVMI_VM_CONTROL_EVENTS, &req, sizeof(req), NULL, 0);
}

/* CONTROL_CLEANUP with @padding in the last padding byte. */
static int __vm_control_cleanup(__u8 enable, __u8 padding)
{
	struct kvmi_vm_control_cleanup req = { .enable = enable };

	req.padding[sizeof(req.padding) - 1] = padding;
	return do_command(KVMI_VM_CONTROL_CLEANUP, &req, sizeof(req), NULL, 0);
}

static int vm_control_cleanup(__u8 enable)
{
	return __vm_control_cleanup(enable, 0);
}

static int __vm_read_physical(__u64 gpa, __u16 size, __u16 padding1,
			      __u32 padding2, void *buf)
{
	struct kvmi_vm_read_physical req = {
		.gpa = gpa,
		.size = size,
		.padding1 = padding1,
		.padding2 = padding2,
	};

	return do_command(KVMI_VM_READ_PHYSICAL, &req, sizeof(req), buf, size);
}

static int vm_read_physical(__u64 gpa, __u16 size, void *buf)
{
	return __vm_read_physical(gpa, size, 0, 0, buf);
}

/*
 * Build a VM_WRITE_PHYSICAL request with @len bytes of data (normally
 * @len == @size) and return its total length in @req_len.
 */
static struct kvmi_vm_write_physical *
build_write_physical(__u64 gpa, __u16 size, __u16 padding1, __u32 padding2,
		     const void *data, size_t len, size_t *req_len)
{
	struct kvmi_vm_write_physical *req;

	*req_len = sizeof(*req) + len;
	req = calloc(1, *req_len);
	TEST_ASSERT(req, "Out of memory");

	req->gpa = gpa;
	req->size = size;
	req->padding1 = padding1;
	req->padding2 = padding2;
	if (len)
		memcpy(req->data, data, len);

	return req;
}

static int __vm_write_physical(__u64 gpa, __u16 size, __u16 padding1,
			       __u32 padding2, const void *data, size_t len)
{
	struct kvmi_vm_write_physical *req;
	size_t req_len;
	int err;

	req = build_write_physical(gpa, size, padding1, padding2, data, len,
				   &req_len);
	err = do_command(KVMI_VM_WRITE_PHYSICAL, req, req_len, NULL, 0);
	free(req);

	return err;
}

static int vm_write_physical(__u64 gpa, __u16 size, const void *data)
{
	return __vm_write_physical(gpa, size, 0, 0, data, size);
}

/* ------------------------------------------------------------------ */
/* vCPU runner threads                                                 */
/* ------------------------------------------------------------------ */

#define RUNNER_MAX_SYNCS	64

/*
 * A thread that keeps a vCPU in KVM_RUN (so that it serves the vCPU
 * commands and sends events), records the GUEST_SYNC arguments and stops
 * on GUEST_DONE, on an exit that is not a ucall, or after a GUEST_SYNC
 * once @stop is set.  A guest assertion fails the whole case.
 */
struct vcpu_runner {
	struct kvm_vcpu *vcpu;
	pthread_t thread;
	bool running;
	bool stop;
	bool finished;
	bool done;
	int ret;
	__u32 exit_reason;
	unsigned int nr_syncs;
	unsigned int consumed;
	__u64 args[RUNNER_MAX_SYNCS];
};

static struct vcpu_runner runners[MAX_RUNNERS];

static void *runner_thread(void *arg)
{
	struct vcpu_runner *r = arg;
	struct ucall uc;
	unsigned int n;

	for (;;) {
		r->ret = __vcpu_run(r->vcpu) ? -errno : 0;
		if (r->ret == -EINTR)
			continue;
		r->exit_reason = r->vcpu->run->exit_reason;
		if (r->ret || r->exit_reason != KVM_EXIT_IO)
			break;

		switch (get_ucall(r->vcpu, &uc)) {
		case UCALL_SYNC:
			n = r->nr_syncs;
			TEST_ASSERT(n - READ_ONCE(r->consumed) < RUNNER_MAX_SYNCS,
				    "Too many unconsumed GUEST_SYNCs");
			r->args[n % RUNNER_MAX_SYNCS] = uc.args[1];
			__atomic_store_n(&r->nr_syncs, n + 1, __ATOMIC_RELEASE);
			if (READ_ONCE(r->stop))
				goto out;
			continue;
		case UCALL_DONE:
			r->done = true;
			goto out;
		case UCALL_ABORT:
			REPORT_GUEST_ASSERT(uc);
			break;
		default:
			TEST_FAIL("vCPU %u: unexpected exit (reason %u)",
				  r->vcpu->id, r->exit_reason);
		}
	}
out:
	__atomic_store_n(&r->finished, true, __ATOMIC_RELEASE);
	return NULL;
}

static void start_runner(unsigned int idx, struct kvm_vcpu *vcpu)
{
	struct vcpu_runner *r = &runners[idx];

	TEST_ASSERT(!r->running, "Runner %u already started", idx);
	r->vcpu = vcpu;
	r->stop = false;
	r->finished = false;
	r->running = true;
	TEST_ASSERT(!pthread_create(&r->thread, NULL, runner_thread, r),
		    "pthread_create() failed");
}

/* Wait for the thread; it must stop on its own, soon. */
static void join_runner(unsigned int idx)
{
	struct vcpu_runner *r = &runners[idx];
	long long deadline = now_ms() + SOCKET_TIMEOUT_SEC * 1000LL;

	TEST_ASSERT(r->running, "Runner %u not started", idx);
	while (!__atomic_load_n(&r->finished, __ATOMIC_ACQUIRE)) {
		TEST_ASSERT(now_ms() < deadline,
			    "vCPU %u did not leave KVM_RUN in %d seconds", idx,
			    SOCKET_TIMEOUT_SEC);
		usleep(1000);
	}
	pthread_join(r->thread, NULL);
	r->running = false;
}

/* The result of the next guest operation (its GUEST_SYNC argument). */
static __u64 runner_result(unsigned int idx)
{
	struct vcpu_runner *r = &runners[idx];
	long long deadline = now_ms() + SOCKET_TIMEOUT_SEC * 1000LL;
	unsigned int n;

	while (__atomic_load_n(&r->nr_syncs, __ATOMIC_ACQUIRE) <= r->consumed) {
		bool finished = __atomic_load_n(&r->finished, __ATOMIC_ACQUIRE);

		if (finished &&
		    __atomic_load_n(&r->nr_syncs, __ATOMIC_ACQUIRE) <= r->consumed)
			TEST_FAIL("vCPU %u stopped (ret %d, exit reason %u) before GUEST_SYNC",
				  r->vcpu->id, r->ret, r->exit_reason);
		TEST_ASSERT(now_ms() < deadline,
			    "vCPU %u: no GUEST_SYNC in %d seconds", r->vcpu->id,
			    SOCKET_TIMEOUT_SEC);
		usleep(1000);
	}

	n = r->consumed;
	WRITE_ONCE(r->consumed, n + 1);
	return r->args[n % RUNNER_MAX_SYNCS];
}

/* Set a guest global while the guest runs, in one store. */
static void set_guest_u64(__u64 *var, __u64 val)
{
	*var = val;
	WRITE_ONCE(*(__u64 *)addr_gva2hva(test_vm, (vm_vaddr_t)var), val);
}

/* Read a guest global while the guest runs. */
static __u64 get_guest_u64(__u64 *var)
{
	return READ_ONCE(*(__u64 *)addr_gva2hva(test_vm, (vm_vaddr_t)var));
}

/* Let the guest(s) run @op with the given arguments. */
static void guest_start(__u64 op, __u64 arg1, __u64 arg2)
{
	guest_op = op;
	guest_arg1 = arg1;
	guest_arg2 = arg2;
	sync_global_to_guest(test_vm, guest_op);
	sync_global_to_guest(test_vm, guest_arg1);
	sync_global_to_guest(test_vm, guest_arg2);

	/* Released last, in one store: the guest reads the step first. */
	set_guest_u64(&guest_step, guest_step + 1);
}

/* Run @op on vCPU 0 and return its result. */
static __u64 guest_run(__u64 op, __u64 arg1, __u64 arg2)
{
	guest_start(op, arg1, arg2);
	return runner_result(0);
}

static void guest_start_hypercall(void)
{
	guest_start(GOP_HYPERCALL, KVM_HC_XEN_HVM_OP_GUEST_REQUEST_VM_EVENT, 0);
}

#define EXPECT_RESULT(result, expected)					\
do {									\
	__u64 __r = (result);						\
	__u64 __e = (expected);						\
									\
	TEST_ASSERT(__r == __e, "%s = %#llx, expected %#llx", #result,	\
		    (unsigned long long)__r, (unsigned long long)__e);	\
} while (0)

/*
 * Stop the runners 0 to @n - 1 (all those started) after a GUEST_SYNC:
 * their vCPUs leave KVM_RUN.
 */
static void stop_runners(unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		WRITE_ONCE(runners[i].stop, true);
	guest_start(GOP_NOP, 0, 0);
	for (i = 0; i < n; i++) {
		EXPECT_RESULT(runner_result(i), 0);
		join_runner(i);
		TEST_ASSERT(!runners[i].done, "vCPU %u: the guest finished", i);
	}
}

/* Set MSR @msr of vCPU 0 from userspace (it leaves KVM_RUN for this). */
static void set_vcpu_msr(__u32 msr, __u64 val)
{
	stop_runners(1);
	vcpu_set_msr(test_vcpu, msr, val);
	start_runner(0, test_vcpu);
}

/* The "exits" statistic of @vcpu (kvm_util of 6.12 reads VM stats only). */
static __u64 vcpu_exits(struct kvm_vcpu *vcpu)
{
	struct kvm_stats_header header;
	struct kvm_stats_desc *descs, *d;
	bool found = false;
	uint64_t value = 0;
	int fd, i;

	fd = vcpu_get_stats_fd(vcpu);
	read_stats_header(fd, &header);
	descs = read_stats_descriptors(fd, &header);
	for (i = 0; i < header.num_desc && !found; i++) {
		d = get_stats_descriptor(descs, i, &header);
		found = !strcmp(d->name, "exits");
		if (found)
			read_stat_data(fd, &header, d, &value, 1);
	}
	free(descs);
	close(fd);

	TEST_ASSERT(found, "No \"exits\" statistic");
	return value;
}

/*
 * Count in @exits[] the VM exits of vCPUs 0 to @n - 1 (all those started)
 * while each runs @op (GOP_LOOP or GOP_TOUCH, which return arg1) with
 * arg1 = @loops: the vCPUs enter KVM_RUN for this only, so the count does
 * not depend on timing.
 */
static void count_exits(unsigned int n, __u64 op, __u64 loops, __u64 *exits)
{
	unsigned int i;

	stop_runners(n);
	for (i = 0; i < n; i++) {
		exits[i] = vcpu_exits(runners[i].vcpu);
		start_runner(i, runners[i].vcpu);
		/* No GUEST_SYNC can come before guest_start(). */
		WRITE_ONCE(runners[i].stop, true);
	}

	guest_start(op, loops, 0);
	for (i = 0; i < n; i++) {
		EXPECT_RESULT(runner_result(i), loops);
		join_runner(i);
		exits[i] = vcpu_exits(runners[i].vcpu) - exits[i];
		pr_info("# vCPU %u: %llu exits for %llu loops\n", i,
			(unsigned long long)exits[i], (unsigned long long)loops);
		start_runner(i, runners[i].vcpu);
	}
}

/* The guests finish; every started runner must see GUEST_DONE. */
static void finish_guests(void)
{
	unsigned int i;

	guest_start(GOP_DONE, 0, 0);
	for (i = 0; i < MAX_RUNNERS; i++) {
		if (!runners[i].running)
			continue;
		join_runner(i);
		TEST_ASSERT(runners[i].done,
			    "vCPU %u: no GUEST_DONE (ret %d, exit reason %u)",
			    i, runners[i].ret, runners[i].exit_reason);
	}
}

/* Must follow the creation of every VM running guest_vcpu_code. */
static void prepare_vcpu_guest(void)
{
	guest_vmmcall = host_cpu_is_amd;
	sync_global_to_guest(test_vm, guest_vmmcall);
	guest_step = 0;
	memset(runners, 0, sizeof(runners));
}

/* A hooked 1-vCPU VM running guest_vcpu_code in runner 0. */
static void setup_vcpu_vm(void)
{
	setup_vm(guest_vcpu_code);
	prepare_vcpu_guest();
	start_runner(0, test_vcpu);
}

static void finish_vcpu_vm(void)
{
	finish_guests();
	teardown_vm();
}

/* ------------------------------------------------------------------ */
/* Introspection tool side: vCPU commands and events                   */
/* ------------------------------------------------------------------ */

static int __do_vcpu_command(struct kvmi_vcpu_hdr vh, __u16 id,
			     const void *req, size_t req_size,
			     void *rpl, size_t rpl_size)
{
	static __u8 buf[KVMI_MAX_MSG_SIZE];

	TEST_ASSERT(sizeof(vh) + req_size <= sizeof(buf),
		    "vCPU command too big: %zu", req_size);
	memcpy(buf, &vh, sizeof(vh));
	if (req_size)
		memcpy(buf + sizeof(vh), req, req_size);

	return do_command(id, buf, sizeof(vh) + req_size, rpl, rpl_size);
}

/* Send vCPU command @id (prepending a kvmi_vcpu_hdr); returns the err. */
static int do_vcpu_command(__u16 vcpu_idx, __u16 id, const void *req,
			   size_t req_size, void *rpl, size_t rpl_size)
{
	struct kvmi_vcpu_hdr vh = { .vcpu = vcpu_idx };

	return __do_vcpu_command(vh, id, req, req_size, rpl, rpl_size);
}

static int __vcpu_control_events(__u16 vcpu, __u16 event_id, __u8 enable,
				 __u8 padding1, __u32 padding2)
{
	struct kvmi_vcpu_control_events req = {
		.event_id = event_id,
		.enable = enable,
		.padding1 = padding1,
		.padding2 = padding2,
	};

	return do_vcpu_command(vcpu, KVMI_VCPU_CONTROL_EVENTS, &req,
			       sizeof(req), NULL, 0);
}

static int vcpu_control_events(__u16 vcpu, __u16 event_id, __u8 enable)
{
	return __vcpu_control_events(vcpu, event_id, enable, 0, 0);
}

/* Allow and enable vCPU event @event_id on @vcpu (which must run). */
static void enable_vcpu_event(__u16 vcpu, __u16 event_id)
{
	allow_event(event_id);
	allow_command(KVMI_VCPU_CONTROL_EVENTS);
	EXPECT_ERR(vcpu_control_events(vcpu, event_id, 1), 0);
}

static int __vm_pause_vcpu(__u16 vcpu, __u8 wait, __u8 padding1,
			   __u32 padding2)
{
	struct kvmi_vm_pause_vcpu req = {
		.vcpu = vcpu,
		.wait = wait,
		.padding1 = padding1,
		.padding2 = padding2,
	};

	return do_command(KVMI_VM_PAUSE_VCPU, &req, sizeof(req), NULL, 0);
}

static int vm_pause_vcpu(__u16 vcpu, __u8 wait)
{
	return __vm_pause_vcpu(vcpu, wait, 0, 0);
}

static int vcpu_get_info(__u16 vcpu, struct kvmi_vcpu_get_info_reply *rpl)
{
	return do_vcpu_command(vcpu, KVMI_VCPU_GET_INFO, NULL, 0, rpl,
			       sizeof(*rpl));
}

static int vcpu_get_cpuid(__u16 vcpu, __u32 function, __u32 index,
			  struct kvmi_vcpu_get_cpuid_reply *rpl)
{
	struct kvmi_vcpu_get_cpuid req = {
		.function = function,
		.index = index,
	};

	return do_vcpu_command(vcpu, KVMI_VCPU_GET_CPUID, &req, sizeof(req),
			       rpl, sizeof(*rpl));
}

/* A GET_REGISTERS reply with room for MAX_GET_REGISTERS_MSRS MSRs. */
struct registers_reply {
	struct kvmi_vcpu_get_registers_reply r;
	struct kvm_msr_entry entries[MAX_GET_REGISTERS_MSRS];
};

/*
 * GET_REGISTERS with @nmsrs announced but only @sent indexes in the
 * message.  The reply is expected to hold @nmsrs MSRs.
 */
static int __vcpu_get_registers(__u16 vcpu, __u16 nmsrs, __u16 padding1,
				__u32 padding2, const __u32 *msrs,
				size_t sent, struct registers_reply *rpl)
{
	struct {
		struct kvmi_vcpu_get_registers r;
		__u32 idx[MAX_GET_REGISTERS_MSRS + 1];
	} req = {
		.r.nmsrs = nmsrs,
		.r.padding1 = padding1,
		.r.padding2 = padding2,
	};
	size_t n = nmsrs > MAX_GET_REGISTERS_MSRS ? 0 : nmsrs;

	TEST_ASSERT(sent <= ARRAY_SIZE(req.idx), "Too many MSRs: %zu", sent);
	memcpy(req.idx, msrs, sent * sizeof(*msrs));

	return do_vcpu_command(vcpu, KVMI_VCPU_GET_REGISTERS, &req,
			       sizeof(req.r) + sent * sizeof(*msrs), rpl,
			       sizeof(rpl->r) + n * sizeof(rpl->entries[0]));
}

static int vcpu_get_registers(__u16 vcpu, const __u32 *msrs, __u16 nmsrs,
			      struct registers_reply *rpl)
{
	return __vcpu_get_registers(vcpu, nmsrs, 0, 0, msrs, nmsrs, rpl);
}

static int vcpu_set_registers(__u16 vcpu, const struct kvm_regs *regs,
			      size_t size)
{
	return do_vcpu_command(vcpu, KVMI_VCPU_SET_REGISTERS, regs, size,
			       NULL, 0);
}

static int __vcpu_control_cr(__u16 vcpu, __u8 cr, __u8 enable,
			     __u16 padding1, __u32 padding2)
{
	struct kvmi_vcpu_control_cr req = {
		.cr = cr,
		.enable = enable,
		.padding1 = padding1,
		.padding2 = padding2,
	};

	return do_vcpu_command(vcpu, KVMI_VCPU_CONTROL_CR, &req, sizeof(req),
			       NULL, 0);
}

static int vcpu_control_cr(__u16 vcpu, __u8 cr, __u8 enable)
{
	return __vcpu_control_cr(vcpu, cr, enable, 0, 0);
}

static int __vcpu_control_msr(__u16 vcpu, __u32 msr, __u8 enable,
			      __u8 padding1, __u16 padding2)
{
	struct kvmi_vcpu_control_msr req = {
		.enable = enable,
		.padding1 = padding1,
		.padding2 = padding2,
		.msr = msr,
	};

	return do_vcpu_command(vcpu, KVMI_VCPU_CONTROL_MSR, &req, sizeof(req),
			       NULL, 0);
}

static int vcpu_control_msr(__u16 vcpu, __u32 msr, __u8 enable)
{
	return __vcpu_control_msr(vcpu, msr, enable, 0, 0);
}

static int __vcpu_inject_exception(__u8 nr, __u8 padding1, __u16 padding2,
				   __u32 error_code, __u64 address)
{
	struct kvmi_vcpu_inject_exception req = {
		.nr = nr,
		.padding1 = padding1,
		.padding2 = padding2,
		.error_code = error_code,
		.address = address,
	};

	return do_vcpu_command(0, KVMI_VCPU_INJECT_EXCEPTION, &req,
			       sizeof(req), NULL, 0);
}

static int vcpu_inject_exception(__u8 nr, __u32 error_code, __u64 address)
{
	return __vcpu_inject_exception(nr, 0, 0, error_code, address);
}

/* GET_XCR with @padding in the last padding byte. */
static int vcpu_get_xcr(__u8 xcr, __u8 padding, __u64 *value)
{
	struct kvmi_vcpu_get_xcr req = { .xcr = xcr };
	struct kvmi_vcpu_get_xcr_reply rpl = {};
	int err;

	req.padding[sizeof(req.padding) - 1] = padding;
	err = do_vcpu_command(0, KVMI_VCPU_GET_XCR, &req, sizeof(req), &rpl,
			      sizeof(rpl));
	*value = rpl.value;

	return err;
}

static int vcpu_get_xsave(struct kvmi_vcpu_get_xsave_reply *rpl)
{
	return do_vcpu_command(0, KVMI_VCPU_GET_XSAVE, NULL, 0, rpl,
			       sizeof(*rpl));
}

/* SET_XSAVE with the first @size bytes of @region. */
static int vcpu_set_xsave(const void *region, size_t size)
{
	return do_vcpu_command(0, KVMI_VCPU_SET_XSAVE, region, size, NULL, 0);
}

static __u8 vcpu_get_mtrr_type(__u64 gpa)
{
	struct kvmi_vcpu_get_mtrr_type req = { .gpa = gpa };
	struct kvmi_vcpu_get_mtrr_type_reply rpl;

	EXPECT_ERR(do_vcpu_command(0, KVMI_VCPU_GET_MTRR_TYPE, &req,
				   sizeof(req), &rpl, sizeof(rpl)), 0);
	return rpl.type;
}

static __u64 vcpu_translate_gva(__u64 gva)
{
	struct kvmi_vcpu_translate_gva req = { .gva = gva };
	struct kvmi_vcpu_translate_gva_reply rpl;

	EXPECT_ERR(do_vcpu_command(0, KVMI_VCPU_TRANSLATE_GVA, &req,
				   sizeof(req), &rpl, sizeof(rpl)), 0);
	return rpl.gpa;
}

/* CONTROL_SINGLESTEP with @padding in the last padding byte. */
static int __vcpu_control_singlestep(__u16 vcpu, __u8 enable, __u8 padding)
{
	struct kvmi_vcpu_control_singlestep req = { .enable = enable };

	req.padding[sizeof(req.padding) - 1] = padding;
	return do_vcpu_command(vcpu, KVMI_VCPU_CONTROL_SINGLESTEP, &req,
			       sizeof(req), NULL, 0);
}

static int vcpu_control_singlestep(__u16 vcpu, __u8 enable)
{
	return __vcpu_control_singlestep(vcpu, enable, 0);
}

/* A vCPU event, as received, with the payload of its kind. */
struct vcpu_event {
	struct kvmi_msg_hdr hdr;
	__u16 event;
	struct kvmi_vcpu_event common;
	union {
		__u8 payload[24];	/* the largest (CR, MSR, XSETBV, PF) */
		struct kvmi_vcpu_event_breakpoint bp;
		struct kvmi_vcpu_event_cr cr;
		struct kvmi_vcpu_event_trap trap;
		struct kvmi_vcpu_event_xsetbv xsetbv;
		struct kvmi_vcpu_event_descriptor desc;
		struct kvmi_vcpu_event_msr msr;
		struct kvmi_vcpu_event_singlestep ss;
		struct kvmi_vcpu_event_pf pf;
	};
};

/* The size of the payload of vCPU event @id. */
static size_t event_payload_size(__u16 id)
{
	switch (id) {
	case KVMI_VCPU_EVENT_BREAKPOINT:
		return sizeof(struct kvmi_vcpu_event_breakpoint);
	case KVMI_VCPU_EVENT_CR:
		return sizeof(struct kvmi_vcpu_event_cr);
	case KVMI_VCPU_EVENT_TRAP:
		return sizeof(struct kvmi_vcpu_event_trap);
	case KVMI_VCPU_EVENT_XSETBV:
		return sizeof(struct kvmi_vcpu_event_xsetbv);
	case KVMI_VCPU_EVENT_DESCRIPTOR:
		return sizeof(struct kvmi_vcpu_event_descriptor);
	case KVMI_VCPU_EVENT_MSR:
		return sizeof(struct kvmi_vcpu_event_msr);
	case KVMI_VCPU_EVENT_SINGLESTEP:
		return sizeof(struct kvmi_vcpu_event_singlestep);
	case KVMI_VCPU_EVENT_PF:
		return sizeof(struct kvmi_vcpu_event_pf);
	default:
		return 0;
	}
}

static bool payload_padding_is_zero(const struct vcpu_event *ev)
{
	switch (ev->event) {
	case KVMI_VCPU_EVENT_BREAKPOINT:
		return is_zero(ev->bp.padding, sizeof(ev->bp.padding));
	case KVMI_VCPU_EVENT_CR:
		return is_zero(ev->cr.padding, sizeof(ev->cr.padding));
	case KVMI_VCPU_EVENT_TRAP:
		return !ev->trap.padding1 && !ev->trap.padding2;
	case KVMI_VCPU_EVENT_XSETBV:
		return is_zero(ev->xsetbv.padding, sizeof(ev->xsetbv.padding));
	case KVMI_VCPU_EVENT_DESCRIPTOR:
		return is_zero(ev->desc.padding, sizeof(ev->desc.padding));
	case KVMI_VCPU_EVENT_MSR:
		return !ev->msr.padding;
	case KVMI_VCPU_EVENT_SINGLESTEP:
		return is_zero(ev->ss.padding, sizeof(ev->ss.padding));
	case KVMI_VCPU_EVENT_PF:
		return !ev->pf.padding1 && !ev->pf.padding2 &&
		       !ev->pf.padding3;
	default:
		return true;
	}
}

/*
 * Receive the next vCPU event (the next message, or one received while
 * waiting for a reply), with the payload of its kind.  Checks the sizes
 * and every padding.
 */
static void receive_vcpu_event(struct vcpu_event *ev)
{
	static struct raw_msg m;
	const struct kvmi_event_hdr *eh = (const void *)m.data;
	const struct kvmi_vcpu_event *c = (const void *)(eh + 1);
	size_t payload_size;

	receive_event_msg(&m);
	TEST_ASSERT(m.hdr.id == KVMI_VCPU_EVENT,
		    "Message id %u (size %u), expected a vCPU event",
		    m.hdr.id, m.hdr.size);
	payload_size = event_payload_size(eh->event);
	TEST_ASSERT(payload_size <= sizeof(ev->payload), "Payload too big");
	TEST_ASSERT(m.hdr.size == VCPU_EVENT_COMMON_SIZE + payload_size,
		    "Event %u: size %u, expected %zu", eh->event, m.hdr.size,
		    VCPU_EVENT_COMMON_SIZE + payload_size);
	TEST_ASSERT(m.hdr.seq, "Event %u: seq 0", eh->event);
	TEST_ASSERT(is_zero(eh->padding, sizeof(eh->padding)),
		    "Event %u: non-zero kvmi_event_hdr.padding", eh->event);
	TEST_ASSERT(c->size == sizeof(*c), "Event %u: common size %u", eh->event,
		    c->size);
	TEST_ASSERT(c->size == 544, "kvmi_vcpu_event size %u", c->size);
	TEST_ASSERT(!c->padding, "Event %u: non-zero kvmi_vcpu_event.padding",
		    eh->event);
	TEST_ASSERT(is_zero(c->arch.padding, sizeof(c->arch.padding)),
		    "Event %u: non-zero arch.padding", eh->event);
	TEST_ASSERT(c->arch.mode == 2 || c->arch.mode == 4 ||
		    c->arch.mode == 8, "Event %u: mode %u", eh->event,
		    c->arch.mode);
	check_sregs_padding(&c->arch.sregs, "vCPU event");

	memset(ev, 0, sizeof(*ev));
	ev->hdr = m.hdr;
	ev->event = eh->event;
	ev->common = *c;
	memcpy(ev->payload, c + 1, payload_size);
	TEST_ASSERT(payload_padding_is_zero(ev),
		    "Event %u: non-zero padding in the payload", ev->event);
}

/* Receive the vCPU event @event_id, which must be the next event. */
static void expect_vcpu_event(__u16 event_id, struct vcpu_event *ev)
{
	receive_vcpu_event(ev);
	TEST_ASSERT(ev->event == event_id, "vCPU event %u, expected %u",
		    ev->event, event_id);
}

/* The size of the data that follows the reply to vCPU event @id. */
static size_t event_reply_data_size(__u16 id)
{
	if (id == KVMI_VCPU_EVENT_CR)
		return sizeof(struct kvmi_vcpu_event_cr_reply);
	if (id == KVMI_VCPU_EVENT_MSR)
		return sizeof(struct kvmi_vcpu_event_msr_reply);
	return 0;
}

/*
 * Send @size bytes of a reply: the vCPU hdr, @rpl, @data_size bytes of
 * @data, then zero bytes.
 */
static void __reply_to_event(__u32 seq, struct kvmi_vcpu_hdr vh,
			     const struct kvmi_vcpu_event_reply *rpl,
			     const void *data, size_t data_size, size_t size)
{
	__u8 buf[64] = {};
	int r;

	TEST_ASSERT(size <= sizeof(buf) &&
		    sizeof(vh) + sizeof(*rpl) + data_size <= sizeof(buf),
		    "Reply too big");
	memcpy(buf, &vh, sizeof(vh));
	memcpy(buf + sizeof(vh), rpl, sizeof(*rpl));
	if (data_size)
		memcpy(buf + sizeof(vh) + sizeof(*rpl), data, data_size);

	r = __send_message(KVMI_VCPU_EVENT, size, seq, buf, size);
	TEST_ASSERT(!r, "Sending the event reply failed: %s", err_str(r));
}

/* Answer @ev with @action; the reply to a CR or MSR event has @new_val. */
static void reply_with_value(const struct vcpu_event *ev, __u8 action,
			     __u64 new_val)
{
	struct kvmi_vcpu_event_reply rpl = {
		.action = action,
		.event = ev->event,
	};
	struct kvmi_vcpu_hdr vh = { .vcpu = ev->common.vcpu };
	size_t data_size = event_reply_data_size(ev->event);

	__reply_to_event(ev->hdr.seq, vh, &rpl, &new_val, data_size,
			 sizeof(vh) + sizeof(rpl) + data_size);
}

/* Answer @ev with @action; a CR or MSR write keeps the guest's value. */
static void reply_to_event(const struct vcpu_event *ev, __u8 action)
{
	__u64 new_val = 0;

	if (ev->event == KVMI_VCPU_EVENT_CR)
		new_val = ev->cr.new_value;
	else if (ev->event == KVMI_VCPU_EVENT_MSR)
		new_val = ev->msr.new_value;

	reply_with_value(ev, action, new_val);
}

static void reply_continue(const struct vcpu_event *ev)
{
	reply_to_event(ev, KVMI_EVENT_ACTION_CONTINUE);
}

/* The guest hypercall of vCPU 0 raises an event; returns it in @ev. */
static void hypercall_event(struct vcpu_event *ev)
{
	guest_start_hypercall();
	expect_vcpu_event(KVMI_VCPU_EVENT_HYPERCALL, ev);
	TEST_ASSERT(ev->common.vcpu == 0, "Event from vCPU %u",
		    ev->common.vcpu);
}

/* The crash exit of a CRASH reply, seen by the runner of vCPU 0. */
static void check_crash_exit(void)
{
	struct kvm_run *run = test_vcpu->run;

	join_runner(0);
	TEST_ASSERT(!runners[0].ret && !runners[0].done,
		    "KVM_RUN: ret %d, done %d", runners[0].ret,
		    runners[0].done);
	TEST_ASSERT(runners[0].exit_reason == KVM_EXIT_SYSTEM_EVENT,
		    "Exit reason %u, expected KVM_EXIT_SYSTEM_EVENT",
		    runners[0].exit_reason);
	TEST_ASSERT(run->system_event.type == KVM_SYSTEM_EVENT_CRASH,
		    "system_event.type %u", run->system_event.type);
	TEST_ASSERT(run->system_event.ndata == 1, "system_event.ndata %u",
		    run->system_event.ndata);
	TEST_ASSERT(run->system_event.data[0] == KVMI_CRASH_SYSTEM_EVENT_DATA,
		    "system_event.data[0] %#llx",
		    (unsigned long long)run->system_event.data[0]);
}

static char *skip_reason;

static void __noreturn skip_case(const char *reason)
{
	snprintf(skip_reason, PAGE_BYTES, "%s", reason);
	exit(KSFT_SKIP);
}

/*
 * Does the CPU deliver the #BP intercept?  QEMU TCG (SVM) does not: the
 * guest takes its own #BP even with KVM_GUESTDBG_USE_SW_BP.
 */
static bool bp_intercept_works(void)
{
	struct kvm_guest_debug dbg = {
		.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_SW_BP,
	};
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	bool works;
	int r;

	vm = vm_create_with_one_vcpu(&vcpu, guest_int3_code);
	vm_install_exception_handler(vm, BP_VECTOR, guest_bp_handler);
	vcpu_guest_debug_set(vcpu, &dbg);

	do {
		r = __vcpu_run(vcpu);
	} while (r && errno == EINTR);
	works = !r && vcpu->run->exit_reason == KVM_EXIT_DEBUG;
	pr_info("# #BP probe: KVM_RUN %d, exit reason %u\n", r,
		vcpu->run->exit_reason);

	kvm_vm_free(vm);
	return works;
}

static void require_bp_intercept(void)
{
	if (!bp_intercept_works())
		skip_case("the #BP intercept is not delivered by this CPU (QEMU TCG)");
}

/* ------------------------------------------------------------------ */
/* The memory guest                                                    */
/* ------------------------------------------------------------------ */

/* Run the vCPU until its next ucall, which must be @expected. */
static void run_guest(__u64 expected)
{
	struct ucall uc;
	__u64 cmd;

	vcpu_run(test_vcpu);
	TEST_ASSERT_KVM_EXIT_REASON(test_vcpu, KVM_EXIT_IO);

	cmd = get_ucall(test_vcpu, &uc);
	if (cmd == UCALL_ABORT)
		REPORT_GUEST_ASSERT(uc);
	TEST_ASSERT(cmd == expected, "Guest ucall %lu, expected %lu",
		    (unsigned long)cmd, (unsigned long)expected);
}

static void guest_do(__u64 op, __u64 offset, __u64 size, __u64 seed)
{
	guest_mem_op.op = op;
	guest_mem_op.offset = offset;
	guest_mem_op.size = size;
	guest_mem_op.seed = seed;
	sync_global_to_guest(test_vm, guest_mem_op);

	run_guest(op == GUEST_OP_DONE ? UCALL_DONE : UCALL_SYNC);
}

/* The guest writes the @seed pattern to [@offset, @offset + @size). */
static void guest_fill(__u64 offset, __u64 size, __u64 seed)
{
	guest_do(GUEST_OP_FILL, offset, size, seed);
}

/* The guest checks that [@offset, @offset + @size) holds @seed's pattern. */
static void guest_check(__u64 offset, __u64 size, __u64 seed)
{
	guest_do(GUEST_OP_CHECK, offset, size, seed);
}

static void guest_finish(void)
{
	guest_do(GUEST_OP_DONE, 0, 0, 0);
}

static void fill_pattern(__u8 *buf, __u64 offset, size_t size, __u64 seed)
{
	size_t i;

	for (i = 0; i < size; i++)
		buf[i] = pattern_byte(seed, offset + i);
}

/*
 * A hooked VM whose guest has a page (test_page_gva/test_page_gpa) and
 * waits at its first GUEST_SYNC.  VM_READ/WRITE_PHYSICAL are allowed.
 */
static void setup_mem_vm(void)
{
	setup_vm(guest_mem_code);

	test_page_gva = vm_vaddr_alloc_page(test_vm);
	test_page_gpa = addr_gva2gpa(test_vm, test_page_gva);
	vcpu_args_set(test_vcpu, 1, test_page_gva);
	run_guest(UCALL_SYNC);

	allow_command(KVMI_VM_READ_PHYSICAL);
	allow_command(KVMI_VM_WRITE_PHYSICAL);
}

/* The tool reads [@offset, @offset + @size) and compares with @seed. */
static void tool_check(__u64 offset, __u16 size, __u64 seed)
{
	static __u8 buf[PAGE_BYTES], expected[PAGE_BYTES];
	int err;

	err = vm_read_physical(test_page_gpa + offset, size, buf);
	TEST_ASSERT(!err, "VM_READ_PHYSICAL(offset %lu, size %u) failed: %d",
		    (unsigned long)offset, size, err);

	fill_pattern(expected, offset, size, seed);
	TEST_ASSERT(!memcmp(buf, expected, size),
		    "VM_READ_PHYSICAL(offset %lu, size %u): unexpected data",
		    (unsigned long)offset, size);
}

/* The tool writes @seed's pattern to [@offset, @offset + @size). */
static void tool_fill(__u64 offset, __u16 size, __u64 seed)
{
	static __u8 buf[PAGE_BYTES];
	int err;

	fill_pattern(buf, offset, size, seed);
	err = vm_write_physical(test_page_gpa + offset, size, buf);
	TEST_ASSERT(!err, "VM_WRITE_PHYSICAL(offset %lu, size %u) failed: %d",
		    (unsigned long)offset, size, err);
}

/* The first gpa after the highest memslot of the VM. */
static __u64 gpa_after_memslots(struct kvm_vm *vm)
{
	struct userspace_mem_region *region;
	__u64 end = 0;
	int bkt;

	hash_for_each(vm->regions.slot_hash, bkt, region, slot_node) {
		__u64 e = region->region.guest_phys_addr +
			  region->region.memory_size;

		if (e > end)
			end = e;
	}

	return end;
}

/* ------------------------------------------------------------------ */
/* Cases: ioctls                                                       */
/* ------------------------------------------------------------------ */

static void test_cap_introspection(void)
{
	int r;

	create_vm(guest_idle_code);

	r = vm_check_cap(test_vm, KVM_CAP_INTROSPECTION);
	TEST_ASSERT(r == KVMI_VERSION,
		    "KVM_CHECK_EXTENSION(VM fd) = %d, expected %d", r,
		    KVMI_VERSION);

	r = kvm_check_cap(KVM_CAP_INTROSPECTION);
	TEST_ASSERT(r == KVMI_VERSION,
		    "KVM_CHECK_EXTENSION(/dev/kvm) = %d, expected %d", r,
		    KVMI_VERSION);

	kvm_vm_free(test_vm);
}

static void test_hook(void)
{
	setup_vm(guest_idle_code);
	check_connection_alive();
	teardown_vm();
}

static void test_hook_padding(void)
{
	int tool, kvm_end;

	create_vm(guest_idle_code);

	new_socket_pair(&tool, &kvm_end);
	EXPECT_ERR(__hook(test_vm, kvm_end, 1), -EINVAL);
	EXPECT_ERR(__hook(test_vm, kvm_end, 0x80000000), -EINVAL);
	close(tool);
	close(kvm_end);

	/* Nothing was hooked. */
	EXPECT_ERR(__preunhook(test_vm), -EFAULT);
	hook_introspection(test_vm);
	check_connection_alive();
	teardown_vm();
}

static void test_hook_not_a_socket(void)
{
	int efd, pipefd[2];

	create_vm(guest_idle_code);

	efd = eventfd(0, 0);
	TEST_ASSERT(efd >= 0, "eventfd() failed");
	EXPECT_ERR(__hook(test_vm, efd, 0), -EINVAL);
	close(efd);

	TEST_ASSERT(!pipe(pipefd), "pipe() failed");
	EXPECT_ERR(__hook(test_vm, pipefd[0], 0), -EINVAL);
	EXPECT_ERR(__hook(test_vm, pipefd[1], 0), -EINVAL);
	close(pipefd[0]);
	close(pipefd[1]);

	/* A bad fd is "not a socket" too. */
	EXPECT_ERR(__hook(test_vm, -1, 0), -EINVAL);
	EXPECT_ERR(__hook(test_vm, efd, 0), -EINVAL);

	EXPECT_ERR(__preunhook(test_vm), -EFAULT);
	hook_introspection(test_vm);
	check_connection_alive();
	teardown_vm();
}

static void test_hook_twice(void)
{
	int tool, kvm_end, efd;

	setup_vm(guest_idle_code);

	new_socket_pair(&tool, &kvm_end);
	EXPECT_ERR(__hook(test_vm, kvm_end, 0), -EEXIST);

	/* The padding is checked before, the fd after "already hooked". */
	EXPECT_ERR(__hook(test_vm, kvm_end, 1), -EINVAL);
	efd = eventfd(0, 0);
	TEST_ASSERT(efd >= 0, "eventfd() failed");
	EXPECT_ERR(__hook(test_vm, efd, 0), -EEXIST);
	close(efd);

	close(tool);
	close(kvm_end);

	/* The first connection is untouched. */
	check_connection_alive();
	teardown_vm();
}

static void test_hook_after_tool_close(void)
{
	setup_vm(guest_idle_code);
	check_connection_alive();

	close_tool_socket();

	expect_hooked_until_unhook();
	teardown_vm();
}

static void test_unhook_not_hooked(void)
{
	create_vm(guest_idle_code);

	EXPECT_ERR(__unhook(test_vm), 0);

	hook_introspection(test_vm);
	EXPECT_ERR(__unhook(test_vm), 0);
	EXPECT_ERR(__unhook(test_vm), 0);
	close_tool_socket();

	kvm_vm_free(test_vm);
}

static void test_feature_ioctl_invalid(bool event)
{
	int (*feature)(struct kvm_vm *vm, __u32 allow, __s32 id);
	__s32 nr_ids = event ? 20 : 30;

	feature = event ? __event_feature : __command_feature;

	setup_vm(guest_idle_code);

	EXPECT_ERR(feature(test_vm, 2, -1), -EINVAL);
	EXPECT_ERR(feature(test_vm, 2, 0), -EINVAL);
	EXPECT_ERR(feature(test_vm, 0xffffffff, 0), -EINVAL);
	EXPECT_ERR(feature(test_vm, 1, -2), -EINVAL);
	EXPECT_ERR(feature(test_vm, 0, -2), -EINVAL);
	EXPECT_ERR(feature(test_vm, 1, -1000), -EINVAL);
	EXPECT_ERR(feature(test_vm, 1, nr_ids), -EINVAL);
	EXPECT_ERR(feature(test_vm, 0, nr_ids), -EINVAL);
	EXPECT_ERR(feature(test_vm, 1, 0x7fffffff), -EINVAL);

	/* In-range ids are accepted, even when they are not real ones. */
	EXPECT_ERR(feature(test_vm, 1, nr_ids - 1), 0);
	EXPECT_ERR(feature(test_vm, 0, nr_ids - 1), 0);
	EXPECT_ERR(feature(test_vm, 1, -1), 0);

	check_connection_alive();
	teardown_vm();
}

static void test_command_ioctl_invalid(void)
{
	test_feature_ioctl_invalid(false);
}

static void test_event_ioctl_invalid(void)
{
	test_feature_ioctl_invalid(true);
}

static void test_feature_ioctls_unhooked(void)
{
	create_vm(guest_idle_code);

	EXPECT_ERR(__command_feature(test_vm, 1, KVMI_VM_GET_INFO), -EFAULT);
	EXPECT_ERR(__command_feature(test_vm, 1, -1), -EFAULT);
	EXPECT_ERR(__event_feature(test_vm, 1, KVMI_VM_EVENT_UNHOOK),
		   -EFAULT);
	EXPECT_ERR(__event_feature(test_vm, 0, -1), -EFAULT);

	/* "Not hooked" is checked before the arguments. */
	EXPECT_ERR(__command_feature(test_vm, 2, 30), -EFAULT);
	EXPECT_ERR(__event_feature(test_vm, 2, 20), -EFAULT);

	/* Also after an unhook. */
	hook_introspection(test_vm);
	unhook_introspection(test_vm);
	EXPECT_ERR(__command_feature(test_vm, 1, KVMI_VM_GET_INFO), -EFAULT);
	EXPECT_ERR(__event_feature(test_vm, 1, KVMI_VM_EVENT_UNHOOK),
		   -EFAULT);

	kvm_vm_free(test_vm);
}

static void test_command_disallow_always_allowed(void)
{
	setup_vm(guest_idle_code);

	EXPECT_ERR(__command_feature(test_vm, 0, KVMI_GET_VERSION), -EPERM);
	EXPECT_ERR(__command_feature(test_vm, 0, KVMI_VM_CHECK_COMMAND),
		   -EPERM);
	EXPECT_ERR(__command_feature(test_vm, 0, KVMI_VM_CHECK_EVENT),
		   -EPERM);

	/* Allowing them is fine. */
	allow_command(KVMI_GET_VERSION);
	allow_command(KVMI_VM_CHECK_COMMAND);
	allow_command(KVMI_VM_CHECK_EVENT);

	EXPECT_ERR(vm_check_command(KVMI_GET_VERSION, 0, 0), 0);
	EXPECT_ERR(vm_check_command(KVMI_VM_CHECK_COMMAND, 0, 0), 0);
	EXPECT_ERR(vm_check_command(KVMI_VM_CHECK_EVENT, 0, 0), 0);
	check_connection_alive();

	teardown_vm();
}

static void test_command_disallow_all(void)
{
	struct kvmi_vm_get_info_reply info;

	setup_vm(guest_idle_code);

	allow_command(-1);
	EXPECT_ERR(vm_check_command(KVMI_VM_GET_INFO, 0, 0), 0);
	EXPECT_ERR(vm_get_info(&info), 0);

	disallow_command(-1);

	/* The always-allowed commands still work. */
	check_connection_alive();
	EXPECT_ERR(vm_check_command(KVMI_GET_VERSION, 0, 0), 0);
	EXPECT_ERR(vm_check_command(KVMI_VM_CHECK_COMMAND, 0, 0), 0);
	EXPECT_ERR(vm_check_command(KVMI_VM_CHECK_EVENT, 0, 0), 0);

	/* The others do not. */
	EXPECT_ERR(vm_check_command(KVMI_VM_GET_INFO, 0, 0), -KVM_EPERM);
	EXPECT_ERR(vm_check_command(KVMI_VM_READ_PHYSICAL, 0, 0),
		   -KVM_EPERM);
	EXPECT_ERR(vm_get_info(&info), -KVM_EPERM);

	teardown_vm();
}

static void test_command_allow_one(void)
{
	struct kvmi_vm_get_info_reply info;

	setup_vm(guest_idle_code);

	EXPECT_ERR(vm_check_command(KVMI_VM_GET_INFO, 0, 0), -KVM_EPERM);

	allow_command(KVMI_VM_GET_INFO);
	EXPECT_ERR(vm_check_command(KVMI_VM_GET_INFO, 0, 0), 0);
	EXPECT_ERR(vm_get_info(&info), 0);

	/* Only that one. */
	EXPECT_ERR(vm_check_command(KVMI_VM_CONTROL_EVENTS, 0, 0),
		   -KVM_EPERM);
	EXPECT_ERR(vm_check_command(KVMI_VM_READ_PHYSICAL, 0, 0),
		   -KVM_EPERM);
	EXPECT_ERR(vm_check_command(KVMI_VM_WRITE_PHYSICAL, 0, 0),
		   -KVM_EPERM);

	disallow_command(KVMI_VM_GET_INFO);
	EXPECT_ERR(vm_check_command(KVMI_VM_GET_INFO, 0, 0), -KVM_EPERM);
	EXPECT_ERR(vm_get_info(&info), -KVM_EPERM);

	teardown_vm();
}

static void test_preunhook_unhooked(void)
{
	create_vm(guest_idle_code);

	EXPECT_ERR(__preunhook(test_vm), -EFAULT);

	hook_introspection(test_vm);
	unhook_introspection(test_vm);
	EXPECT_ERR(__preunhook(test_vm), -EFAULT);

	kvm_vm_free(test_vm);
}

static void enable_unhook_event(void)
{
	allow_event(KVMI_VM_EVENT_UNHOOK);
	allow_command(KVMI_VM_CONTROL_EVENTS);
	EXPECT_ERR(vm_control_events(KVMI_VM_EVENT_UNHOOK, 1, 0, 0), 0);
}

static void test_preunhook_event_not_enabled(void)
{
	setup_vm(guest_idle_code);

	EXPECT_ERR(__preunhook(test_vm), -ENOENT);

	/* Allowed but not enabled. */
	allow_event(KVMI_VM_EVENT_UNHOOK);
	EXPECT_ERR(__preunhook(test_vm), -ENOENT);

	/* Enabled, then disabled. */
	allow_command(KVMI_VM_CONTROL_EVENTS);
	EXPECT_ERR(vm_control_events(KVMI_VM_EVENT_UNHOOK, 1, 0, 0), 0);
	EXPECT_ERR(vm_control_events(KVMI_VM_EVENT_UNHOOK, 0, 0, 0), 0);
	EXPECT_ERR(__preunhook(test_vm), -ENOENT);

	/* No event was sent. */
	expect_nothing(100);
	check_connection_alive();

	teardown_vm();
}

static void test_preunhook_event(void)
{
	__u32 seq;

	setup_vm(guest_idle_code);
	enable_unhook_event();

	EXPECT_ERR(__preunhook(test_vm), 0);
	seq = receive_vm_event(KVMI_VM_EVENT_UNHOOK);
	pr_info("# UNHOOK event seq %u\n", seq);

	/* No reply is expected; the connection is still usable. */
	check_connection_alive();

	EXPECT_ERR(__unhook(test_vm), 0);
	expect_eof();

	teardown_vm();
}

static void test_preunhook_after_tool_close(void)
{
	setup_vm(guest_idle_code);
	enable_unhook_event();

	close_tool_socket();
	EXPECT_ERR(__preunhook(test_vm), -ENOENT);

	teardown_vm();
}

/* ------------------------------------------------------------------ */
/* Cases: protocol                                                     */
/* ------------------------------------------------------------------ */

static void expect_enosys(__u16 id, const void *req, size_t req_size)
{
	expect_command(-KVM_ENOSYS, id, req, req_size);
	check_connection_alive();
}

static void test_unknown_message_ids(void)
{
	static const __u16 ids[] = {
		0xffff, KVMI_VM_GET_MAP_TOKEN, 0x7ffe, 100, KVMI_VM_EVENT,
		0x7fff, KVMI_NEXT_VCPU_MESSAGE, KVMI_NEXT_VCPU_MESSAGE + 1,
	};
	__u8 payload[16] = {};
	unsigned int i;

	setup_vm(guest_idle_code);

	for (i = 0; i < ARRAY_SIZE(ids); i++) {
		expect_enosys(ids[i], NULL, 0);
		expect_enosys(ids[i], payload, sizeof(payload));
	}

	/* Allowing everything does not create handlers. */
	allow_command(-1);
	for (i = 0; i < ARRAY_SIZE(ids); i++)
		expect_enosys(ids[i], payload, sizeof(payload));

	teardown_vm();
}

static void test_disallowed_command(void)
{
	struct kvmi_vm_control_events ctl = {
		.event_id = KVMI_VM_EVENT_UNHOOK,
		.enable = 1,
	};
	struct kvmi_vm_read_physical rd = { .gpa = 0, .size = 1 };
	struct kvmi_vm_write_physical *wr;
	struct kvmi_vm_get_info_reply info;
	__u8 byte = 0;
	size_t wr_len;

	setup_vm(guest_idle_code);

	EXPECT_ERR(vm_get_info(&info), -KVM_EPERM);
	check_connection_alive();

	allow_event(KVMI_VM_EVENT_UNHOOK);
	expect_command(-KVM_EPERM, KVMI_VM_CONTROL_EVENTS, &ctl, sizeof(ctl));
	expect_command(-KVM_EPERM, KVMI_VM_READ_PHYSICAL, &rd, sizeof(rd));

	wr = build_write_physical(0, 1, 0, 0, &byte, 1, &wr_len);
	expect_command(-KVM_EPERM, KVMI_VM_WRITE_PHYSICAL, wr, wr_len);
	free(wr);

	check_connection_alive();

	/* The event was not enabled. */
	EXPECT_ERR(__preunhook(test_vm), -ENOENT);

	teardown_vm();
}

static void test_oversized_message(void)
{
	int r;

	setup_vm(guest_idle_code);

	r = __send_message(KVMI_GET_VERSION, KVMI_MAX_MSG_SIZE + 1, 1, NULL, 0);
	TEST_ASSERT(!r, "send() failed: %s", err_str(r));
	expect_eof();

	/* The VM stays hooked until UNHOOK. */
	expect_hooked_until_unhook();

	teardown_vm();
}

static void test_max_size_message(void)
{
	struct kvmi_get_version_reply rpl;
	__u32 seq;
	__u8 *buf;

	setup_vm(guest_idle_code);

	buf = malloc(KVMI_MAX_MSG_SIZE);
	TEST_ASSERT(buf, "Out of memory");
	memset(buf, 0xa5, KVMI_MAX_MSG_SIZE);

	seq = send_message(KVMI_GET_VERSION, buf, KVMI_MAX_MSG_SIZE);
	EXPECT_ERR(receive_reply(KVMI_GET_VERSION, seq, &rpl, sizeof(rpl)),
		   0);
	TEST_ASSERT(rpl.version == KVMI_VERSION, "Bad version %u",
		    rpl.version);
	free(buf);

	check_connection_alive();
	teardown_vm();
}

static void test_truncated_header(void)
{
	struct kvmi_msg_hdr hdr = { .id = KVMI_GET_VERSION, .seq = 1 };

	setup_vm(guest_idle_code);

	TEST_ASSERT(send(tool_fd, &hdr, 4, MSG_NOSIGNAL) == 4, "send() failed");
	TEST_ASSERT(!shutdown(tool_fd, SHUT_WR), "shutdown() failed");
	expect_eof();

	teardown_vm();
}

static void test_truncated_body(void)
{
	struct kvmi_vm_read_physical req = { .gpa = 0, .size = 1 };
	int r;

	setup_vm(guest_idle_code);
	allow_command(KVMI_VM_READ_PHYSICAL);

	r = __send_message(KVMI_VM_READ_PHYSICAL, sizeof(req), ++tool_seq,
			   &req, 8);
	TEST_ASSERT(!r, "send() failed: %s", err_str(r));
	TEST_ASSERT(!shutdown(tool_fd, SHUT_WR), "shutdown() failed");
	expect_eof();

	teardown_vm();
}

static void test_short_payload_zero_filled(void)
{
	struct kvmi_vm_check_command cmd = { .id = KVMI_GET_VERSION };
	struct kvmi_vm_check_event ev = { .id = KVMI_VM_EVENT_UNHOOK };
	struct kvmi_vm_control_events ctl = {
		.event_id = KVMI_VM_EVENT_UNHOOK,
		.enable = 1,
	};
	struct kvmi_vm_read_physical rd = { .gpa = 0, .size = 1 };
	__u32 seq;
	__u8 byte;

	setup_vm(guest_idle_code);

	/* Only the id: the padding reads as zero. */
	expect_command(0, KVMI_VM_CHECK_COMMAND, &cmd, 2);
	cmd.id = KVMI_VM_GET_INFO;
	expect_command(-KVM_EPERM, KVMI_VM_CHECK_COMMAND, &cmd, 2);

	/* No payload at all: id 0. */
	expect_command(-KVM_ENOENT, KVMI_VM_CHECK_COMMAND, NULL, 0);
	expect_command(-KVM_EPERM, KVMI_VM_CHECK_EVENT, NULL, 0);

	allow_event(KVMI_VM_EVENT_UNHOOK);
	expect_command(0, KVMI_VM_CHECK_EVENT, &ev, 2);
	expect_command(0, KVMI_VM_CHECK_EVENT, NULL, 0);

	/* The missing padding of VM_CONTROL_EVENTS reads as zero. */
	allow_command(KVMI_VM_CONTROL_EVENTS);
	expect_command(0, KVMI_VM_CONTROL_EVENTS, &ctl, 3);
	EXPECT_ERR(__preunhook(test_vm), 0);
	receive_vm_event(KVMI_VM_EVENT_UNHOOK);

	/* enable reads as 0: the event is disabled. */
	expect_command(0, KVMI_VM_CONTROL_EVENTS, &ctl, 2);
	EXPECT_ERR(__preunhook(test_vm), -ENOENT);

	/* VM_READ_PHYSICAL with only gpa and size. */
	allow_command(KVMI_VM_READ_PHYSICAL);
	seq = send_message(KVMI_VM_READ_PHYSICAL, &rd, 10);
	EXPECT_ERR(receive_reply(KVMI_VM_READ_PHYSICAL, seq, &byte, 1), 0);

	/* Without size (read as 0). */
	expect_command(-KVM_EINVAL, KVMI_VM_READ_PHYSICAL, &rd, 8);

	check_connection_alive();
	teardown_vm();
}

static void test_long_payload_ignored(void)
{
	struct {
		struct kvmi_vm_check_command req;
		__u8 extra[24];
	} cmd;
	struct {
		struct kvmi_vm_read_physical req;
		__u8 extra[8];
	} rd;
	struct kvmi_get_version_reply ver;
	__u8 junk[64];
	__u8 byte;
	__u32 seq;

	setup_vm(guest_idle_code);

	memset(junk, 0xff, sizeof(junk));
	seq = send_message(KVMI_GET_VERSION, junk, sizeof(junk));
	EXPECT_ERR(receive_reply(KVMI_GET_VERSION, seq, &ver, sizeof(ver)),
		   0);

	memset(&cmd, 0xff, sizeof(cmd));
	cmd.req.id = KVMI_VM_CHECK_EVENT;
	cmd.req.padding1 = 0;
	cmd.req.padding2 = 0;
	expect_command(0, KVMI_VM_CHECK_COMMAND, &cmd, sizeof(cmd));

	memset(&rd, 0xff, sizeof(rd));
	rd.req.gpa = 0;
	rd.req.size = 1;
	rd.req.padding1 = 0;
	rd.req.padding2 = 0;
	allow_command(KVMI_VM_READ_PHYSICAL);
	seq = send_message(KVMI_VM_READ_PHYSICAL, &rd, sizeof(rd));
	EXPECT_ERR(receive_reply(KVMI_VM_READ_PHYSICAL, seq, &byte, 1), 0);

	check_connection_alive();
	teardown_vm();
}

static void test_write_physical_short_payload(void)
{
	struct kvmi_vm_write_physical *req;
	__u8 data[PAGE_BYTES];
	size_t req_len;

	setup_mem_vm();
	guest_fill(0, PAGE_BYTES, 7);

	/* The EINVAL checks come first: these get a reply. */
	fill_pattern(data, 0, sizeof(data), 8);
	EXPECT_ERR(__vm_write_physical(test_page_gpa, 16, 1, 0, data, 8),
		   -KVM_EINVAL);
	EXPECT_ERR(__vm_write_physical(test_page_gpa, 16, 0, 1, data, 8),
		   -KVM_EINVAL);
	EXPECT_ERR(__vm_write_physical(test_page_gpa + PAGE_BYTES - 1, 16,
				       0, 0, data, 8), -KVM_EINVAL);
	check_connection_alive();
	guest_check(0, PAGE_BYTES, 7);

	/* Valid arguments, 8 data bytes instead of 16: closed. */
	req = build_write_physical(test_page_gpa, 16, 0, 0, data, 8, &req_len);
	send_message(KVMI_VM_WRITE_PHYSICAL, req, req_len);
	free(req);
	expect_eof();

	/* Nothing was written. */
	guest_check(0, PAGE_BYTES, 7);
	guest_finish();

	teardown_vm();
}

static void test_unhook_partial_message(void)
{
	struct kvmi_vm_read_physical req = { .gpa = 0, .size = 1 };
	int r;

	setup_vm(guest_idle_code);
	allow_command(KVMI_VM_READ_PHYSICAL);
	check_connection_alive();

	/* Half a message: KVM's receiving thread waits for the rest. */
	r = __send_message(KVMI_VM_READ_PHYSICAL, sizeof(req), ++tool_seq,
			   &req, 8);
	TEST_ASSERT(!r, "send() failed: %s", err_str(r));
	usleep(200 * 1000);

	EXPECT_ERR(__unhook(test_vm), 0);

	expect_closed();

	hook_introspection(test_vm);
	check_connection_alive();
	teardown_vm();
}

struct flood_state {
	int fd;
	unsigned long replies;
	int end_err;
};

/* Send GET_VERSION and read its reply, until the connection dies. */
static void *flood_thread(void *arg)
{
	struct flood_state *st = arg;
	struct kvmi_msg_hdr hdr = { .id = KVMI_GET_VERSION };
	__u8 rpl[sizeof(struct kvmi_msg_hdr) + sizeof(struct kvmi_error_code) +
		 sizeof(struct kvmi_get_version_reply)];
	ssize_t r;

	for (;;) {
		hdr.seq++;
		r = send(st->fd, &hdr, sizeof(hdr), MSG_NOSIGNAL);
		if (r != sizeof(hdr)) {
			st->end_err = r < 0 ? errno : EIO;
			break;
		}
		r = recv_full(st->fd, rpl, sizeof(rpl));
		if (r != sizeof(rpl)) {
			st->end_err = r < 0 ? (int)-r : 0;
			break;
		}
		WRITE_ONCE(st->replies, st->replies + 1);
	}

	return NULL;
}

static void test_unhook_busy_connection(void)
{
	struct flood_state st = {};
	long long start;
	pthread_t thread;

	setup_vm(guest_idle_code);

	st.fd = tool_fd;
	TEST_ASSERT(!pthread_create(&thread, NULL, flood_thread, &st),
		    "pthread_create() failed");

	start = now_ms();
	while (READ_ONCE(st.replies) < 100 && now_ms() - start < 5000)
		usleep(1000);
	TEST_ASSERT(READ_ONCE(st.replies) > 0, "No reply to GET_VERSION");

	EXPECT_ERR(__unhook(test_vm), 0);

	pthread_join(thread, NULL);
	TEST_ASSERT(!st.end_err || st.end_err == EPIPE ||
		    st.end_err == ECONNRESET,
		    "The sender stopped with: %s", strerror(st.end_err));
	pr_info("# %lu replies before UNHOOK\n", st.replies);

	expect_closed();

	hook_introspection(test_vm);
	check_connection_alive();
	teardown_vm();
}

/* ------------------------------------------------------------------ */
/* Cases: commands                                                     */
/* ------------------------------------------------------------------ */

static void test_get_version(void)
{
	struct kvmi_get_version_reply rpl;

	setup_vm(guest_idle_code);

	/* receive_reply() checks that hdr.size is 8 + 16 = 24. */
	TEST_ASSERT(sizeof(rpl) == 16, "sizeof(kvmi_get_version_reply) = %zu",
		    sizeof(rpl));
	get_version(&rpl);
	TEST_ASSERT(rpl.version == KVMI_VERSION, "version %u, expected %u",
		    rpl.version, KVMI_VERSION);
	TEST_ASSERT(rpl.max_msg_size == KVMI_MAX_MSG_SIZE,
		    "max_msg_size %u, expected %zu", rpl.max_msg_size,
		    KVMI_MAX_MSG_SIZE);
	TEST_ASSERT(rpl.max_msg_size == 8184, "max_msg_size %u",
		    rpl.max_msg_size);
	/* SVM always single-steps; VMX needs the monitor trap flag. */
	TEST_ASSERT(rpl.features.singlestep <= 1 &&
		    (rpl.features.singlestep || !host_cpu_is_amd),
		    "features.singlestep %u", rpl.features.singlestep);

	teardown_vm();
}

static void test_vm_check_command(void)
{
	static const __u16 allowed[] = {
		KVMI_GET_VERSION, KVMI_VM_CHECK_COMMAND, KVMI_VM_CHECK_EVENT,
	};
	static const __u16 disallowed[] = {
		KVMI_VM_GET_INFO, KVMI_VM_CONTROL_EVENTS,
		KVMI_VM_READ_PHYSICAL, KVMI_VM_WRITE_PHYSICAL,
		KVMI_VM_PAUSE_VCPU, KVMI_VCPU_GET_INFO,
		KVMI_VCPU_CONTROL_EVENTS, KVMI_VCPU_GET_REGISTERS,
		KVMI_VCPU_SET_REGISTERS, KVMI_VCPU_GET_CPUID,
		KVMI_VM_CONTROL_CLEANUP, KVMI_VCPU_CONTROL_CR,
		KVMI_VCPU_INJECT_EXCEPTION, KVMI_VCPU_GET_XCR,
		KVMI_VCPU_GET_XSAVE, KVMI_VCPU_SET_XSAVE,
		KVMI_VCPU_GET_MTRR_TYPE, KVMI_VCPU_CONTROL_MSR,
		KVMI_VCPU_CONTROL_SINGLESTEP, KVMI_VCPU_TRANSLATE_GVA,
		KVMI_VM_SET_PAGE_ACCESS, KVMI_VM_GET_MAX_GFN,
	};
	static const __u16 unknown[] = {
		KVMI_VM_EVENT, KVMI_VCPU_EVENT, KVMI_VM_GET_MAP_TOKEN, 0xffff,
		0x7ffe, KVMI_NEXT_VCPU_MESSAGE, 31, 40,
	};
	unsigned int i;

	setup_vm(guest_idle_code);

	for (i = 0; i < ARRAY_SIZE(allowed); i++)
		EXPECT_ERR(vm_check_command(allowed[i], 0, 0), 0);
	for (i = 0; i < ARRAY_SIZE(disallowed); i++)
		EXPECT_ERR(vm_check_command(disallowed[i], 0, 0),
			   -KVM_EPERM);
	for (i = 0; i < ARRAY_SIZE(unknown); i++)
		EXPECT_ERR(vm_check_command(unknown[i], 0, 0), -KVM_ENOENT);

	/* Padding is checked first. */
	EXPECT_ERR(vm_check_command(KVMI_GET_VERSION, 1, 0), -KVM_EINVAL);
	EXPECT_ERR(vm_check_command(KVMI_GET_VERSION, 0, 1), -KVM_EINVAL);
	EXPECT_ERR(vm_check_command(KVMI_VM_GET_INFO, 0x8000, 0),
		   -KVM_EINVAL);
	EXPECT_ERR(vm_check_command(0xffff, 0, 0x80000000), -KVM_EINVAL);

	/* Allowing everything does not make unknown ids known. */
	allow_command(-1);
	for (i = 0; i < ARRAY_SIZE(disallowed); i++)
		EXPECT_ERR(vm_check_command(disallowed[i], 0, 0), 0);
	for (i = 0; i < ARRAY_SIZE(unknown); i++)
		EXPECT_ERR(vm_check_command(unknown[i], 0, 0), -KVM_ENOENT);

	teardown_vm();
}

static void test_vm_check_event(void)
{
	static const __u16 vcpu_events[] = {
		KVMI_VCPU_EVENT_PAUSE, KVMI_VCPU_EVENT_HYPERCALL,
		KVMI_VCPU_EVENT_BREAKPOINT, KVMI_VCPU_EVENT_CR,
		KVMI_VCPU_EVENT_TRAP, KVMI_VCPU_EVENT_XSETBV,
		KVMI_VCPU_EVENT_DESCRIPTOR, KVMI_VCPU_EVENT_MSR,
		KVMI_VCPU_EVENT_PF, KVMI_VCPU_EVENT_SINGLESTEP,
	};
	static const __u16 unknown[] = {
		2, 4, KVMI_NEXT_VCPU_EVENT, 21, 0xff, 0xffff,
	};
	unsigned int i;

	setup_vm(guest_idle_code);

	EXPECT_ERR(vm_check_event(KVMI_VM_EVENT_UNHOOK, 0, 0), -KVM_EPERM);
	for (i = 0; i < ARRAY_SIZE(vcpu_events); i++)
		EXPECT_ERR(vm_check_event(vcpu_events[i], 0, 0), -KVM_EPERM);
	for (i = 0; i < ARRAY_SIZE(unknown); i++)
		EXPECT_ERR(vm_check_event(unknown[i], 0, 0), -KVM_ENOENT);

	for (i = 0; i < ARRAY_SIZE(vcpu_events); i++) {
		allow_event(vcpu_events[i]);
		EXPECT_ERR(vm_check_event(vcpu_events[i], 0, 0), 0);
		EXPECT_ERR(vm_check_event(vcpu_events[i], 1, 0), -KVM_EINVAL);
	}
	EXPECT_ERR(vm_check_event(KVMI_VM_EVENT_UNHOOK, 0, 0), -KVM_EPERM);

	allow_event(KVMI_VM_EVENT_UNHOOK);
	EXPECT_ERR(vm_check_event(KVMI_VM_EVENT_UNHOOK, 0, 0), 0);

	EXPECT_ERR(vm_check_event(KVMI_VM_EVENT_UNHOOK, 1, 0), -KVM_EINVAL);
	EXPECT_ERR(vm_check_event(KVMI_VM_EVENT_UNHOOK, 0, 1), -KVM_EINVAL);
	EXPECT_ERR(vm_check_event(0xffff, 0xffff, 0), -KVM_EINVAL);

	EXPECT_ERR(__event_feature(test_vm, 0, KVMI_VM_EVENT_UNHOOK), 0);
	EXPECT_ERR(vm_check_event(KVMI_VM_EVENT_UNHOOK, 0, 0), -KVM_EPERM);

	allow_event(-1);
	EXPECT_ERR(vm_check_event(KVMI_VM_EVENT_UNHOOK, 0, 0), 0);
	for (i = 0; i < ARRAY_SIZE(unknown); i++)
		EXPECT_ERR(vm_check_event(unknown[i], 0, 0), -KVM_ENOENT);

	EXPECT_ERR(__event_feature(test_vm, 0, -1), 0);
	EXPECT_ERR(vm_check_event(KVMI_VM_EVENT_UNHOOK, 0, 0), -KVM_EPERM);

	teardown_vm();
}

static void check_vcpu_count(__u32 expected)
{
	struct kvmi_vm_get_info_reply rpl;

	allow_command(KVMI_VM_GET_INFO);

	/* receive_reply() checks hdr.size (24) and the padding. */
	EXPECT_ERR(vm_get_info(&rpl), 0);
	TEST_ASSERT(rpl.vcpu_count == expected, "vcpu_count %u, expected %u",
		    rpl.vcpu_count, expected);
}

static void test_vm_get_info(void)
{
	setup_vm(guest_idle_code);
	check_vcpu_count(1);
	teardown_vm();
}

static void test_vm_get_info_two_vcpus(void)
{
	struct kvm_vcpu *vcpus[2];

	test_vm = vm_create_with_vcpus(2, guest_idle_code, vcpus);
	test_vcpu = vcpus[0];
	hook_introspection(test_vm);

	check_vcpu_count(2);

	teardown_vm();
}

static void test_vm_control_events(void)
{
	setup_vm(guest_idle_code);
	allow_command(KVMI_VM_CONTROL_EVENTS);

	/* The event is not allowed yet: EINVAL checks come first. */
	EXPECT_ERR(vm_control_events(KVMI_VM_EVENT_UNHOOK, 1, 1, 0),
		   -KVM_EINVAL);
	EXPECT_ERR(vm_control_events(KVMI_VM_EVENT_UNHOOK, 1, 0, 1),
		   -KVM_EINVAL);
	EXPECT_ERR(vm_control_events(KVMI_VM_EVENT_UNHOOK, 2, 0, 0),
		   -KVM_EINVAL);
	EXPECT_ERR(vm_control_events(1, 1, 0, 0), -KVM_EINVAL);
	EXPECT_ERR(vm_control_events(KVMI_VM_EVENT_UNHOOK, 1, 0, 0),
		   -KVM_EPERM);
	EXPECT_ERR(vm_control_events(KVMI_VM_EVENT_UNHOOK, 0, 0, 0),
		   -KVM_EPERM);

	allow_event(KVMI_VM_EVENT_UNHOOK);

	EXPECT_ERR(vm_control_events(KVMI_VM_EVENT_UNHOOK, 1, 1, 0),
		   -KVM_EINVAL);
	EXPECT_ERR(vm_control_events(KVMI_VM_EVENT_UNHOOK, 1, 0, 1),
		   -KVM_EINVAL);
	EXPECT_ERR(vm_control_events(KVMI_VM_EVENT_UNHOOK, 2, 0, 0),
		   -KVM_EINVAL);
	EXPECT_ERR(vm_control_events(KVMI_VM_EVENT_UNHOOK, 0xff, 0, 0),
		   -KVM_EINVAL);
	EXPECT_ERR(vm_control_events(1, 1, 0, 0), -KVM_EINVAL);
	EXPECT_ERR(vm_control_events(2, 1, 0, 0), -KVM_EINVAL);
	EXPECT_ERR(vm_control_events(0xffff, 0, 0, 0), -KVM_EINVAL);

	/* None of these enabled the event. */
	EXPECT_ERR(__preunhook(test_vm), -ENOENT);

	EXPECT_ERR(vm_control_events(KVMI_VM_EVENT_UNHOOK, 1, 0, 0), 0);
	EXPECT_ERR(__preunhook(test_vm), 0);
	receive_vm_event(KVMI_VM_EVENT_UNHOOK);

	EXPECT_ERR(vm_control_events(KVMI_VM_EVENT_UNHOOK, 0, 0, 0), 0);
	EXPECT_ERR(__preunhook(test_vm), -ENOENT);

	expect_nothing(100);
	teardown_vm();
}

static void test_vm_read_physical(void)
{
	setup_mem_vm();

	guest_fill(0, PAGE_BYTES, 1);

	tool_check(0, PAGE_BYTES, 1);
	tool_check(PAGE_BYTES - 1, 1, 1);
	tool_check(0, 1, 1);
	tool_check(100, 200, 1);
	tool_check(PAGE_BYTES - 8, 8, 1);

	/* A change made by the guest is seen. */
	guest_fill(2000, 100, 2);
	tool_check(2000, 100, 2);
	tool_check(0, 2000, 1);
	tool_check(2100, PAGE_BYTES - 2100, 1);

	guest_finish();
	teardown_vm();
}

static void test_vm_write_physical(void)
{
	static __u8 buf[PAGE_BYTES];

	setup_mem_vm();

	guest_fill(0, PAGE_BYTES, 1);

	/* A full page. */
	tool_fill(0, PAGE_BYTES, 2);
	guest_check(0, PAGE_BYTES, 2);
	tool_check(0, PAGE_BYTES, 2);

	/* The last byte of the page. */
	tool_fill(PAGE_BYTES - 1, 1, 3);
	guest_check(PAGE_BYTES - 1, 1, 3);
	guest_check(0, PAGE_BYTES - 1, 2);

	/* The first byte of the page. */
	tool_fill(0, 1, 4);
	guest_check(0, 1, 4);
	guest_check(1, PAGE_BYTES - 2, 2);

	/* A range in the middle. */
	tool_fill(1000, 10, 5);
	guest_check(0, 1, 4);
	guest_check(1, 999, 2);
	guest_check(1000, 10, 5);
	guest_check(1010, PAGE_BYTES - 1011, 2);
	guest_check(PAGE_BYTES - 1, 1, 3);
	tool_check(1000, 10, 5);

	/* A single-byte write of a fixed value. */
	buf[0] = 0x5a;
	EXPECT_ERR(vm_write_physical(test_page_gpa + 4000, 1, buf), 0);
	EXPECT_ERR(vm_read_physical(test_page_gpa + 4000, 1, buf + 1), 0);
	TEST_ASSERT(buf[1] == 0x5a, "Read back %#x, expected 0x5a", buf[1]);

	guest_finish();
	teardown_vm();
}

static void test_vm_read_physical_invalid(void)
{
	static __u8 buf[2 * PAGE_BYTES];
	__u64 gpa;

	setup_mem_vm();
	gpa = test_page_gpa;

	/* Crossing the page. */
	EXPECT_ERR(vm_read_physical(gpa + PAGE_BYTES - 1, 2, buf),
		   -KVM_EINVAL);
	EXPECT_ERR(vm_read_physical(gpa + 1, PAGE_BYTES, buf), -KVM_EINVAL);
	EXPECT_ERR(vm_read_physical(gpa + 2048, 2049, buf), -KVM_EINVAL);

	/* Size 0 and more than a page. */
	EXPECT_ERR(vm_read_physical(gpa, 0, buf), -KVM_EINVAL);
	EXPECT_ERR(vm_read_physical(gpa, PAGE_BYTES + 1, buf), -KVM_EINVAL);
	EXPECT_ERR(vm_read_physical(gpa, 0xffff, buf), -KVM_EINVAL);

	/* Padding. */
	EXPECT_ERR(__vm_read_physical(gpa, 1, 1, 0, buf), -KVM_EINVAL);
	EXPECT_ERR(__vm_read_physical(gpa, 1, 0, 1, buf), -KVM_EINVAL);
	EXPECT_ERR(__vm_read_physical(INVALID_GPA, 1, 1, 0, buf),
		   -KVM_EINVAL);

	/* Beyond guest memory. */
	EXPECT_ERR(vm_read_physical(INVALID_GPA, 1, buf), -KVM_ENOENT);
	EXPECT_ERR(vm_read_physical(INVALID_GPA, PAGE_BYTES, buf),
		   -KVM_ENOENT);
	EXPECT_ERR(vm_read_physical(gpa_after_memslots(test_vm), 1, buf),
		   -KVM_ENOENT);

	/* The range checks come before the memslot lookup. */
	EXPECT_ERR(vm_read_physical(INVALID_GPA + PAGE_BYTES - 1, 2, buf),
		   -KVM_EINVAL);

	/* Still usable. */
	guest_fill(0, PAGE_BYTES, 9);
	tool_check(0, PAGE_BYTES, 9);

	guest_finish();
	teardown_vm();
}

static void test_vm_write_physical_invalid(void)
{
	static __u8 data[2 * PAGE_BYTES];
	__u64 gpa;

	setup_mem_vm();
	gpa = test_page_gpa;

	guest_fill(0, PAGE_BYTES, 5);
	fill_pattern(data, 0, sizeof(data), 6);

	/* Crossing the page. */
	EXPECT_ERR(vm_write_physical(gpa + PAGE_BYTES - 1, 2, data),
		   -KVM_EINVAL);
	EXPECT_ERR(vm_write_physical(gpa + 1, PAGE_BYTES, data),
		   -KVM_EINVAL);
	EXPECT_ERR(vm_write_physical(gpa + 2048, 2049, data), -KVM_EINVAL);

	/* Size 0 and more than a page. */
	EXPECT_ERR(vm_write_physical(gpa, 0, data), -KVM_EINVAL);
	EXPECT_ERR(vm_write_physical(gpa, PAGE_BYTES + 1, data),
		   -KVM_EINVAL);

	/* Padding. */
	EXPECT_ERR(__vm_write_physical(gpa, 16, 1, 0, data, 16),
		   -KVM_EINVAL);
	EXPECT_ERR(__vm_write_physical(gpa, 16, 0, 1, data, 16),
		   -KVM_EINVAL);

	/* Beyond guest memory. */
	EXPECT_ERR(vm_write_physical(INVALID_GPA, 16, data), -KVM_ENOENT);
	EXPECT_ERR(vm_write_physical(gpa_after_memslots(test_vm), 1, data),
		   -KVM_ENOENT);

	/* The guest sees its own data, untouched. */
	guest_check(0, PAGE_BYTES, 5);
	tool_check(0, PAGE_BYTES, 5);

	guest_finish();
	teardown_vm();
}

/* ------------------------------------------------------------------ */
/* Cases: vCPU commands and events                                     */
/* ------------------------------------------------------------------ */

/* Receive @n PAUSE events from vCPU 0, replying CONTINUE to each. */
static void handle_pause_events(unsigned int n)
{
	struct vcpu_event ev;
	__u32 last_seq = 0;

	while (n--) {
		expect_vcpu_event(KVMI_VCPU_EVENT_PAUSE, &ev);
		TEST_ASSERT(ev.common.vcpu == 0, "PAUSE from vCPU %u",
			    ev.common.vcpu);
		TEST_ASSERT(ev.hdr.seq > last_seq, "seq %u after %u",
			    ev.hdr.seq, last_seq);
		last_seq = ev.hdr.seq;
		reply_continue(&ev);
	}
	expect_nothing(100);
}

static void test_pause_vcpu(void)
{
	__u8 wait;

	setup_vcpu_vm();
	allow_command(KVMI_VM_PAUSE_VCPU);

	EXPECT_ERR(__vm_pause_vcpu(0, 0, 1, 0), -KVM_EINVAL);
	EXPECT_ERR(__vm_pause_vcpu(0, 0, 0, 1), -KVM_EINVAL);
	EXPECT_ERR(vm_pause_vcpu(0, 2), -KVM_EINVAL);
	EXPECT_ERR(vm_pause_vcpu(0, 0xff), -KVM_EINVAL);
	/* The PAUSE event is not allowed; checked before the vCPU index. */
	EXPECT_ERR(vm_pause_vcpu(0, 0), -KVM_EPERM);
	EXPECT_ERR(vm_pause_vcpu(0, 1), -KVM_EPERM);
	EXPECT_ERR(vm_pause_vcpu(5, 0), -KVM_EPERM);

	allow_event(KVMI_VCPU_EVENT_PAUSE);
	EXPECT_ERR(vm_pause_vcpu(1, 0), -KVM_EINVAL);
	EXPECT_ERR(vm_pause_vcpu(5, 1), -KVM_EINVAL);
	EXPECT_ERR(vm_pause_vcpu(0xffff, 0), -KVM_EINVAL);
	expect_nothing(100);

	for (wait = 0; wait <= 1; wait++) {
		EXPECT_ERR(vm_pause_vcpu(0, wait), 0);
		handle_pause_events(1);

		/* One event per command. */
		EXPECT_ERR(vm_pause_vcpu(0, wait), 0);
		EXPECT_ERR(vm_pause_vcpu(0, wait), 0);
		handle_pause_events(2);

		/* The vCPU keeps running. */
		EXPECT_RESULT(guest_run(GOP_NOP, 0, 0), 0);
	}

	finish_vcpu_vm();
}

static void test_pause_vcpu_busy(void)
{
	unsigned int i;

	/* The vCPU is not in KVM_RUN: the requests stay pending. */
	setup_vm(guest_vcpu_code);
	prepare_vcpu_guest();
	allow_command(KVMI_VM_PAUSE_VCPU);
	allow_event(KVMI_VCPU_EVENT_PAUSE);

	for (i = 0; i < MAX_PENDING_PAUSE; i++)
		EXPECT_ERR(vm_pause_vcpu(0, 0), 0);
	EXPECT_ERR(vm_pause_vcpu(0, 0), -KVM_EBUSY);
	EXPECT_ERR(vm_pause_vcpu(0, 1), -KVM_EBUSY);
	expect_nothing(100);

	/*
	 * Closing the connection drops the pending requests: the vCPU runs
	 * without sending any event.
	 */
	close_tool_socket();
	start_runner(0, test_vcpu);
	EXPECT_RESULT(guest_run(GOP_NOP, 0, 0), 0);

	expect_hooked_until_unhook();
	allow_command(KVMI_VM_PAUSE_VCPU);
	allow_event(KVMI_VCPU_EVENT_PAUSE);

	/* Room again. */
	EXPECT_ERR(vm_pause_vcpu(0, 1), 0);
	handle_pause_events(1);

	finish_vcpu_vm();
}

static void test_vcpu_common_checks(void)
{
	struct kvmi_vcpu_event_reply er = {};
	struct kvmi_vcpu_get_info_reply info;
	struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_UNINITIALIZED };
	struct kvm_vcpu *vcpus[2];
	struct kvmi_vcpu_hdr vh;
	__u8 zero[sizeof(vh) + sizeof(er)] = {};

	test_vm = vm_create_with_vcpus(2, guest_vcpu_code, vcpus);
	test_vcpu = vcpus[0];
	hook_introspection(test_vm);
	prepare_vcpu_guest();
	vcpu_mp_state_set(vcpus[1], &mp);

	/* Not allowed: checked first. */
	EXPECT_ERR(vcpu_get_info(0, &info), -KVM_EPERM);
	EXPECT_ERR(vcpu_get_info(2, &info), -KVM_EPERM);
	vh = (struct kvmi_vcpu_hdr){ .vcpu = 0, .padding1 = 1 };
	EXPECT_ERR(__do_vcpu_command(vh, KVMI_VCPU_GET_INFO, NULL, 0, NULL, 0),
		   -KVM_EPERM);

	allow_command(KVMI_VCPU_GET_INFO);
	vh = (struct kvmi_vcpu_hdr){ .vcpu = 0, .padding1 = 1 };
	EXPECT_ERR(__do_vcpu_command(vh, KVMI_VCPU_GET_INFO, NULL, 0, NULL, 0),
		   -KVM_EINVAL);
	vh = (struct kvmi_vcpu_hdr){ .vcpu = 0, .padding2 = 1 };
	EXPECT_ERR(__do_vcpu_command(vh, KVMI_VCPU_GET_INFO, NULL, 0, NULL, 0),
		   -KVM_EINVAL);
	vh = (struct kvmi_vcpu_hdr){ .vcpu = 9, .padding2 = 0x80000000 };
	EXPECT_ERR(__do_vcpu_command(vh, KVMI_VCPU_GET_INFO, NULL, 0, NULL, 0),
		   -KVM_EINVAL);
	EXPECT_ERR(vcpu_get_info(2, &info), -KVM_EINVAL);
	EXPECT_ERR(vcpu_get_info(0xffff, &info), -KVM_EINVAL);
	EXPECT_ERR(vcpu_get_info(1, &info), -KVM_EAGAIN);

	/* Event replies get the same checks, EPERM excepted. */
	vh = (struct kvmi_vcpu_hdr){ .vcpu = 0, .padding1 = 1 };
	EXPECT_ERR(__do_vcpu_command(vh, KVMI_VCPU_EVENT, &er, sizeof(er),
				     NULL, 0), -KVM_EINVAL);
	vh = (struct kvmi_vcpu_hdr){ .vcpu = 0, .padding2 = 1 };
	EXPECT_ERR(__do_vcpu_command(vh, KVMI_VCPU_EVENT, &er, sizeof(er),
				     NULL, 0), -KVM_EINVAL);
	EXPECT_ERR(do_vcpu_command(2, KVMI_VCPU_EVENT, &er, sizeof(er),
				   NULL, 0), -KVM_EINVAL);
	EXPECT_ERR(do_vcpu_command(1, KVMI_VCPU_EVENT, &er, sizeof(er),
				   NULL, 0), -KVM_EAGAIN);

	/* No running vCPU was needed so far. */
	start_runner(0, test_vcpu);
	EXPECT_ERR(vcpu_get_info(0, &info), 0);
	EXPECT_ERR(vcpu_get_info(1, &info), -KVM_EAGAIN);

	/* A reply while no event is pending: the connection is closed. */
	send_message(KVMI_VCPU_EVENT, zero, sizeof(zero));
	expect_eof();

	/* The vCPU goes on. */
	EXPECT_RESULT(guest_run(GOP_NOP, 0, 0), 0);
	finish_vcpu_vm();
}

static void test_vcpu_get_info(void)
{
	struct kvmi_vcpu_get_info_reply info;

	setup_vcpu_vm();
	allow_command(KVMI_VCPU_GET_INFO);

	/* receive_reply() checks the size: 8 + 8. */
	EXPECT_ERR(vcpu_get_info(0, &info), 0);
	pr_info("# tsc_speed %llu\n", (unsigned long long)info.tsc_speed);
	EXPECT_ERR(vcpu_get_info(0, &info), 0);

	finish_vcpu_vm();
}

static void test_vcpu_control_events(void)
{
	static const __u16 known[] = {
		KVMI_VCPU_EVENT_PAUSE, KVMI_VCPU_EVENT_HYPERCALL,
		KVMI_VCPU_EVENT_BREAKPOINT, KVMI_VCPU_EVENT_CR,
		KVMI_VCPU_EVENT_TRAP, KVMI_VCPU_EVENT_XSETBV,
		KVMI_VCPU_EVENT_DESCRIPTOR, KVMI_VCPU_EVENT_MSR,
		KVMI_VCPU_EVENT_PF, KVMI_VCPU_EVENT_SINGLESTEP,
	};
	static const __u16 unknown[] = {
		0, 2, KVMI_NEXT_VCPU_EVENT, 21, 0xffff,
	};
	unsigned int i;
	int err;

	setup_vcpu_vm();
	EXPECT_ERR(vcpu_control_events(0, KVMI_VCPU_EVENT_HYPERCALL, 1),
		   -KVM_EPERM);
	allow_command(KVMI_VCPU_CONTROL_EVENTS);

	/* Nothing allowed yet: the EINVAL checks come first. */
	EXPECT_ERR(__vcpu_control_events(0, KVMI_VCPU_EVENT_HYPERCALL, 1, 1, 0),
		   -KVM_EINVAL);
	EXPECT_ERR(__vcpu_control_events(0, KVMI_VCPU_EVENT_HYPERCALL, 1, 0, 1),
		   -KVM_EINVAL);
	EXPECT_ERR(vcpu_control_events(0, KVMI_VCPU_EVENT_HYPERCALL, 2),
		   -KVM_EINVAL);
	for (i = 0; i < ARRAY_SIZE(unknown); i++)
		EXPECT_ERR(vcpu_control_events(0, unknown[i], 1), -KVM_EINVAL);
	for (i = 0; i < ARRAY_SIZE(known); i++) {
		EXPECT_ERR(vcpu_control_events(0, known[i], 1), -KVM_EPERM);
		EXPECT_ERR(vcpu_control_events(0, known[i], 0), -KVM_EPERM);
	}

	for (i = 0; i < ARRAY_SIZE(known); i++) {
		allow_event(known[i]);
		EXPECT_ERR(__vcpu_control_events(0, known[i], 1, 0xff, 0),
			   -KVM_EINVAL);
		EXPECT_ERR(vcpu_control_events(0, known[i], 0xff), -KVM_EINVAL);

		err = vcpu_control_events(0, known[i], 1);
		/* VMX without descriptor-table exiting. */
		if (known[i] == KVMI_VCPU_EVENT_DESCRIPTOR &&
		    err == -KVM_EOPNOTSUPP)
			continue;
		EXPECT_ERR(err, 0);
		EXPECT_ERR(vcpu_control_events(0, known[i], 1), 0);
		EXPECT_ERR(vcpu_control_events(0, known[i], 0), 0);
		EXPECT_ERR(vcpu_control_events(0, known[i], 0), 0);
	}

	allow_event(-1);
	for (i = 0; i < ARRAY_SIZE(unknown); i++)
		EXPECT_ERR(vcpu_control_events(0, unknown[i], 1), -KVM_EINVAL);

	/* Disallowing an enabled event: even disabling it is refused. */
	EXPECT_ERR(vcpu_control_events(0, KVMI_VCPU_EVENT_HYPERCALL, 1), 0);
	EXPECT_ERR(__event_feature(test_vm, 0, KVMI_VCPU_EVENT_HYPERCALL), 0);
	EXPECT_ERR(vcpu_control_events(0, KVMI_VCPU_EVENT_HYPERCALL, 0),
		   -KVM_EPERM);

	finish_vcpu_vm();
}

static void test_vcpu_get_registers(void)
{
	static const __u32 msrs[] = { MSR_EFER, MSR_IA32_SYSENTER_CS };
	static __u32 many[MAX_GET_REGISTERS_MSRS + 1];
	static struct registers_reply rpl;
	__u32 bad[] = { MSR_EFER, 0xdeadbeef };
	struct kvm_sregs sregs;
	struct vcpu_event ev;
	__u64 efer, sysenter_cs;
	unsigned int i;

	setup_vm(guest_vcpu_code);
	prepare_vcpu_guest();

	/* Stable while the guest runs: taken before KVM_RUN. */
	vcpu_sregs_get(test_vcpu, &sregs);
	efer = vcpu_get_msr(test_vcpu, MSR_EFER);
	sysenter_cs = vcpu_get_msr(test_vcpu, MSR_IA32_SYSENTER_CS);

	start_runner(0, test_vcpu);
	allow_command(KVMI_VCPU_GET_REGISTERS);
	enable_vcpu_event(0, KVMI_VCPU_EVENT_HYPERCALL);

	/* Outside an event too. */
	EXPECT_ERR(vcpu_get_registers(0, msrs, ARRAY_SIZE(msrs), &rpl), 0);
	TEST_ASSERT(rpl.r.mode == 8, "mode %u", rpl.r.mode);
	TEST_ASSERT(rpl.r.sregs.cr3 == sregs.cr3 &&
		    rpl.r.sregs.cr0 == sregs.cr0 &&
		    rpl.r.sregs.cr4 == sregs.cr4 &&
		    rpl.r.sregs.efer == sregs.efer,
		    "GET_REGISTERS: control registers differ from KVM_GET_SREGS");

	/* The vCPU is stopped in the event: its state is stable. */
	hypercall_event(&ev);
	TEST_ASSERT(ev.common.arch.regs.rbx == GUEST_RBX, "rbx %#llx",
		    ev.common.arch.regs.rbx);

	EXPECT_ERR(vcpu_get_registers(0, NULL, 0, &rpl), 0);
	TEST_ASSERT(rpl.r.mode == 8, "mode %u", rpl.r.mode);
	TEST_ASSERT(rpl.r.msrs.nmsrs == 0, "nmsrs %u", rpl.r.msrs.nmsrs);
	TEST_ASSERT(!memcmp(&rpl.r.regs, &ev.common.arch.regs,
			    sizeof(rpl.r.regs)),
		    "GET_REGISTERS: regs differ from the event's");
	TEST_ASSERT(!memcmp(&rpl.r.sregs, &ev.common.arch.sregs,
			    sizeof(rpl.r.sregs)),
		    "GET_REGISTERS: sregs differ from the event's");

	EXPECT_ERR(vcpu_get_registers(0, msrs, ARRAY_SIZE(msrs), &rpl), 0);
	TEST_ASSERT(rpl.r.msrs.nmsrs == 2, "nmsrs %u", rpl.r.msrs.nmsrs);
	TEST_ASSERT(rpl.entries[0].index == MSR_EFER &&
		    rpl.entries[1].index == MSR_IA32_SYSENTER_CS,
		    "MSR indexes %#x %#x", rpl.entries[0].index,
		    rpl.entries[1].index);
	TEST_ASSERT(rpl.entries[0].data == efer &&
		    rpl.entries[0].data == ev.common.arch.msrs.efer,
		    "EFER %#llx, KVM_GET_MSRS %#llx, event %#llx",
		    rpl.entries[0].data, efer, ev.common.arch.msrs.efer);
	TEST_ASSERT(rpl.entries[1].data == sysenter_cs &&
		    rpl.entries[1].data == ev.common.arch.msrs.sysenter_cs,
		    "SYSENTER_CS %#llx, KVM_GET_MSRS %#llx, event %#llx",
		    rpl.entries[1].data, sysenter_cs,
		    ev.common.arch.msrs.sysenter_cs);

	/* The largest request: 481 MSRs fill the reply (8 + 472 + 16 * 481). */
	for (i = 0; i < ARRAY_SIZE(many); i++)
		many[i] = MSR_EFER;
	EXPECT_ERR(vcpu_get_registers(0, many, MAX_GET_REGISTERS_MSRS, &rpl),
		   0);
	TEST_ASSERT(rpl.r.msrs.nmsrs == MAX_GET_REGISTERS_MSRS &&
		    rpl.entries[MAX_GET_REGISTERS_MSRS - 1].data == efer,
		    "481 MSRs: nmsrs %u", rpl.r.msrs.nmsrs);

	/* Errors. */
	EXPECT_ERR(__vcpu_get_registers(0, 0, 1, 0, NULL, 0, &rpl),
		   -KVM_EINVAL);
	EXPECT_ERR(__vcpu_get_registers(0, 0, 0, 1, NULL, 0, &rpl),
		   -KVM_EINVAL);
	EXPECT_ERR(vcpu_get_registers(0, many, MAX_GET_REGISTERS_MSRS + 1,
				      &rpl), -KVM_EINVAL);
	EXPECT_ERR(__vcpu_get_registers(0, 2, 0, 0, msrs, 1, &rpl),
		   -KVM_EINVAL);
	EXPECT_ERR(__vcpu_get_registers(0, 1, 0, 0, NULL, 0, &rpl),
		   -KVM_EINVAL);
	EXPECT_ERR(vcpu_get_registers(0, bad, ARRAY_SIZE(bad), &rpl),
		   -KVM_EINVAL);
	EXPECT_ERR(vcpu_get_registers(0, bad + 1, 1, &rpl), -KVM_EINVAL);

	reply_continue(&ev);
	EXPECT_RESULT(runner_result(0), 0);

	finish_vcpu_vm();
}

static void test_vcpu_set_registers(void)
{
	static struct registers_reply rpl;
	struct vcpu_event ev;
	struct kvm_regs regs = {};

	setup_vcpu_vm();
	allow_command(KVMI_VCPU_SET_REGISTERS);
	allow_command(KVMI_VCPU_GET_REGISTERS);
	enable_vcpu_event(0, KVMI_VCPU_EVENT_HYPERCALL);

	/* Not waiting for a reply. */
	EXPECT_ERR(vcpu_set_registers(0, &regs, sizeof(regs)),
		   -KVM_EOPNOTSUPP);
	EXPECT_ERR(vcpu_set_registers(0, &regs, sizeof(regs) - 8),
		   -KVM_EINVAL);
	EXPECT_ERR(vcpu_set_registers(0, &regs, 0), -KVM_EINVAL);

	guest_start(GOP_HYPERCALL_SET_REGS,
		    KVM_HC_XEN_HVM_OP_GUEST_REQUEST_VM_EVENT, 0);
	expect_vcpu_event(KVMI_VCPU_EVENT_HYPERCALL, &ev);

	regs = ev.common.arch.regs;
	EXPECT_ERR(vcpu_set_registers(0, &regs, sizeof(regs) - 1),
		   -KVM_EINVAL);

	/* Staged: a second SET_REGISTERS replaces the first. */
	regs.rbx = 1;
	regs.rcx = 2;
	regs.rdx = 3;
	EXPECT_ERR(vcpu_set_registers(0, &regs, sizeof(regs)), 0);
	regs.rbx = TOOL_RBX;
	regs.rcx = TOOL_RCX;
	regs.rdx = TOOL_RDX;
	EXPECT_ERR(vcpu_set_registers(0, &regs, sizeof(regs)), 0);

	/* Not written before the reply. */
	EXPECT_ERR(vcpu_get_registers(0, NULL, 0, &rpl), 0);
	TEST_ASSERT(rpl.r.regs.rbx == GUEST_RBX, "rbx %#llx before the reply",
		    rpl.r.regs.rbx);

	/* The guest checks rbx, rcx and rdx. */
	reply_continue(&ev);
	EXPECT_RESULT(runner_result(0), 0);

	/* A later event does not reuse the staged registers. */
	hypercall_event(&ev);
	reply_continue(&ev);
	EXPECT_RESULT(runner_result(0), 0);

	finish_vcpu_vm();
}

static bool vcpu_has_cpuid_leaf(struct kvm_vcpu *vcpu, __u32 function)
{
	__u32 i;

	for (i = 0; i < vcpu->cpuid->nent; i++)
		if (vcpu->cpuid->entries[i].function == function)
			return true;
	return false;
}

static void test_vcpu_get_cpuid(void)
{
	struct kvmi_vcpu_get_cpuid_reply rpl;
	struct kvm_cpuid_entry2 *e;

	setup_vcpu_vm();
	allow_command(KVMI_VCPU_GET_CPUID);

	guest_run(GOP_CPUID, 0, 0);
	sync_global_from_guest(test_vm, guest_cpuid0);

	EXPECT_ERR(vcpu_get_cpuid(0, 0, 0, &rpl), 0);
	TEST_ASSERT(rpl.eax == guest_cpuid0[0] && rpl.ebx == guest_cpuid0[1] &&
		    rpl.ecx == guest_cpuid0[2] && rpl.edx == guest_cpuid0[3],
		    "CPUID(0): KVMI %x %x %x %x, guest %x %x %x %x",
		    rpl.eax, rpl.ebx, rpl.ecx, rpl.edx, guest_cpuid0[0],
		    guest_cpuid0[1], guest_cpuid0[2], guest_cpuid0[3]);

	e = vcpu_get_cpuid_entry(test_vcpu, 0);
	TEST_ASSERT(rpl.eax == e->eax && rpl.ebx == e->ebx &&
		    rpl.ecx == e->ecx && rpl.edx == e->edx,
		    "CPUID(0) differs from the vCPU's CPUID table");

	e = vcpu_get_cpuid_entry(test_vcpu, 1);
	EXPECT_ERR(vcpu_get_cpuid(0, 1, 0, &rpl), 0);
	TEST_ASSERT(rpl.eax == e->eax, "CPUID(1).eax %x, expected %x",
		    rpl.eax, e->eax);

	TEST_ASSERT(!vcpu_has_cpuid_leaf(test_vcpu, 0x8fffffff),
		    "The vCPU has CPUID leaf 0x8fffffff");
	EXPECT_ERR(vcpu_get_cpuid(0, 0x8fffffff, 0, &rpl), -KVM_ENOENT);

	finish_vcpu_vm();
}

static void test_hypercall_event(void)
{
	struct vcpu_event ev;
	__u32 seq;

	setup_vcpu_vm();

	/* Not enabled: no event. */
	guest_start_hypercall();
	EXPECT_RESULT(runner_result(0), HC_NO_TOOL);
	expect_nothing(100);

	allow_command(KVMI_VCPU_CONTROL_EVENTS);
	EXPECT_ERR(vcpu_control_events(0, KVMI_VCPU_EVENT_HYPERCALL, 1),
		   -KVM_EPERM);
	enable_vcpu_event(0, KVMI_VCPU_EVENT_HYPERCALL);

	hypercall_event(&ev);
	TEST_ASSERT(ev.common.arch.mode == 8, "mode %u", ev.common.arch.mode);
	TEST_ASSERT(ev.common.arch.regs.rax == KVM_HC_XEN_HVM_OP &&
		    ev.common.arch.regs.rdi ==
		    KVM_HC_XEN_HVM_OP_GUEST_REQUEST_VM_EVENT &&
		    ev.common.arch.regs.rsi == 0 &&
		    ev.common.arch.regs.rbx == GUEST_RBX,
		    "Event regs: rax %#llx rdi %#llx rsi %#llx rbx %#llx",
		    ev.common.arch.regs.rax, ev.common.arch.regs.rdi,
		    ev.common.arch.regs.rsi, ev.common.arch.regs.rbx);
	TEST_ASSERT(ev.common.arch.sregs.efer & EFER_LMA, "efer %#llx",
		    ev.common.arch.sregs.efer);
	TEST_ASSERT(ev.common.arch.msrs.efer == ev.common.arch.sregs.efer,
		    "msrs.efer %#llx", ev.common.arch.msrs.efer);
	seq = ev.hdr.seq;
	reply_continue(&ev);
	EXPECT_RESULT(runner_result(0), 0);

	/* Other arguments: not the agent hypercall. */
	guest_start(GOP_HYPERCALL, 25, 0);
	EXPECT_RESULT(runner_result(0), HC_NO_TOOL);
	guest_start(GOP_HYPERCALL, KVM_HC_XEN_HVM_OP_GUEST_REQUEST_VM_EVENT, 1);
	EXPECT_RESULT(runner_result(0), HC_NO_TOOL);
	expect_nothing(100);

	hypercall_event(&ev);
	TEST_ASSERT(ev.hdr.seq > seq, "seq %u after %u", ev.hdr.seq, seq);
	reply_continue(&ev);
	EXPECT_RESULT(runner_result(0), 0);

	/* Disabled. */
	EXPECT_ERR(vcpu_control_events(0, KVMI_VCPU_EVENT_HYPERCALL, 0), 0);
	guest_start_hypercall();
	EXPECT_RESULT(runner_result(0), HC_NO_TOOL);
	expect_nothing(100);

	finish_vcpu_vm();
}

enum {
	BAD_REPLY_EVENT_ID,
	BAD_REPLY_ACTION,
	BAD_REPLY_UNKNOWN_ACTION,
	BAD_REPLY_SEQ,
	BAD_REPLY_PADDING1,
	BAD_REPLY_PADDING2,
	BAD_REPLY_LONG,
	BAD_REPLY_SHORT,
	NR_BAD_REPLIES,
};

/*
 * The vCPU went on as if there were no tool; after UNHOOK and a new HOOK,
 * the events flow again.
 */
static void expect_resumed_then_rehook(void)
{
	struct vcpu_event ev;

	EXPECT_RESULT(runner_result(0), HC_NO_TOOL);
	EXPECT_RESULT(guest_run(GOP_NOP, 0, 0), 0);

	unhook_introspection(test_vm);
	hook_introspection(test_vm);
	enable_vcpu_event(0, KVMI_VCPU_EVENT_HYPERCALL);
	hypercall_event(&ev);
	reply_continue(&ev);
	EXPECT_RESULT(runner_result(0), 0);
}

static void bad_reply(int kind)
{
	struct kvmi_vcpu_event_reply rpl = {
		.action = KVMI_EVENT_ACTION_CONTINUE,
		.event = KVMI_VCPU_EVENT_HYPERCALL,
	};
	struct kvmi_vcpu_hdr vh = {};
	size_t size = sizeof(vh) + sizeof(rpl);
	struct vcpu_event ev;
	__u32 seq;

	setup_vcpu_vm();
	enable_vcpu_event(0, KVMI_VCPU_EVENT_HYPERCALL);
	hypercall_event(&ev);
	seq = ev.hdr.seq;

	/* A common-check error: an error reply; the vCPU keeps waiting. */
	vh.padding1 = 1;
	__reply_to_event(seq, vh, &rpl, NULL, 0, size);
	EXPECT_ERR(receive_reply(KVMI_VCPU_EVENT, seq, NULL, 0), -KVM_EINVAL);
	vh.padding1 = 0;

	switch (kind) {
	case BAD_REPLY_EVENT_ID:
		rpl.event = KVMI_VCPU_EVENT_BREAKPOINT;
		break;
	case BAD_REPLY_ACTION:
		rpl.action = KVMI_EVENT_ACTION_RETRY;
		break;
	case BAD_REPLY_UNKNOWN_ACTION:
		rpl.action = 3;
		break;
	case BAD_REPLY_SEQ:
		seq++;
		break;
	case BAD_REPLY_PADDING1:
		rpl.padding1 = 1;
		break;
	case BAD_REPLY_PADDING2:
		rpl.padding2 = 1;
		break;
	case BAD_REPLY_LONG:
		size += 8;
		break;
	case BAD_REPLY_SHORT:
		size -= 1;
		break;
	}
	__reply_to_event(seq, vh, &rpl, NULL, 0, size);

	/* A protocol error: closed; the vCPU resumes as without a tool. */
	expect_eof();
	expect_resumed_then_rehook();

	finish_vcpu_vm();
}

static void test_event_reply_errors(void)
{
	int kind;

	for (kind = 0; kind < NR_BAD_REPLIES; kind++) {
		pr_info("# bad reply %d\n", kind);
		bad_reply(kind);
	}
}

static void test_crash_action(void)
{
	struct vcpu_event ev;
	struct kvm_regs regs;

	setup_vcpu_vm();
	enable_vcpu_event(0, KVMI_VCPU_EVENT_HYPERCALL);
	hypercall_event(&ev);
	reply_to_event(&ev, KVMI_EVENT_ACTION_CRASH);
	check_crash_exit();

	/* rax = -KVM_ENOSYS, RIP still on the VMCALL. */
	vcpu_regs_get(test_vcpu, &regs);
	EXPECT_RESULT(regs.rax, HC_NO_TOOL);
	EXPECT_RESULT(regs.rip, ev.common.arch.regs.rip);

	teardown_vm();
}

static void test_pause_crash(void)
{
	struct vcpu_event ev;

	setup_vcpu_vm();
	allow_command(KVMI_VM_PAUSE_VCPU);
	allow_event(KVMI_VCPU_EVENT_PAUSE);
	EXPECT_ERR(vm_pause_vcpu(0, 1), 0);
	expect_vcpu_event(KVMI_VCPU_EVENT_PAUSE, &ev);
	reply_to_event(&ev, KVMI_EVENT_ACTION_CRASH);
	check_crash_exit();

	teardown_vm();
}

static void test_close_while_waiting(void)
{
	struct vcpu_event ev;

	setup_vcpu_vm();
	enable_vcpu_event(0, KVMI_VCPU_EVENT_HYPERCALL);
	hypercall_event(&ev);

	close_tool_socket();
	expect_resumed_then_rehook();

	finish_vcpu_vm();
}

static void test_unhook_while_waiting(void)
{
	struct vcpu_event ev;

	setup_vcpu_vm();
	enable_vcpu_event(0, KVMI_VCPU_EVENT_HYPERCALL);
	hypercall_event(&ev);

	EXPECT_ERR(__unhook(test_vm), 0);

	expect_eof();
	EXPECT_RESULT(runner_result(0), HC_NO_TOOL);

	/* Unhooked: no event. */
	guest_start_hypercall();
	EXPECT_RESULT(runner_result(0), HC_NO_TOOL);

	finish_vcpu_vm();
}

static void test_preunhook_while_waiting(void)
{
	struct vcpu_event ev;
	__u32 seq;

	setup_vcpu_vm();
	enable_unhook_event();
	enable_vcpu_event(0, KVMI_VCPU_EVENT_HYPERCALL);
	hypercall_event(&ev);

	EXPECT_ERR(__preunhook(test_vm), 0);
	seq = receive_vm_event(KVMI_VM_EVENT_UNHOOK);
	TEST_ASSERT(seq > ev.hdr.seq, "UNHOOK seq %u, HYPERCALL seq %u", seq,
		    ev.hdr.seq);

	/* The tool can still answer. */
	reply_continue(&ev);
	EXPECT_RESULT(runner_result(0), 0);

	close_tool_socket();
	EXPECT_ERR(__unhook(test_vm), 0);

	finish_vcpu_vm();
}

static void test_multi_vcpu_events(void)
{
	const unsigned int total = NR_MULTI_VCPUS * MULTI_HYPERCALLS;
	struct kvm_vcpu *vcpus[NR_MULTI_VCPUS];
	unsigned int count[NR_MULTI_VCPUS] = {};
	__u32 last_seq[NR_MULTI_VCPUS] = {};
	static __u32 seqs[NR_MULTI_VCPUS * MULTI_HYPERCALLS];
	struct vcpu_event ev;
	unsigned int i, j;
	__u16 v;

	test_vm = vm_create_with_vcpus(NR_MULTI_VCPUS, guest_vcpu_code, vcpus);
	test_vcpu = vcpus[0];
	hook_introspection(test_vm);
	prepare_vcpu_guest();

	for (i = 0; i < NR_MULTI_VCPUS; i++)
		start_runner(i, vcpus[i]);
	for (i = 0; i < NR_MULTI_VCPUS; i++)
		enable_vcpu_event(i, KVMI_VCPU_EVENT_HYPERCALL);

	guest_start(GOP_HYPERCALL_LOOP, MULTI_HYPERCALLS, 0);

	for (i = 0; i < total; i++) {
		expect_vcpu_event(KVMI_VCPU_EVENT_HYPERCALL, &ev);
		v = ev.common.vcpu;
		TEST_ASSERT(v < NR_MULTI_VCPUS, "Event from vCPU %u", v);
		TEST_ASSERT(++count[v] <= MULTI_HYPERCALLS,
			    "Too many events from vCPU %u", v);
		TEST_ASSERT(ev.hdr.seq > last_seq[v],
			    "vCPU %u: seq %u after %u", v, ev.hdr.seq,
			    last_seq[v]);
		last_seq[v] = ev.hdr.seq;
		for (j = 0; j < i; j++)
			TEST_ASSERT(seqs[j] != ev.hdr.seq, "seq %u reused",
				    ev.hdr.seq);
		seqs[i] = ev.hdr.seq;
		reply_continue(&ev);
	}

	/* Each guest asserted rax == 0 after every hypercall. */
	for (i = 0; i < NR_MULTI_VCPUS; i++)
		EXPECT_RESULT(runner_result(i), 0);
	expect_nothing(100);

	finish_vcpu_vm();
}

static void test_commands_while_waiting(void)
{
	static struct registers_reply rpl;
	struct kvmi_vcpu_get_cpuid_reply cpuid;
	struct kvmi_vcpu_get_info_reply info;
	struct vcpu_event ev;

	setup_vcpu_vm();
	allow_command(KVMI_VCPU_GET_REGISTERS);
	allow_command(KVMI_VCPU_GET_INFO);
	allow_command(KVMI_VCPU_GET_CPUID);
	enable_vcpu_event(0, KVMI_VCPU_EVENT_HYPERCALL);
	hypercall_event(&ev);

	EXPECT_ERR(vcpu_get_registers(0, NULL, 0, &rpl), 0);
	TEST_ASSERT(rpl.r.regs.rip == ev.common.arch.regs.rip,
		    "rip %#llx, event rip %#llx", rpl.r.regs.rip,
		    ev.common.arch.regs.rip);
	EXPECT_ERR(vcpu_get_info(0, &info), 0);
	EXPECT_ERR(vcpu_get_cpuid(0, 0, 0, &cpuid), 0);
	EXPECT_ERR(vcpu_control_events(0, KVMI_VCPU_EVENT_HYPERCALL, 1), 0);

	reply_continue(&ev);
	EXPECT_RESULT(runner_result(0), 0);

	finish_vcpu_vm();
}

/* The address of the INT3 in kvmi_int3_fn() (maybe after an ENDBR64). */
static __u64 int3_gva(void)
{
	const __u8 *p = (const __u8 *)kvmi_int3_fn;
	int i;

	for (i = 0; i < 8; i++)
		if (p[i] == 0xcc)
			return (__u64)&p[i];

	TEST_FAIL("No INT3 in kvmi_int3_fn()");
	return 0;
}

/* INT3 on vCPU 0 with BREAKPOINT enabled: check the event. */
static void breakpoint_event(struct vcpu_event *ev, __u64 gpa)
{
	guest_start(GOP_INT3, 0, 0);
	expect_vcpu_event(KVMI_VCPU_EVENT_BREAKPOINT, ev);
	TEST_ASSERT(ev->bp.gpa == gpa, "gpa %#llx, expected %#llx",
		    ev->bp.gpa, (unsigned long long)gpa);
	TEST_ASSERT(ev->bp.insn_len == 1, "insn_len %u", ev->bp.insn_len);
	TEST_ASSERT(ev->common.arch.regs.rip == int3_gva(),
		    "rip %#llx, expected %#llx", ev->common.arch.regs.rip,
		    (unsigned long long)int3_gva());
}

static void test_breakpoint_event(void)
{
	struct vcpu_event ev;
	struct kvm_regs regs;
	__u64 gpa;

	require_bp_intercept();

	setup_vm(guest_vcpu_code);
	prepare_vcpu_guest();
	vm_install_exception_handler(test_vm, BP_VECTOR, guest_bp_handler);
	gpa = addr_gva2gpa(test_vm, int3_gva());
	start_runner(0, test_vcpu);
	allow_command(KVMI_VCPU_SET_REGISTERS);
	enable_vcpu_event(0, KVMI_VCPU_EVENT_BREAKPOINT);

	/* CONTINUE: the guest's handler runs. */
	breakpoint_event(&ev, gpa);
	reply_continue(&ev);
	EXPECT_RESULT(runner_result(0), 1);

	/* RETRY after skipping the INT3: no #BP. */
	breakpoint_event(&ev, gpa);
	regs = ev.common.arch.regs;
	regs.rip += 1;
	EXPECT_ERR(vcpu_set_registers(0, &regs, sizeof(regs)), 0);
	reply_to_event(&ev, KVMI_EVENT_ACTION_RETRY);
	EXPECT_RESULT(runner_result(0), 1);

	/* Disabled: the guest's handler, no event. */
	EXPECT_ERR(vcpu_control_events(0, KVMI_VCPU_EVENT_BREAKPOINT, 0), 0);
	EXPECT_RESULT(guest_run(GOP_INT3, 0, 0), 2);
	expect_nothing(100);

	/* Unhooked: the same. */
	EXPECT_ERR(vcpu_control_events(0, KVMI_VCPU_EVENT_BREAKPOINT, 1), 0);
	unhook_introspection(test_vm);
	EXPECT_RESULT(guest_run(GOP_INT3, 0, 0), 3);

	/* CRASH: nothing injected. */
	hook_introspection(test_vm);
	enable_vcpu_event(0, KVMI_VCPU_EVENT_BREAKPOINT);
	breakpoint_event(&ev, gpa);
	reply_to_event(&ev, KVMI_EVENT_ACTION_CRASH);
	check_crash_exit();
	sync_global_from_guest(test_vm, guest_bp_count);
	EXPECT_RESULT(guest_bp_count, 3);

	teardown_vm();
}

static void test_breakpoint_vs_guest_debug(void)
{
	struct kvm_guest_debug dbg = {
		.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_SW_BP,
	};

	setup_vm(guest_vcpu_code);
	prepare_vcpu_guest();
	vcpu_guest_debug_set(test_vcpu, &dbg);
	start_runner(0, test_vcpu);

	allow_event(KVMI_VCPU_EVENT_BREAKPOINT);
	allow_command(KVMI_VCPU_CONTROL_EVENTS);
	EXPECT_ERR(vcpu_control_events(0, KVMI_VCPU_EVENT_BREAKPOINT, 1),
		   -KVM_EBUSY);
	EXPECT_ERR(vcpu_control_events(0, KVMI_VCPU_EVENT_BREAKPOINT, 0), 0);
	/* Only BREAKPOINT is affected. */
	enable_vcpu_event(0, KVMI_VCPU_EVENT_HYPERCALL);

	stop_runners(1);
	dbg.control = 0;
	vcpu_guest_debug_set(test_vcpu, &dbg);
	start_runner(0, test_vcpu);

	EXPECT_ERR(vcpu_control_events(0, KVMI_VCPU_EVENT_BREAKPOINT, 1), 0);

	finish_vcpu_vm();
}

/* ------------------------------------------------------------------ */
/* Cases: x86 control events and state (issue 4)                      */
/* ------------------------------------------------------------------ */

/* The last guest write faulted with this vector (0: it did not). */
static __u64 guest_fault_vector(void)
{
	sync_global_from_guest(test_vm, guest_fault);
	return guest_fault;
}

static void test_control_cr(void)
{
	static const __u8 crs[] = { 0, 3, 4 };
	unsigned int i;

	setup_vcpu_vm();
	allow_command(KVMI_VCPU_CONTROL_CR);

	EXPECT_ERR(__vcpu_control_cr(0, 4, 1, 1, 0), -KVM_EINVAL);
	EXPECT_ERR(__vcpu_control_cr(0, 4, 1, 0, 1), -KVM_EINVAL);
	EXPECT_ERR(vcpu_control_cr(0, 4, 2), -KVM_EINVAL);
	EXPECT_ERR(vcpu_control_cr(0, 1, 1), -KVM_EINVAL);
	EXPECT_ERR(vcpu_control_cr(0, 2, 1), -KVM_EINVAL);
	EXPECT_ERR(vcpu_control_cr(0, 8, 1), -KVM_EINVAL);
	EXPECT_ERR(vcpu_control_cr(0, 8, 0), -KVM_EINVAL);

	for (i = 0; i < ARRAY_SIZE(crs); i++) {
		EXPECT_ERR(vcpu_control_cr(0, crs[i], 1), 0);
		EXPECT_ERR(vcpu_control_cr(0, crs[i], 1), 0);
		EXPECT_ERR(vcpu_control_cr(0, crs[i], 0), 0);
		EXPECT_ERR(vcpu_control_cr(0, crs[i], 0), 0);
	}

	EXPECT_RESULT(guest_run(GOP_NOP, 0, 0), 0);
	expect_nothing(100);
	finish_vcpu_vm();
}

/* A register that the guest writes: a control register or an MSR. */
struct write_test {
	__u16 event;		/* KVMI_VCPU_EVENT_CR or KVMI_VCPU_EVENT_MSR */
	__u32 reg;		/* the CR number or the MSR index */
	__u64 guest_bits;	/* toggled by the guest's write */
	__u64 tool_bits;	/* toggled by the tool's new_val instead */
	__u64 bad_bits;		/* toggled: an invalid new_val (0: none) */
};

/* CR0.WP and CR4.OSXMMEXCPT/PGE are guest-owned with VMX and EPT. */
static const struct write_test cr_tests[] = {
	{ KVMI_VCPU_EVENT_CR, 0, X86_CR0_WP, X86_CR0_AM, BIT_ULL(63) },
	/* PWT, PCD, above any MAXPHYADDR. */
	{ KVMI_VCPU_EVENT_CR, 3, BIT_ULL(3), BIT_ULL(4), BIT_ULL(52) },
	{ KVMI_VCPU_EVENT_CR, 4, X86_CR4_OSXMMEXCPT, X86_CR4_PGE, BIT_ULL(63) },
};

/* KVM passes LSTAR through on SVM, SYSENTER_CS on VMX. */
static const struct write_test msr_tests[] = {
	/* Bit 63 makes LSTAR non-canonical. */
	{ KVMI_VCPU_EVENT_MSR, MSR_LSTAR, 0x1000, 0x2000, BIT_ULL(63) },
	{ KVMI_VCPU_EVENT_MSR, MSR_IA32_SYSENTER_CS, 0x10, 0x20, 0 },
};

static bool is_cr(const struct write_test *t)
{
	return t->event == KVMI_VCPU_EVENT_CR;
}

static int control_write(const struct write_test *t, __u8 enable)
{
	return is_cr(t) ? vcpu_control_cr(0, t->reg, enable) :
			  vcpu_control_msr(0, t->reg, enable);
}

static __u64 guest_read_reg(const struct write_test *t)
{
	return guest_run(is_cr(t) ? GOP_READ_CR : GOP_RDMSR, t->reg, 0);
}

/* The guest writes @val and reads the register back. */
static __u64 guest_write_reg(const struct write_test *t, __u64 val)
{
	return guest_run(is_cr(t) ? GOP_WRITE_CR : GOP_WRMSR, t->reg, val);
}

/* The guest starts writing @val over @old: check the event. */
static void write_event(const struct write_test *t, struct vcpu_event *ev,
			__u64 old, __u64 val)
{
	__u64 reg, old_value, new_value;

	guest_start(is_cr(t) ? GOP_WRITE_CR : GOP_WRMSR, t->reg, val);
	expect_vcpu_event(t->event, ev);

	reg = is_cr(t) ? ev->cr.cr : ev->msr.msr;
	old_value = is_cr(t) ? ev->cr.old_value : ev->msr.old_value;
	new_value = is_cr(t) ? ev->cr.new_value : ev->msr.new_value;
	TEST_ASSERT(reg == t->reg && old_value == old && new_value == val,
		    "Event %u: reg %#llx, old %#llx, new %#llx; expected %#x, %#llx, %#llx",
		    t->event, reg, old_value, new_value, t->reg, old, val);
}

/*
 * The guest writes @val over @old and the tool answers CONTINUE with
 * @new_val.  Returns the value that the guest reads back.
 */
static __u64 write_reply(const struct write_test *t, __u64 old, __u64 val,
			 __u64 new_val)
{
	struct vcpu_event ev;

	write_event(t, &ev, old, val);
	reply_with_value(&ev, KVMI_EVENT_ACTION_CONTINUE, new_val);
	return runner_result(0);
}

/* The guest toggles guest_bits and back, without any event. */
static void write_no_event(const struct write_test *t)
{
	__u64 old = guest_read_reg(t);

	EXPECT_RESULT(guest_write_reg(t, old ^ t->guest_bits),
		      old ^ t->guest_bits);
	EXPECT_RESULT(guest_write_reg(t, old), old);
	expect_nothing(100);
}

/* Every answer to a write event. */
static void check_write_events(const struct write_test *t)
{
	__u64 old = guest_read_reg(t);
	__u64 a = old ^ t->guest_bits, b = old ^ t->tool_bits;

	/* new_val: the guest's value, another one, the old one (blocked). */
	EXPECT_RESULT(write_reply(t, old, a, a), a);
	EXPECT_RESULT(write_reply(t, a, old, b), b);
	EXPECT_RESULT(write_reply(t, b, old, b), b);
	EXPECT_RESULT(write_reply(t, b, old, old), old);
	EXPECT_RESULT(guest_fault_vector(), 0);

	/* A value that the guest may not write: #GP, nothing written. */
	if (t->bad_bits) {
		EXPECT_RESULT(write_reply(t, old, a, old ^ t->bad_bits), old);
		EXPECT_RESULT(guest_fault_vector(), GP_VECTOR);
	}

	/* The same value: no event. */
	EXPECT_RESULT(guest_write_reg(t, old), old);
	expect_nothing(100);
}

/* CRASH: the write is not performed, RIP goes past the instruction. */
static void check_write_crash(const struct write_test *t)
{
	__u64 old = guest_read_reg(t), now;
	struct kvm_sregs sregs;
	struct vcpu_event ev;
	struct kvm_regs regs;

	write_event(t, &ev, old, old ^ t->guest_bits);
	reply_to_event(&ev, KVMI_EVENT_ACTION_CRASH);
	check_crash_exit();

	/* MOV to CR from RAX: 3 bytes; WRMSR: 2 bytes. */
	vcpu_regs_get(test_vcpu, &regs);
	EXPECT_RESULT(regs.rip, ev.common.arch.regs.rip + (is_cr(t) ? 3 : 2));

	if (is_cr(t)) {
		vcpu_sregs_get(test_vcpu, &sregs);
		now = t->reg == 0 ? sregs.cr0 :
		      t->reg == 3 ? sregs.cr3 : sregs.cr4;
	} else {
		now = vcpu_get_msr(test_vcpu, t->reg);
	}
	EXPECT_RESULT(now, old);
}

/* CR_EVENT and MSR_EVENT: intercepted writes with and without events. */
static void test_write_events(const struct write_test *tests, unsigned int n)
{
	unsigned int i;

	setup_vcpu_vm();

	/* A CR0 write that KVM handles sets CR0.ET: start with it set. */
	if (is_cr(&tests[0]) && tests[0].reg == 0)
		guest_write_reg(&tests[0],
				guest_read_reg(&tests[0]) | X86_CR0_ET);

	allow_command(KVMI_VCPU_CONTROL_CR);
	allow_command(KVMI_VCPU_CONTROL_MSR);
	for (i = 0; i < n; i++)
		EXPECT_ERR(control_write(&tests[i], 1), 0);

	/* Intercepted, but the event is not enabled. */
	for (i = 0; i < n; i++)
		write_no_event(&tests[i]);

	enable_vcpu_event(0, tests[0].event);
	for (i = 0; i < n; i++)
		check_write_events(&tests[i]);

	/* Enabled, but no longer intercepted. */
	for (i = 0; i < n; i++) {
		EXPECT_ERR(control_write(&tests[i], 0), 0);
		write_no_event(&tests[i]);
	}

	EXPECT_ERR(control_write(&tests[n - 1], 1), 0);
	check_write_crash(&tests[n - 1]);
	teardown_vm();
}

static void test_cr_event(void)
{
	test_write_events(cr_tests, ARRAY_SIZE(cr_tests));
}

static void test_msr_event(void)
{
	test_write_events(msr_tests, ARRAY_SIZE(msr_tests));
}

/*
 * CR event replies that are protocol errors.  The vCPU goes on as without
 * a reply: the guest's write is performed.  The bad replies carry new_val
 * = old_value, which would block the write if KVM used it.
 */
static void test_cr_event_bad_reply(void)
{
	static const struct {
		size_t size;
		__u8 action;
	} bad[] = {
		{ 16, KVMI_EVENT_ACTION_CONTINUE },	/* no new_val */
		{ 32, KVMI_EVENT_ACTION_CONTINUE },	/* 8 bytes too many */
		{ 24, KVMI_EVENT_ACTION_RETRY },	/* not for CR events */
	};
	const struct write_test *t = &cr_tests[2];
	struct kvmi_vcpu_event_reply rpl = { .event = KVMI_VCPU_EVENT_CR };
	struct kvmi_vcpu_hdr vh = {};
	struct vcpu_event ev;
	__u64 old, data[2];
	unsigned int i;

	setup_vcpu_vm();

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		allow_command(KVMI_VCPU_CONTROL_CR);
		EXPECT_ERR(vcpu_control_cr(0, t->reg, 1), 0);
		enable_vcpu_event(0, KVMI_VCPU_EVENT_CR);

		old = guest_read_reg(t);
		write_event(t, &ev, old, old ^ t->guest_bits);
		data[0] = old;
		data[1] = old;
		rpl.action = bad[i].action;
		__reply_to_event(ev.hdr.seq, vh, &rpl, data, sizeof(data),
				 bad[i].size);
		expect_eof();

		EXPECT_RESULT(runner_result(0), old ^ t->guest_bits);
		EXPECT_RESULT(guest_write_reg(t, old), old);

		unhook_introspection(test_vm);
		hook_introspection(test_vm);
	}

	finish_vcpu_vm();
}

/* Deny the guest's writes to @msr with a userspace MSR filter. */
static void deny_msr_writes(__u32 msr)
{
	static __u8 deny;	/* bit 0 clear: denied */
	struct kvm_msr_filter filter = {
		.flags = KVM_MSR_FILTER_DEFAULT_ALLOW,
		.ranges[0] = {
			.flags = KVM_MSR_FILTER_WRITE,
			.nmsrs = 1,
			.base = msr,
			.bitmap = &deny,
		},
	};

	vm_ioctl(test_vm, KVM_X86_SET_MSR_FILTER, &filter);
}

static void test_control_msr(void)
{
	static const __u32 bad[] = { 0x2000, 0xbfffffff, 0xc0002000 };
	static const __u32 good[] = {
		0, 0x1fff, 0xc0000000, 0xc0001fff, MSR_LSTAR,
		MSR_IA32_SYSENTER_CS,
	};
	unsigned int i;

	if (!kvm_has_cap(KVM_CAP_X86_MSR_FILTER))
		skip_case("no KVM_CAP_X86_MSR_FILTER, needed for the EPERM check");

	setup_vcpu_vm();
	allow_command(KVMI_VCPU_CONTROL_MSR);

	EXPECT_ERR(__vcpu_control_msr(0, MSR_LSTAR, 1, 1, 0), -KVM_EINVAL);
	EXPECT_ERR(__vcpu_control_msr(0, MSR_LSTAR, 1, 0, 1), -KVM_EINVAL);
	EXPECT_ERR(vcpu_control_msr(0, MSR_LSTAR, 2), -KVM_EINVAL);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		EXPECT_ERR(vcpu_control_msr(0, bad[i], 1), -KVM_EINVAL);
		EXPECT_ERR(vcpu_control_msr(0, bad[i], 0), -KVM_EINVAL);
	}
	for (i = 0; i < ARRAY_SIZE(good); i++) {
		EXPECT_ERR(vcpu_control_msr(0, good[i], 1), 0);
		EXPECT_ERR(vcpu_control_msr(0, good[i], 0), 0);
	}

	/* The userspace MSR filter denies the guest's writes: EPERM. */
	deny_msr_writes(MSR_LSTAR);
	EXPECT_ERR(vcpu_control_msr(0, MSR_LSTAR, 1), -KVM_EPERM);
	EXPECT_ERR(vcpu_control_msr(0, MSR_LSTAR, 0), 0);
	EXPECT_ERR(vcpu_control_msr(0, MSR_IA32_SYSENTER_CS, 1), 0);

	EXPECT_RESULT(guest_run(GOP_NOP, 0, 0), 0);
	expect_nothing(100);
	finish_vcpu_vm();
}

/* The XCR0 bit that the guest toggles: YMM with AVX, else SSE. */
static __u64 xcr0_test_bit(void)
{
	if (!kvm_cpu_has(X86_FEATURE_XSAVE))
		skip_case("the CPU has no XSAVE (no XSETBV, no XCR0)");
	if (kvm_cpu_has(X86_FEATURE_AVX) &&
	    (kvm_cpu_supported_xcr0() & XFEATURE_MASK_YMM))
		return XFEATURE_MASK_YMM;
	return XFEATURE_MASK_SSE;
}

/*
 * Did KVM see the guest set XCR0 to @xcr0?  QEMU TCG (SVM) does not
 * deliver the XSETBV intercept: the guest changes its XCR0 natively.
 */
static void require_xsetbv_intercept(__u64 xcr0)
{
	struct kvm_xcrs xcrs;

	stop_runners(1);
	vcpu_xcrs_get(test_vcpu, &xcrs);
	if (xcrs.xcrs[0].value != xcr0)
		skip_case("the XSETBV intercept is not delivered by this CPU (QEMU TCG)");
	start_runner(0, test_vcpu);
}

/* The guest starts setting XCR0 to @val over @old: check the event. */
static void xsetbv_event(struct vcpu_event *ev, __u64 old, __u64 val)
{
	guest_start(GOP_XSETBV, val, 0);
	expect_vcpu_event(KVMI_VCPU_EVENT_XSETBV, ev);
	TEST_ASSERT(ev->xsetbv.xcr == 0 && ev->xsetbv.old_value == old &&
		    ev->xsetbv.new_value == val,
		    "XSETBV event: xcr %u, old %#llx, new %#llx; expected 0, %#llx, %#llx",
		    ev->xsetbv.xcr, ev->xsetbv.old_value, ev->xsetbv.new_value,
		    old, val);
}

static void test_xsetbv_event(void)
{
	__u64 bit = xcr0_test_bit();
	__u64 base = XFEATURE_MASK_FP |
		     (bit == XFEATURE_MASK_YMM ? XFEATURE_MASK_SSE : 0);
	struct vcpu_event ev;
	struct kvm_regs regs;
	struct kvm_xcrs xcrs;
	__u64 xcr0;

	setup_vcpu_vm();

	/* Allowed, not enabled: no event. */
	allow_event(KVMI_VCPU_EVENT_XSETBV);
	xcr0 = guest_run(GOP_XSETBV, base, 0);
	expect_nothing(100);
	require_xsetbv_intercept(base);
	EXPECT_RESULT(xcr0, base);

	enable_vcpu_event(0, KVMI_VCPU_EVENT_XSETBV);
	xsetbv_event(&ev, base, base | bit);
	reply_continue(&ev);
	EXPECT_RESULT(runner_result(0), base | bit);

	/* The same value, and an invalid one (#GP): no event. */
	EXPECT_RESULT(guest_run(GOP_XSETBV, base | bit, 0), base | bit);
	EXPECT_RESULT(guest_run(GOP_XSETBV, 0, 0), base | bit);
	EXPECT_RESULT(guest_fault_vector(), GP_VECTOR);
	expect_nothing(100);

	xsetbv_event(&ev, base | bit, base);
	reply_continue(&ev);
	EXPECT_RESULT(runner_result(0), base);

	EXPECT_ERR(vcpu_control_events(0, KVMI_VCPU_EVENT_XSETBV, 0), 0);
	EXPECT_RESULT(guest_run(GOP_XSETBV, base | bit, 0), base | bit);
	expect_nothing(100);

	/* CRASH: XCR0 is already written, RIP is past XSETBV (3 bytes). */
	EXPECT_ERR(vcpu_control_events(0, KVMI_VCPU_EVENT_XSETBV, 1), 0);
	xsetbv_event(&ev, base | bit, base);
	reply_to_event(&ev, KVMI_EVENT_ACTION_CRASH);
	check_crash_exit();
	vcpu_xcrs_get(test_vcpu, &xcrs);
	TEST_ASSERT(xcrs.nr_xcrs >= 1 && xcrs.xcrs[0].xcr == 0,
		    "KVM_GET_XCRS: nr_xcrs %u", xcrs.nr_xcrs);
	EXPECT_RESULT(xcrs.xcrs[0].value, base);
	vcpu_regs_get(test_vcpu, &regs);
	EXPECT_RESULT(regs.rip, ev.common.arch.regs.rip + 3);

	teardown_vm();
}

static void test_get_xcr(void)
{
	struct kvm_xcrs xcrs;
	__u64 value, xcr0;

	setup_vcpu_vm();
	allow_command(KVMI_VCPU_GET_XCR);

	EXPECT_ERR(vcpu_get_xcr(1, 0, &value), -KVM_EINVAL);
	EXPECT_ERR(vcpu_get_xcr(0xff, 0, &value), -KVM_EINVAL);
	EXPECT_ERR(vcpu_get_xcr(0, 1, &value), -KVM_EINVAL);

	/* The value after reset: x87 only. */
	EXPECT_ERR(vcpu_get_xcr(0, 0, &value), 0);
	EXPECT_RESULT(value, XFEATURE_MASK_FP);

	/*
	 * What the guest reads with XGETBV, which is what KVM knows unless
	 * the CPU does not deliver the XSETBV intercept (QEMU TCG): then
	 * compare with KVM_GET_XCRS.
	 */
	if (kvm_cpu_has(X86_FEATURE_XSAVE)) {
		xcr0 = guest_run(GOP_XSETBV,
				 XFEATURE_MASK_FP | XFEATURE_MASK_SSE, 0);
		stop_runners(1);
		vcpu_xcrs_get(test_vcpu, &xcrs);
		if (xcrs.xcrs[0].value !=
		    (XFEATURE_MASK_FP | XFEATURE_MASK_SSE)) {
			/* KVM reloads its XCR0 on the next entries. */
			pr_info("# XSETBV not intercepted: KVM has XCR0 %#llx\n",
				(unsigned long long)xcrs.xcrs[0].value);
			xcr0 = xcrs.xcrs[0].value;
		} else {
			EXPECT_RESULT(xcr0,
				      XFEATURE_MASK_FP | XFEATURE_MASK_SSE);
		}
		start_runner(0, test_vcpu);
		EXPECT_ERR(vcpu_get_xcr(0, 0, &value), 0);
		EXPECT_RESULT(value, xcr0);
	}

	finish_vcpu_vm();
}

/* The descriptor-table instructions of guest_descriptor_insn(). */
static const struct {
	__u8 descriptor;
	__u8 write;
	__u8 opcode[DESC_INSN_LEN];
} desc_insns[NR_DESC_INSNS] = {
	[DI_SGDT] = { KVMI_DESC_GDTR, 0, { 0x0f, 0x01, 0x00 } },
	[DI_SIDT] = { KVMI_DESC_IDTR, 0, { 0x0f, 0x01, 0x08 } },
	[DI_SLDT] = { KVMI_DESC_LDTR, 0, { 0x0f, 0x00, 0x00 } },
	[DI_STR]  = { KVMI_DESC_TR,   0, { 0x0f, 0x00, 0x08 } },
	[DI_LGDT] = { KVMI_DESC_GDTR, 1, { 0x0f, 0x01, 0x10 } },
	[DI_LIDT] = { KVMI_DESC_IDTR, 1, { 0x0f, 0x01, 0x18 } },
	[DI_LLDT] = { KVMI_DESC_LDTR, 1, { 0x0f, 0x00, 0x10 } },
};

/* The guest starts instruction @insn: check the DESCRIPTOR event. */
static void descriptor_event(struct vcpu_event *ev, unsigned int insn)
{
	const __u8 *code;

	guest_start(GOP_DESCRIPTOR, insn, 0);
	expect_vcpu_event(KVMI_VCPU_EVENT_DESCRIPTOR, ev);
	TEST_ASSERT(ev->desc.descriptor == desc_insns[insn].descriptor &&
		    ev->desc.write == desc_insns[insn].write,
		    "Instruction %u: descriptor %u, write %u", insn,
		    ev->desc.descriptor, ev->desc.write);

	code = addr_gva2hva(test_vm, ev->common.arch.regs.rip);
	TEST_ASSERT(!memcmp(code, desc_insns[insn].opcode, DESC_INSN_LEN),
		    "Instruction %u: RIP %#llx points to %02x %02x %02x", insn,
		    ev->common.arch.regs.rip, code[0], code[1], code[2]);
}

/* What guest_descriptor_insn(@insn) returns when it runs. */
static __u64 descriptor_result(unsigned int insn,
			       const struct kvm_sregs *sregs)
{
	switch (insn) {
	case DI_SGDT:
		return sregs->gdt.base;
	case DI_SIDT:
		return sregs->idt.base;
	case DI_SLDT:
		return sregs->ldt.selector;
	case DI_STR:
		return sregs->tr.selector;
	default:
		return 0;
	}
}

#define NO_DESCRIPTOR_EXITS \
	"the CPU cannot intercept descriptor-table instructions (VMX without descriptor-table exiting)"

static void test_descriptor_event(void)
{
	struct kvm_sregs sregs;
	struct vcpu_event ev;
	struct kvm_regs regs;
	unsigned int i;
	int err;

	setup_vm(guest_vcpu_code);
	prepare_vcpu_guest();
	vcpu_sregs_get(test_vcpu, &sregs);
	guest_gdtr.size = sregs.gdt.limit;
	guest_gdtr.address = sregs.gdt.base;
	guest_idtr.size = sregs.idt.limit;
	guest_idtr.address = sregs.idt.base;
	guest_ldtr = sregs.ldt.selector;
	sync_global_to_guest(test_vm, guest_gdtr);
	sync_global_to_guest(test_vm, guest_idtr);
	sync_global_to_guest(test_vm, guest_ldtr);
	start_runner(0, test_vcpu);

	allow_command(KVMI_VCPU_SET_REGISTERS);
	allow_command(KVMI_VCPU_CONTROL_EVENTS);
	allow_event(KVMI_VCPU_EVENT_DESCRIPTOR);
	err = vcpu_control_events(0, KVMI_VCPU_EVENT_DESCRIPTOR, 1);
	if (err == -KVM_EOPNOTSUPP) {
		finish_vcpu_vm();
		skip_case(NO_DESCRIPTOR_EXITS);
	}
	EXPECT_ERR(err, 0);

	/* CONTINUE: KVM runs the instruction. */
	for (i = 0; i < NR_DESC_INSNS; i++) {
		descriptor_event(&ev, i);
		reply_continue(&ev);
		EXPECT_RESULT(runner_result(0), descriptor_result(i, &sregs));
	}

	/* RETRY after moving RIP past SGDT: nothing is stored. */
	descriptor_event(&ev, DI_SGDT);
	regs = ev.common.arch.regs;
	regs.rip += DESC_INSN_LEN;
	EXPECT_ERR(vcpu_set_registers(0, &regs, sizeof(regs)), 0);
	reply_to_event(&ev, KVMI_EVENT_ACTION_RETRY);
	EXPECT_RESULT(runner_result(0), DESC_POISON);

	EXPECT_ERR(vcpu_control_events(0, KVMI_VCPU_EVENT_DESCRIPTOR, 0), 0);
	EXPECT_RESULT(guest_run(GOP_DESCRIPTOR, DI_SIDT, 0), sregs.idt.base);
	expect_nothing(100);

	/* CRASH: RIP stays on the instruction. */
	EXPECT_ERR(vcpu_control_events(0, KVMI_VCPU_EVENT_DESCRIPTOR, 1), 0);
	descriptor_event(&ev, DI_SIDT);
	reply_to_event(&ev, KVMI_EVENT_ACTION_CRASH);
	check_crash_exit();
	vcpu_regs_get(test_vcpu, &regs);
	EXPECT_RESULT(regs.rip, ev.common.arch.regs.rip);

	teardown_vm();
}

/* A running vCPU 0 whose guest records #UD, #DF, #GP and #PF. */
static void setup_exception_vm(void)
{
	static const int vectors[] = {
		UD_VECTOR, DF_VECTOR, GP_VECTOR, PF_VECTOR,
	};
	unsigned int i;

	setup_vm(guest_vcpu_code);
	prepare_vcpu_guest();
	for (i = 0; i < ARRAY_SIZE(vectors); i++)
		vm_install_exception_handler(test_vm, vectors[i],
					     guest_exception_handler);
	start_runner(0, test_vcpu);
	allow_command(KVMI_VCPU_INJECT_EXCEPTION);
}

/* The TRAP event that follows an injection. */
static void trap_event(struct vcpu_event *ev, __u8 nr, __u32 error_code,
		       __u64 address)
{
	expect_vcpu_event(KVMI_VCPU_EVENT_TRAP, ev);
	TEST_ASSERT(ev->trap.nr == nr && ev->trap.error_code == error_code &&
		    ev->trap.address == address,
		    "TRAP event: nr %u, error_code %#x, address %#llx; expected %u, %#x, %#llx",
		    ev->trap.nr, ev->trap.error_code, ev->trap.address, nr,
		    error_code, (unsigned long long)address);
}

/*
 * The guest's handler ran @count times, the last time for @vector (CR2 is
 * checked for a #PF).  The exception comes before the next GUEST_SYNC.
 */
static void check_guest_exception(__u64 count, __u8 vector, __u32 error_code,
				  __u64 cr2)
{
	EXPECT_RESULT(guest_run(GOP_NOP, 0, 0), 0);
	sync_global_from_guest(test_vm, guest_exc);
	EXPECT_RESULT(guest_exc.count, count);
	EXPECT_RESULT(guest_exc.vector, vector);
	EXPECT_RESULT(guest_exc.error_code, error_code);
	if (vector == PF_VECTOR)
		EXPECT_RESULT(guest_exc.cr2, cr2);
}

static void test_inject_exception(void)
{
	struct vcpu_event ev;

	setup_exception_vm();

	/* The TRAP event is not allowed: checked first. */
	EXPECT_ERR(__vcpu_inject_exception(UD_VECTOR, 1, 0, 0, 0), -KVM_EPERM);
	EXPECT_ERR(vcpu_inject_exception(32, 0, 0), -KVM_EPERM);
	EXPECT_ERR(vcpu_inject_exception(UD_VECTOR, 0, 0), -KVM_EPERM);

	allow_event(KVMI_VCPU_EVENT_TRAP);
	EXPECT_ERR(__vcpu_inject_exception(UD_VECTOR, 1, 0, 0, 0),
		   -KVM_EINVAL);
	EXPECT_ERR(__vcpu_inject_exception(UD_VECTOR, 0, 1, 0, 0),
		   -KVM_EINVAL);
	EXPECT_ERR(vcpu_inject_exception(32, 0, 0), -KVM_EINVAL);
	EXPECT_ERR(vcpu_inject_exception(0xff, 0, 0), -KVM_EINVAL);
	EXPECT_ERR(vcpu_inject_exception(NMI_VECTOR, 0, 0), -KVM_EINVAL);
	expect_nothing(100);

	/* #UD has no error code and no address; EBUSY until the reply. */
	EXPECT_ERR(vcpu_inject_exception(UD_VECTOR, 0x55, 0x1000), 0);
	EXPECT_ERR(vcpu_inject_exception(GP_VECTOR, 0, 0), -KVM_EBUSY);
	trap_event(&ev, UD_VECTOR, 0, 0);
	EXPECT_ERR(vcpu_inject_exception(GP_VECTOR, 0, 0), -KVM_EBUSY);
	reply_continue(&ev);
	check_guest_exception(1, UD_VECTOR, 0, 0);

	/* #GP: an error code, no address. */
	EXPECT_ERR(vcpu_inject_exception(GP_VECTOR, 0x18, 0x1000), 0);
	trap_event(&ev, GP_VECTOR, 0x18, 0);
	reply_continue(&ev);
	check_guest_exception(2, GP_VECTOR, 0x18, 0);

	/* #PF: the address becomes CR2. */
	EXPECT_ERR(vcpu_inject_exception(PF_VECTOR, 3, 0x5000), 0);
	trap_event(&ev, PF_VECTOR, 3, 0x5000);
	reply_continue(&ev);
	check_guest_exception(3, PF_VECTOR, 3, 0x5000);
	expect_nothing(100);

	/* CRASH: the exception stays queued, the guest does not see it. */
	EXPECT_ERR(vcpu_inject_exception(UD_VECTOR, 0, 0), 0);
	trap_event(&ev, UD_VECTOR, 0, 0);
	reply_to_event(&ev, KVMI_EVENT_ACTION_CRASH);
	check_crash_exit();
	sync_global_from_guest(test_vm, guest_exc);
	EXPECT_RESULT(guest_exc.count, 3);

	teardown_vm();
}

/*
 * A #GP injected while the guest's WRMSR waits for its MSR event, whose
 * reply makes the WRMSR fault with #GP too: KVM delivers a #DF.
 */
static void test_inject_exception_df(void)
{
	const struct write_test *t = &msr_tests[0];
	struct vcpu_event ev;
	__u64 old;

	setup_exception_vm();
	allow_event(KVMI_VCPU_EVENT_TRAP);
	allow_command(KVMI_VCPU_CONTROL_MSR);
	EXPECT_ERR(vcpu_control_msr(0, MSR_LSTAR, 1), 0);
	enable_vcpu_event(0, KVMI_VCPU_EVENT_MSR);

	old = guest_read_reg(t);
	write_event(t, &ev, old, old ^ t->guest_bits);
	EXPECT_ERR(vcpu_inject_exception(GP_VECTOR, 0, 0), 0);
	reply_with_value(&ev, KVMI_EVENT_ACTION_CONTINUE, old ^ t->bad_bits);

	trap_event(&ev, DF_VECTOR, 0, 0);
	reply_continue(&ev);

	/* The #DF handler skipped the WRMSR. */
	EXPECT_RESULT(runner_result(0), old);
	EXPECT_RESULT(guest_fault_vector(), 0);
	check_guest_exception(1, DF_VECTOR, 0, 0);

	finish_vcpu_vm();
}

static bool xmm_equal(const __u8 *region, unsigned int n,
		      const struct xmm_val *v)
{
	return !memcmp(region + XSAVE_XMM(n), v, sizeof(*v));
}

/* @region, with @xmm1 in XMM1 and the legacy XMM state marked valid. */
static void build_xsave(struct kvmi_vcpu_set_xsave *req, const __u8 *region,
			const struct xmm_val *xmm1)
{
	__u8 *buf = (__u8 *)req->region;

	memcpy(buf, region, sizeof(*req));
	memcpy(buf + XSAVE_XMM(1), xmm1, sizeof(*xmm1));
	*(__u64 *)(buf + XSAVE_XSTATE_BV) |= XFEATURE_MASK_SSE;
}

/*
 * E2BIG (an XSAVE state larger than 4096 bytes) needs AMX, which neither
 * QEMU TCG nor Bochs offers: not tested.
 */
static void test_vcpu_xsave(void)
{
	static const struct xmm_val in[2] = {
		{ 0x0123456789abcdefULL, 0xfedcba9876543210ULL },
		{ 0x1111222233334444ULL, 0x5555666677778888ULL },
	};
	static const struct xmm_val tool = {
		0xa5a5a5a5deadbeefULL, 0x5a5a5a5acafef00dULL,
	};
	static struct kvmi_vcpu_get_xsave_reply xs;
	static struct kvmi_vcpu_set_xsave req;
	__u8 *region = (__u8 *)xs.region;
	const __u32 bad_mxcsr = ~0u;
	struct vcpu_event ev;

	setup_vcpu_vm();
	allow_command(KVMI_VCPU_GET_XSAVE);
	allow_command(KVMI_VCPU_SET_XSAVE);
	enable_vcpu_event(0, KVMI_VCPU_EVENT_HYPERCALL);
	memcpy(guest_xmm_in, in, sizeof(in));
	sync_global_to_guest(test_vm, guest_xmm_in);

	guest_start(GOP_XMM_HYPERCALL, 0, 0);
	expect_vcpu_event(KVMI_VCPU_EVENT_HYPERCALL, &ev);

	EXPECT_ERR(vcpu_get_xsave(&xs), 0);
	TEST_ASSERT(xmm_equal(region, 0, &in[0]) && xmm_equal(region, 1, &in[1]),
		    "GET_XSAVE: XMM0/XMM1 differ from what the guest loaded");

	/* Errors change nothing: a short message, reserved MXCSR bits. */
	build_xsave(&req, region, &tool);
	EXPECT_ERR(vcpu_set_xsave(&req, 100), -KVM_EINVAL);
	memcpy((__u8 *)req.region + XSAVE_MXCSR, &bad_mxcsr, sizeof(bad_mxcsr));
	EXPECT_ERR(vcpu_set_xsave(&req, sizeof(req)), -KVM_EINVAL);
	EXPECT_ERR(vcpu_get_xsave(&xs), 0);
	TEST_ASSERT(xmm_equal(region, 1, &in[1]),
		    "XMM1 changed by a SET_XSAVE that failed");

	build_xsave(&req, region, &tool);
	EXPECT_ERR(vcpu_set_xsave(&req, sizeof(req)), 0);
	EXPECT_ERR(vcpu_get_xsave(&xs), 0);
	TEST_ASSERT(xmm_equal(region, 0, &in[0]) && xmm_equal(region, 1, &tool),
		    "GET_XSAVE after SET_XSAVE: unexpected XMM0/XMM1");

	/* The guest sees the tool's XMM1. */
	reply_continue(&ev);
	EXPECT_RESULT(runner_result(0), 0);
	sync_global_from_guest(test_vm, guest_xmm_out);
	TEST_ASSERT(!memcmp(&guest_xmm_out[0], &in[0], sizeof(in[0])) &&
		    !memcmp(&guest_xmm_out[1], &tool, sizeof(tool)),
		    "The guest read XMM0 %#llx:%#llx, XMM1 %#llx:%#llx",
		    guest_xmm_out[0].hi, guest_xmm_out[0].lo,
		    guest_xmm_out[1].hi, guest_xmm_out[1].lo);

	finish_vcpu_vm();
}

static void test_get_mtrr_type(void)
{
	const __u64 gpa = 0x200000, fixed = 0x1000;
	__u64 mask;
	__u32 maxphyaddr;

	if (!kvm_cpu_has(X86_FEATURE_MTRR))
		skip_case("the CPU has no MTRRs");

	setup_vcpu_vm();
	allow_command(KVMI_VCPU_GET_MTRR_TYPE);
	maxphyaddr = vcpu_get_cpuid_entry(test_vcpu, 0x80000008)->eax & 0xff;
	mask = (GENMASK_ULL(maxphyaddr - 1, 0) & ~0xfffULL) | MTRR_MASK_VALID;

	/* MTRRs disabled (after reset): UC. */
	EXPECT_RESULT(vcpu_get_mtrr_type(gpa), MTRR_TYPE_UC);
	EXPECT_RESULT(vcpu_get_mtrr_type(fixed), MTRR_TYPE_UC);

	set_vcpu_msr(MSR_MTRR_DEF_TYPE, MTRR_DEF_E | MTRR_TYPE_WB);
	EXPECT_RESULT(vcpu_get_mtrr_type(gpa), MTRR_TYPE_WB);

	/* Variable range 0: WC for the page at gpa. */
	set_vcpu_msr(MSR_MTRR_BASE(0), gpa | MTRR_TYPE_WC);
	set_vcpu_msr(MSR_MTRR_MASK(0), mask);
	EXPECT_RESULT(vcpu_get_mtrr_type(gpa), MTRR_TYPE_WC);
	EXPECT_RESULT(vcpu_get_mtrr_type(gpa + 0x800), MTRR_TYPE_WC);
	EXPECT_RESULT(vcpu_get_mtrr_type(gpa + PAGE_BYTES), MTRR_TYPE_WB);

	/* Overlapping ranges: UC wins, then WT wins over WB. */
	set_vcpu_msr(MSR_MTRR_BASE(0), gpa | MTRR_TYPE_WB);
	set_vcpu_msr(MSR_MTRR_BASE(1), gpa | MTRR_TYPE_UC);
	set_vcpu_msr(MSR_MTRR_MASK(1), mask);
	EXPECT_RESULT(vcpu_get_mtrr_type(gpa), MTRR_TYPE_UC);
	set_vcpu_msr(MSR_MTRR_BASE(1), gpa | MTRR_TYPE_WT);
	EXPECT_RESULT(vcpu_get_mtrr_type(gpa), MTRR_TYPE_WT);

	/* Fixed ranges (WT for 0-64K, WC for 64K-128K), only with FE. */
	set_vcpu_msr(MSR_MTRR_FIX_64K, 0x0606060606060104ULL);
	EXPECT_RESULT(vcpu_get_mtrr_type(fixed), MTRR_TYPE_WB);
	set_vcpu_msr(MSR_MTRR_DEF_TYPE, MTRR_DEF_E | MTRR_DEF_FE | MTRR_TYPE_WB);
	EXPECT_RESULT(vcpu_get_mtrr_type(fixed), MTRR_TYPE_WT);
	EXPECT_RESULT(vcpu_get_mtrr_type(0x10000), MTRR_TYPE_WC);
	EXPECT_RESULT(vcpu_get_mtrr_type(gpa), MTRR_TYPE_WT);

	/* Disabled again: UC everywhere. */
	set_vcpu_msr(MSR_MTRR_DEF_TYPE, MTRR_DEF_FE | MTRR_TYPE_WB);
	EXPECT_RESULT(vcpu_get_mtrr_type(gpa), MTRR_TYPE_UC);
	EXPECT_RESULT(vcpu_get_mtrr_type(fixed), MTRR_TYPE_UC);

	finish_vcpu_vm();
}

static void test_translate_gva(void)
{
	vm_vaddr_t gva, code = (vm_vaddr_t)guest_vcpu_code;
	__u64 gpa;

	setup_vm(guest_vcpu_code);
	prepare_vcpu_guest();
	gva = vm_vaddr_alloc_page(test_vm);
	gpa = addr_gva2gpa(test_vm, gva);
	TEST_ASSERT(!sparsebit_is_set(test_vm->vpages_mapped,
				      UNMAPPED_GVA >> test_vm->page_shift),
		    "gva %#llx is mapped", UNMAPPED_GVA);
	start_runner(0, test_vcpu);
	allow_command(KVMI_VCPU_TRANSLATE_GVA);

	EXPECT_RESULT(vcpu_translate_gva(gva), gpa);
	EXPECT_RESULT(vcpu_translate_gva(gva + 0x123), gpa + 0x123);
	EXPECT_RESULT(vcpu_translate_gva(gva + PAGE_BYTES - 1),
		      gpa + PAGE_BYTES - 1);
	EXPECT_RESULT(vcpu_translate_gva(code), addr_gva2gpa(test_vm, code));
	EXPECT_RESULT(vcpu_translate_gva(UNMAPPED_GVA), ~0ULL);

	finish_vcpu_vm();
}

static bool singlestep_supported(void)
{
	struct kvmi_get_version_reply ver;

	get_version(&ver);
	return ver.features.singlestep;
}

#define NO_SINGLESTEP \
	"the CPU has no single-step support (VMX without the monitor trap flag)"

static void test_control_singlestep(void)
{
	struct vcpu_event ev;

	setup_vcpu_vm();
	allow_command(KVMI_VCPU_CONTROL_SINGLESTEP);

	/* The SINGLESTEP event is not allowed: checked first. */
	EXPECT_ERR(__vcpu_control_singlestep(0, 1, 1), -KVM_EPERM);
	EXPECT_ERR(vcpu_control_singlestep(0, 2), -KVM_EPERM);
	EXPECT_ERR(vcpu_control_singlestep(0, 1), -KVM_EPERM);

	allow_event(KVMI_VCPU_EVENT_SINGLESTEP);
	EXPECT_ERR(__vcpu_control_singlestep(0, 1, 1), -KVM_EINVAL);
	EXPECT_ERR(vcpu_control_singlestep(0, 2), -KVM_EINVAL);

	if (!singlestep_supported()) {
		EXPECT_ERR(vcpu_control_singlestep(0, 1), -KVM_EOPNOTSUPP);
		finish_vcpu_vm();
		skip_case(NO_SINGLESTEP);
	}

	/* On: the spinning guest steps at once; off: it runs freely. */
	EXPECT_ERR(vcpu_control_singlestep(0, 1), 0);
	expect_vcpu_event(KVMI_VCPU_EVENT_SINGLESTEP, &ev);
	EXPECT_ERR(vcpu_control_singlestep(0, 0), 0);
	reply_continue(&ev);
	EXPECT_RESULT(guest_run(GOP_NOP, 0, 0), 0);
	expect_nothing(100);

	finish_vcpu_vm();
}

/*
 * The next SINGLESTEP event that completed a step.  A step cut short
 * (failed = 1, e.g. by a host interrupt) must not have moved RIP from
 * @rip; it gets CONTINUE and the vCPU tries again.
 */
static void completed_step(struct vcpu_event *ev, __u64 rip)
{
	unsigned int n;

	for (n = 0; n < MAX_STEPS; n++) {
		expect_vcpu_event(KVMI_VCPU_EVENT_SINGLESTEP, ev);
		if (!ev->ss.failed)
			return;
		EXPECT_RESULT(ev->common.arch.regs.rip, rip);
		reply_continue(ev);
	}
	TEST_FAIL("%u steps cut short at %#llx", n, (unsigned long long)rip);
}

/* The address of the stepped sequence of kvmi_ss_fn(), up to its RET. */
static __u64 ss_seq_gva(void)
{
	static const __u8 seq[] = { 0x90, 0x90, 0x9c, 0x58, 0xc3 };
	const __u8 *p = (const __u8 *)kvmi_ss_fn;
	int i;

	for (i = 0; i < 32; i++)
		if (!memcmp(&p[i], seq, sizeof(seq)))
			return (__u64)&p[i];

	TEST_FAIL("No NOP, NOP, PUSHF, POP, RET in kvmi_ss_fn()");
	return 0;
}

static void test_singlestep_event(void)
{
	__u64 start = (__u64)kvmi_ss_fn, seq = ss_seq_gva(), ret = seq + 4;
	struct vcpu_event ev;
	__u64 rip, rflags;
	unsigned int n;

	setup_vcpu_vm();
	if (!singlestep_supported())
		skip_case(NO_SINGLESTEP);

	allow_command(KVMI_VCPU_CONTROL_SINGLESTEP);
	allow_event(KVMI_VCPU_EVENT_SINGLESTEP);
	allow_command(KVMI_VCPU_INJECT_EXCEPTION);
	allow_event(KVMI_VCPU_EVENT_TRAP);

	/* Step until the guest spins in kvmi_ss_fn(), then release it. */
	guest_start(GOP_SINGLESTEP, 0, 0);
	EXPECT_ERR(vcpu_control_singlestep(0, 1), 0);
	for (n = 0;; n++) {
		TEST_ASSERT(n < MAX_STEPS, "kvmi_ss_fn() not reached");
		expect_vcpu_event(KVMI_VCPU_EVENT_SINGLESTEP, &ev);
		rip = ev.common.arch.regs.rip;
		if (rip == seq)
			break;
		if (rip >= start && rip < seq)
			set_guest_u64(&guest_ss_go, 1);
		if (!n)
			EXPECT_ERR(vcpu_inject_exception(UD_VECTOR, 0, 0),
				   -KVM_EBUSY);
		reply_continue(&ev);
	}

	/* One event per instruction: NOP, NOP, PUSHF, POP, RET. */
	for (rip = seq; rip < ret; rip++) {
		reply_continue(&ev);
		completed_step(&ev, rip);
		EXPECT_RESULT(ev.common.arch.regs.rip, rip + 1);
	}
	reply_continue(&ev);
	completed_step(&ev, ret);
	rip = ev.common.arch.regs.rip;
	TEST_ASSERT(rip < start || rip > ret,
		    "RIP %#llx after RET", (unsigned long long)rip);

	/* Off: no more events; PUSHF did not see the trap flag. */
	EXPECT_ERR(vcpu_control_singlestep(0, 0), 0);
	reply_continue(&ev);
	rflags = runner_result(0);
	TEST_ASSERT(!(rflags & RFLAGS_TF), "PUSHF stored RFLAGS %#llx",
		    (unsigned long long)rflags);
	EXPECT_RESULT(guest_run(GOP_NOP, 0, 0), 0);
	expect_nothing(100);

	/* CRASH on a step. */
	EXPECT_ERR(vcpu_control_singlestep(0, 1), 0);
	expect_vcpu_event(KVMI_VCPU_EVENT_SINGLESTEP, &ev);
	reply_to_event(&ev, KVMI_EVENT_ACTION_CRASH);
	check_crash_exit();

	teardown_vm();
}

/*
 * Turn on every interception that the tool can ask for, on @vcpu; the
 * single-step event (when @singlestep) is left without a reply.
 */
static void intercept_everything(__u16 vcpu, bool breakpoint,
				 bool singlestep)
{
	unsigned int i;
	int err;

	allow_command(KVMI_VCPU_CONTROL_CR);
	allow_command(KVMI_VCPU_CONTROL_MSR);
	for (i = 0; i < ARRAY_SIZE(cr_tests); i++)
		EXPECT_ERR(vcpu_control_cr(vcpu, cr_tests[i].reg, 1), 0);
	for (i = 0; i < ARRAY_SIZE(msr_tests); i++)
		EXPECT_ERR(vcpu_control_msr(vcpu, msr_tests[i].reg, 1), 0);

	/* VMX without descriptor-table exiting: SGDT is not intercepted. */
	allow_command(KVMI_VCPU_CONTROL_EVENTS);
	allow_event(KVMI_VCPU_EVENT_DESCRIPTOR);
	err = vcpu_control_events(vcpu, KVMI_VCPU_EVENT_DESCRIPTOR, 1);
	TEST_ASSERT(!err || err == -KVM_EOPNOTSUPP,
		    "CONTROL_EVENTS(DESCRIPTOR): %d", err);

	if (breakpoint)
		enable_vcpu_event(vcpu, KVMI_VCPU_EVENT_BREAKPOINT);

	if (singlestep) {
		struct vcpu_event ev;

		allow_command(KVMI_VCPU_CONTROL_SINGLESTEP);
		allow_event(KVMI_VCPU_EVENT_SINGLESTEP);
		EXPECT_ERR(vcpu_control_singlestep(vcpu, 1), 0);
		expect_vcpu_event(KVMI_VCPU_EVENT_SINGLESTEP, &ev);
	}
}

/* Without NPT/EPT, KVM itself intercepts the CR3 writes of GOP_LOOP. */
static void require_tdp(void)
{
	if (!kvm_is_tdp_enabled())
		skip_case("KVM intercepts CR3 writes without NPT/EPT (tdp off)");
}

static void test_control_cleanup(void)
{
	bool breakpoint;
	__u64 exits;

	require_tdp();
	breakpoint = bp_intercept_works();
	setup_vcpu_vm();
	allow_command(KVMI_VM_CONTROL_CLEANUP);
	EXPECT_ERR(__vm_control_cleanup(1, 1), -KVM_EINVAL);
	EXPECT_ERR(vm_control_cleanup(2), -KVM_EINVAL);
	EXPECT_ERR(vm_control_cleanup(0), 0);
	EXPECT_ERR(vm_control_cleanup(1), 0);

	intercept_everything(0, breakpoint, singlestep_supported());
	unhook_introspection(test_vm);

	/* Nothing is intercepted any more: these writes stay in the guest. */
	count_exits(1, GOP_LOOP, LOOP_WRITES, &exits);
	TEST_ASSERT(exits < LOOP_WRITES,
		    "%llu exits for %u loops: still intercepted",
		    (unsigned long long)exits, LOOP_WRITES);

	/* A new session does not inherit anything. */
	hook_introspection(test_vm);
	enable_vcpu_event(0, KVMI_VCPU_EVENT_CR);
	write_no_event(&cr_tests[1]);

	finish_vcpu_vm();
}

static void test_cleanup_off(void)
{
	const struct write_test *t = &cr_tests[1];
	__u64 exits, old;

	setup_vcpu_vm();
	allow_command(KVMI_VM_CONTROL_CLEANUP);
	EXPECT_ERR(vm_control_cleanup(0), 0);
	intercept_everything(0, bp_intercept_works(), false);
	unhook_introspection(test_vm);

	/* Still intercepted: each loop leaves the guest. */
	count_exits(1, GOP_LOOP, LOOP_WRITES, &exits);
	TEST_ASSERT(exits >= LOOP_WRITES,
		    "%llu exits for %u loops: not intercepted",
		    (unsigned long long)exits, LOOP_WRITES);

	/* A new session inherits CONTROL_CR: the event is enough. */
	hook_introspection(test_vm);
	enable_vcpu_event(0, KVMI_VCPU_EVENT_CR);
	old = guest_read_reg(t);
	EXPECT_RESULT(write_reply(t, old, old ^ t->guest_bits,
				  old ^ t->guest_bits), old ^ t->guest_bits);
	EXPECT_RESULT(write_reply(t, old ^ t->guest_bits, old, old), old);

	/* It can turn the interception off. */
	allow_command(KVMI_VCPU_CONTROL_CR);
	EXPECT_ERR(vcpu_control_cr(0, t->reg, 0), 0);
	write_no_event(t);

	finish_vcpu_vm();
}

/*
 * Both vCPUs loop in the guest, leaving it on each intercepted write,
 * while the VM is unhooked: both give their interceptions back.  (The
 * descriptor-table exits come with their event, which would stop the
 * loop: not used here.)
 */
static void test_cleanup_two_vcpus(void)
{
	long long deadline = now_ms() + SOCKET_TIMEOUT_SEC * 1000LL;
	struct kvm_vcpu *vcpus[2];
	__u64 exits[2];
	unsigned int i;

	require_tdp();
	test_vm = vm_create_with_vcpus(2, guest_vcpu_code, vcpus);
	test_vcpu = vcpus[0];
	hook_introspection(test_vm);
	prepare_vcpu_guest();
	for (i = 0; i < 2; i++)
		start_runner(i, vcpus[i]);

	allow_command(KVMI_VCPU_CONTROL_CR);
	allow_command(KVMI_VCPU_CONTROL_MSR);
	for (i = 0; i < 2; i++) {
		EXPECT_ERR(vcpu_control_cr(i, 3, 1), 0);
		EXPECT_ERR(vcpu_control_msr(i, passthrough_msr(), 1), 0);
	}

	guest_start(GOP_LOOP, 0, 0);
	while (get_guest_u64(&guest_loops_started) < 2) {
		TEST_ASSERT(now_ms() < deadline, "The loops did not start");
		usleep(1000);
	}
	unhook_introspection(test_vm);
	set_guest_u64(&guest_loop_stop, 1);
	for (i = 0; i < 2; i++)
		runner_result(i);

	count_exits(2, GOP_LOOP, LOOP_WRITES, exits);
	for (i = 0; i < 2; i++)
		TEST_ASSERT(exits[i] < LOOP_WRITES,
			    "vCPU %u: %llu exits for %u loops: still intercepted",
			    i, (unsigned long long)exits[i], LOOP_WRITES);

	finish_vcpu_vm();
}

/* ------------------------------------------------------------------ */
/* Cases: guest page access (issue 5)                                 */
/* ------------------------------------------------------------------ */

/* mov $0x1234, %eax; ret: what GOP_EXEC runs in a test page. */
static const __u8 exec_code[] = { 0xb8, 0x34, 0x12, 0x00, 0x00, 0xc3 };

static __u64 page_gva(__u64 page)
{
	return test_page_gva + page * PAGE_BYTES;
}

static __u64 page_gpa(__u64 page)
{
	return test_page_gpa + page * PAGE_BYTES;
}

static __u64 *data_hva(__u64 page)
{
	return addr_gva2hva(test_vm, page_gva(page) + DATA_OFFSET);
}

/*
 * The @n pages from @gva become the test pages, also for the guest (which
 * must be out of KVM_RUN or idle); each gets exec_code[] at CODE_OFFSET.
 */
static void set_test_pages(vm_vaddr_t gva, __u64 n)
{
	__u64 i;

	test_page_gva = gva;
	test_page_gpa = addr_gva2gpa(test_vm, gva);
	nr_test_pages = n;
	for (i = 0; i < n; i++) {
		EXPECT_RESULT(addr_gva2gpa(test_vm, page_gva(i)), page_gpa(i));
		memcpy(addr_gva2hva(test_vm, page_gva(i) + CODE_OFFSET),
		       exec_code, sizeof(exec_code));
	}
	sync_global_to_guest(test_vm, test_page_gva);
	sync_global_to_guest(test_vm, nr_test_pages);
}

/*
 * A hooked VM running guest_vcpu_code in runner 0, with @nr_pages test
 * pages that the guest has not touched.  SET_PAGE_ACCESS is allowed.
 */
static void add_test_slot(enum vm_mem_backing_src_type src, __u64 size,
			  int level);

/*
 * Memslot 0 has room for a few test pages only (the extra pages of
 * __vm_create() are for page tables): more go into their own memslot.
 */
static void setup_pf_vm(__u64 nr_pages)
{
	__create_vm(guest_vcpu_code, nr_pages + PF_EXTRA_PAGES);
	hook_introspection(test_vm);
	prepare_vcpu_guest();
	if (nr_pages > PF_SLOT0_PAGES)
		add_test_slot(VM_MEM_SRC_ANONYMOUS, nr_pages * PAGE_BYTES,
			      PG_LEVEL_4K);
	else if (nr_pages)
		set_test_pages(vm_vaddr_alloc(test_vm, nr_pages * PAGE_BYTES,
					      KVM_UTIL_MIN_VADDR), nr_pages);
	start_runner(0, test_vcpu);
	allow_command(KVMI_VM_SET_PAGE_ACCESS);
}

/*
 * Add memslot TEST_SLOT of @size bytes at TEST_SLOT_GPA, backed by @src and
 * mapped at the same gva with pages of @level: its pages become the test
 * pages.  The vCPU must be out of KVM_RUN.
 */
static void add_test_slot(enum vm_mem_backing_src_type src, __u64 size,
			  int level)
{
	__u64 n = size / PAGE_BYTES, vpage = TEST_SLOT_GPA / PAGE_BYTES;

	TEST_ASSERT(sparsebit_is_clear_num(test_vm->vpages_mapped, vpage, n),
		    "gva %#llx is mapped", TEST_SLOT_GPA);
	vm_userspace_mem_region_add(test_vm, src, TEST_SLOT_GPA, TEST_SLOT, n,
				    0);
	virt_map_level(test_vm, TEST_SLOT_GPA, TEST_SLOT_GPA, size, level);
	sparsebit_set_num(test_vm->vpages_mapped, vpage, n);
	set_test_pages(TEST_SLOT_GPA, n);
}

#define PA_SIZE(n)	(sizeof(struct kvmi_vm_set_page_access) + \
			 (n) * sizeof(struct kvmi_page_access_entry))

/* A SET_PAGE_ACCESS request with room for the most entries. */
struct page_access_req {
	struct kvmi_vm_set_page_access r;
	struct kvmi_page_access_entry e[MAX_PAGE_ACCESS_ENTRIES];
};

/* @req for the @n test pages from @first, all with @access. */
static void build_page_access(struct page_access_req *req, __u64 first,
			      __u64 n, __u8 access)
{
	__u64 i;

	memset(req, 0, sizeof(*req));
	req->r.count = n;
	for (i = 0; i < n; i++) {
		req->e[i].gpa = page_gpa(first + i);
		req->e[i].access = access;
	}
}

/* Send the first @size bytes of @req; returns the err of the reply. */
static int vm_set_page_access(const struct page_access_req *req, size_t size)
{
	return do_command(KVMI_VM_SET_PAGE_ACCESS, req, size, NULL, 0);
}

/* The @n test pages from @first allow @access (in messages of 511). */
static void set_pages_access(__u64 first, __u64 n, __u8 access)
{
	static struct page_access_req req;
	__u64 count;

	for (; n; first += count, n -= count) {
		count = min_t(__u64, n, MAX_PAGE_ACCESS_ENTRIES);
		build_page_access(&req, first, count, access);
		EXPECT_ERR(vm_set_page_access(&req, PA_SIZE(count)), 0);
	}
}

/*
 * Is the gva of a PF event always known?  With shadow paging it is; with
 * NPT it is not (~0), with EPT when the exit qualification has it.
 */
static bool pf_gva_always_known(void)
{
	static int tdp = -1;

	if (tdp < 0)
		tdp = kvm_is_tdp_enabled();
	return !tdp;
}

/* The next event must be the PF event of access @access at @gva. */
static void pf_event(struct vcpu_event *ev, __u64 gva, __u8 access)
{
	__u64 gpa = addr_gva2gpa(test_vm, gva);

	expect_vcpu_event(KVMI_VCPU_EVENT_PF, ev);
	TEST_ASSERT(ev->common.vcpu == 0 && ev->pf.gpa == gpa &&
		    ev->pf.access == access,
		    "PF event: vCPU %u, gpa %#llx, access %u; expected 0, %#llx, %u",
		    ev->common.vcpu, ev->pf.gpa, ev->pf.access, gpa, access);
	TEST_ASSERT(ev->pf.gva == gva ||
		    (ev->pf.gva == ~0ULL && !pf_gva_always_known()),
		    "PF event: gva %#llx, expected %#llx", ev->pf.gva, gva);
	if (access == KVMI_PAGE_ACCESS_X)
		EXPECT_RESULT(ev->common.arch.regs.rip, gva);
}

/* Where access @access (KVMI_PAGE_ACCESS_*) of test page @page goes. */
static __u64 access_gva(__u64 page, __u8 access)
{
	return page_gva(page) +
	       (access == KVMI_PAGE_ACCESS_X ? CODE_OFFSET : DATA_OFFSET);
}

/*
 * The guest starts access @access to test page @page: it reads the u64 at
 * DATA_OFFSET (set to @val by the host first), writes @val there, or runs
 * exec_code[].
 */
static void start_access(__u64 page, __u8 access, __u64 val)
{
	__u64 gva = access_gva(page, access);

	if (access == KVMI_PAGE_ACCESS_R) {
		WRITE_ONCE(*data_hva(page), val);
		guest_start(GOP_READ, gva, 0);
	} else if (access == KVMI_PAGE_ACCESS_W) {
		guest_start(GOP_WRITE, gva, val);
	} else {
		guest_start(GOP_EXEC, gva, 0);
	}
}

/* The access of start_access() completes without (more) events. */
static void access_done(__u64 page, __u8 access, __u64 val)
{
	__u64 result = runner_result(0);

	expect_nothing(100);
	if (access == KVMI_PAGE_ACCESS_R)
		EXPECT_RESULT(result, val);
	else if (access == KVMI_PAGE_ACCESS_W)
		EXPECT_RESULT(READ_ONCE(*data_hva(page)), val);
	else
		EXPECT_RESULT(result, EXEC_RESULT);
}

/*
 * Access @access to test page @page (see start_access()).  With @events it
 * is forbidden: each PF event (two for exec_code[]: its MOV and its RET)
 * is checked and answered with CONTINUE, which completes the access.
 */
static void check_access(__u64 page, __u8 access, __u64 val, bool events)
{
	__u64 gva = access_gva(page, access);
	struct vcpu_event ev;

	start_access(page, access, val);
	if (events) {
		pf_event(&ev, gva, access);
		reply_continue(&ev);
	}
	if (events && access == KVMI_PAGE_ACCESS_X) {
		pf_event(&ev, gva + EXEC_RET_OFFSET, access);
		reply_continue(&ev);
	}
	access_done(page, access, val);
}

/* Read, write and execute test page @page without events. */
static void check_accesses_allowed(__u64 page, __u64 val)
{
	__u8 a;

	for (a = KVMI_PAGE_ACCESS_R; a <= KVMI_PAGE_ACCESS_X; a <<= 1)
		check_access(page, a, val, false);
}

#define NR_BAD_ENTRIES	5

/* An entry that SET_PAGE_ACCESS refuses, for test page 2. */
static struct kvmi_page_access_entry bad_entry(unsigned int kind)
{
	struct kvmi_page_access_entry e = {
		.gpa = page_gpa(2),
		.access = KVMI_PAGE_ACCESS_R,
	};

	switch (kind) {
	case 0:
		e.access = 8;
		break;
	case 1:
		e.padding[0] = 1;
		break;
	case 2:
		e.padding[6] = 1;
		break;
	case 3:
		e.gpa = gpa_after_memslots(test_vm);
		break;
	default:
		e.gpa = INVALID_GPA;
	}

	return e;
}

static void test_set_page_access_errors(void)
{
	const __u8 rx = KVMI_PAGE_ACCESS_R | KVMI_PAGE_ACCESS_X;
	static struct page_access_req req;
	unsigned int i;
	int err;

	setup_pf_vm(3);
	enable_vcpu_event(0, KVMI_VCPU_EVENT_PF);
	TEST_ASSERT(MAX_PAGE_ACCESS_ENTRIES == 511 && PA_SIZE(511) == 8184,
		    "%zu entries per message", MAX_PAGE_ACCESS_ENTRIES);

	build_page_access(&req, 0, 1, rx);
	disallow_command(KVMI_VM_SET_PAGE_ACCESS);
	EXPECT_ERR(vm_set_page_access(&req, PA_SIZE(1)), -KVM_EPERM);
	allow_command(KVMI_VM_SET_PAGE_ACCESS);

	/* count 0, a message longer than its entries, the padding. */
	req.r.count = 0;
	EXPECT_ERR(vm_set_page_access(&req, PA_SIZE(0)), -KVM_EINVAL);
	req.r.count = 1;
	EXPECT_ERR(vm_set_page_access(&req, PA_SIZE(1) + 1), -KVM_EINVAL);
	EXPECT_ERR(vm_set_page_access(&req, PA_SIZE(2)), -KVM_EINVAL);
	req.r.padding1 = 1;
	EXPECT_ERR(vm_set_page_access(&req, PA_SIZE(1)), -KVM_EINVAL);
	req.r.padding1 = 0;
	req.r.padding2 = 1;
	EXPECT_ERR(vm_set_page_access(&req, PA_SIZE(1)), -KVM_EINVAL);

	/* A bad last entry: the first two are not applied either. */
	for (i = 0; i < NR_BAD_ENTRIES; i++) {
		build_page_access(&req, 0, 3, rx);
		req.e[2] = bad_entry(i);
		err = vm_set_page_access(&req, PA_SIZE(3));
		TEST_ASSERT(err == -KVM_EINVAL, "Bad entry %u: err %d", i, err);
	}
	check_access(0, KVMI_PAGE_ACCESS_W, 1, false);
	check_access(1, KVMI_PAGE_ACCESS_W, 2, false);

	/* Any combination; a gfn listed twice (any offset) gets the last. */
	for (i = 0; i <= PAGE_ACCESS_ALL; i++)
		set_pages_access(0, 1, i);
	check_access(0, KVMI_PAGE_ACCESS_W, 3, false);
	build_page_access(&req, 0, 2, rx);
	req.e[1].gpa = page_gpa(0) + 0x123;
	req.e[1].access = PAGE_ACCESS_ALL;
	EXPECT_ERR(vm_set_page_access(&req, PA_SIZE(2)), 0);
	check_access(0, KVMI_PAGE_ACCESS_W, 4, false);
	req.e[0].access = PAGE_ACCESS_ALL;
	req.e[1].access = rx;
	EXPECT_ERR(vm_set_page_access(&req, PA_SIZE(2)), 0);
	check_access(0, KVMI_PAGE_ACCESS_W, 5, true);

	/* A message shorter than its entries: the connection is closed. */
	build_page_access(&req, 1, 2, rx);
	send_message(KVMI_VM_SET_PAGE_ACCESS, &req, PA_SIZE(1));
	expect_eof();

	/* UNHOOK lifted the restriction of page 0. */
	expect_hooked_until_unhook();
	allow_command(KVMI_VM_SET_PAGE_ACCESS);
	enable_vcpu_event(0, KVMI_VCPU_EVENT_PF);
	check_access(0, KVMI_PAGE_ACCESS_W, 6, false);
	set_pages_access(1, 1, rx);
	check_access(1, KVMI_PAGE_ACCESS_W, 7, true);

	finish_vcpu_vm();
}

/* The last gfn of the test's memslots. */
static __u64 last_memslot_gfn(void)
{
	return gpa_after_memslots(test_vm) / PAGE_BYTES - 1;
}

static int __vm_get_max_gfn(__u64 *gfn)
{
	struct kvmi_vm_get_max_gfn_reply rpl = {};
	int err;

	/* receive_reply() checks the size: 8 + 8. */
	err = do_command(KVMI_VM_GET_MAX_GFN, NULL, 0, &rpl, sizeof(rpl));
	*gfn = rpl.gfn;

	return err;
}

static __u64 vm_get_max_gfn(void)
{
	__u64 gfn;

	EXPECT_ERR(__vm_get_max_gfn(&gfn), 0);
	return gfn;
}

static void test_get_max_gfn(void)
{
	const __u64 top = TOP_SLOT_GPA / PAGE_BYTES;
	__u64 gfn;

	setup_vm(guest_idle_code);
	EXPECT_ERR(__vm_get_max_gfn(&gfn), -KVM_EPERM);
	allow_command(KVMI_VM_GET_MAX_GFN);

	/* KVM's APIC access page (VMX, AVIC) has a memslot of its own. */
	gfn = vm_get_max_gfn();
	pr_info("# max gfn %#llx, the test's memslots end at gfn %#llx\n",
		gfn, last_memslot_gfn());
	TEST_ASSERT(gfn == last_memslot_gfn() ||
		    (gfn == APIC_ACCESS_GFN && gfn > last_memslot_gfn()),
		    "max gfn %#llx, the test's memslots end at gfn %#llx", gfn,
		    last_memslot_gfn());

	/* A memslot above every other one. */
	TEST_ASSERT(top + 1 <= test_vm->max_gfn, "No guest memory at %#llx",
		    TOP_SLOT_GPA);
	vm_userspace_mem_region_add(test_vm, VM_MEM_SRC_ANONYMOUS,
				    TOP_SLOT_GPA, TEST_SLOT, 2, 0);
	EXPECT_RESULT(last_memslot_gfn(), top + 1);
	EXPECT_RESULT(vm_get_max_gfn(), top + 1);

	vm_mem_region_delete(test_vm, TEST_SLOT);
	EXPECT_RESULT(vm_get_max_gfn(), gfn);

	teardown_vm();
}

/* Access @access to a page that forbids only that one. */
static void test_pf_event(__u8 access)
{
	__u64 gpa, val = 0x70011e55, r = 0;
	__u8 a;

	setup_pf_vm(1);
	enable_vcpu_event(0, KVMI_VCPU_EVENT_PF);

	/* KVM maps the page first. */
	check_accesses_allowed(0, 1);
	set_pages_access(0, 1, PAGE_ACCESS_ALL & ~access);

	/* CONTINUE completes the access once: the next one faults again. */
	check_access(0, access, 2, true);
	check_access(0, access, 3, true);

	/* The other accesses are allowed. */
	for (a = KVMI_PAGE_ACCESS_R; a <= KVMI_PAGE_ACCESS_X; a <<= 1)
		if (a != access)
			check_access(0, a, 4, false);

	/* The tool's own accesses are not checked. */
	allow_command(KVMI_VM_READ_PHYSICAL);
	allow_command(KVMI_VM_WRITE_PHYSICAL);
	gpa = page_gpa(0) + DATA_OFFSET;
	EXPECT_ERR(vm_write_physical(gpa, sizeof(val), &val), 0);
	EXPECT_ERR(vm_read_physical(gpa, sizeof(r), &r), 0);
	EXPECT_RESULT(r, val);
	EXPECT_RESULT(READ_ONCE(*data_hva(0)), val);
	expect_nothing(100);

	set_pages_access(0, 1, PAGE_ACCESS_ALL);
	check_access(0, access, 5, false);

	finish_vcpu_vm();
}

static void test_pf_event_read(void)
{
	test_pf_event(KVMI_PAGE_ACCESS_R);
}

static void test_pf_event_write(void)
{
	test_pf_event(KVMI_PAGE_ACCESS_W);
}

static void test_pf_event_exec(void)
{
	test_pf_event(KVMI_PAGE_ACCESS_X);
}

static void test_pf_retry(void)
{
	struct vcpu_event ev;
	__u8 a;

	setup_pf_vm(1);
	enable_vcpu_event(0, KVMI_VCPU_EVENT_PF);

	for (a = KVMI_PAGE_ACCESS_R; a <= KVMI_PAGE_ACCESS_X; a <<= 1) {
		WRITE_ONCE(*data_hva(0), ~0ULL);
		set_pages_access(0, 1, PAGE_ACCESS_ALL & ~a);
		start_access(0, a, a);
		pf_event(&ev, access_gva(0, a), a);

		/* Not emulated: the instruction faults again. */
		reply_to_event(&ev, KVMI_EVENT_ACTION_RETRY);
		pf_event(&ev, access_gva(0, a), a);
		if (a == KVMI_PAGE_ACCESS_W)
			EXPECT_RESULT(READ_ONCE(*data_hva(0)), ~0ULL);

		/* Lifted: the guest runs it, with no other event. */
		set_pages_access(0, 1, PAGE_ACCESS_ALL);
		reply_to_event(&ev, KVMI_EVENT_ACTION_RETRY);
		access_done(0, a, a);
		check_accesses_allowed(0, 8);
	}

	finish_vcpu_vm();
}

static void test_pf_crash(void)
{
	struct vcpu_event ev;
	struct kvm_regs regs;

	setup_pf_vm(1);
	enable_vcpu_event(0, KVMI_VCPU_EVENT_PF);
	WRITE_ONCE(*data_hva(0), 1);
	set_pages_access(0, 1, KVMI_PAGE_ACCESS_R | KVMI_PAGE_ACCESS_X);

	start_access(0, KVMI_PAGE_ACCESS_W, 2);
	pf_event(&ev, access_gva(0, KVMI_PAGE_ACCESS_W), KVMI_PAGE_ACCESS_W);
	reply_to_event(&ev, KVMI_EVENT_ACTION_CRASH);
	check_crash_exit();

	/* RIP on the write, which was not done. */
	vcpu_regs_get(test_vcpu, &regs);
	EXPECT_RESULT(regs.rip, ev.common.arch.regs.rip);
	EXPECT_RESULT(READ_ONCE(*data_hva(0)), 1);

	teardown_vm();
}

static void test_pf_not_enabled(void)
{
	setup_pf_vm(1);
	set_pages_access(0, 1, 0);

	/* Not allowed, then allowed but not enabled. */
	check_accesses_allowed(0, 1);
	allow_event(KVMI_VCPU_EVENT_PF);
	check_accesses_allowed(0, 2);

	/* Enabled, then disabled. */
	enable_vcpu_event(0, KVMI_VCPU_EVENT_PF);
	check_access(0, KVMI_PAGE_ACCESS_W, 3, true);
	EXPECT_ERR(vcpu_control_events(0, KVMI_VCPU_EVENT_PF, 0), 0);
	check_accesses_allowed(0, 4);

	/* Enabled, but the tool is gone. */
	EXPECT_ERR(vcpu_control_events(0, KVMI_VCPU_EVENT_PF, 1), 0);
	close_tool_socket();
	check_accesses_allowed(0, 5);

	expect_hooked_until_unhook();
	finish_vcpu_vm();
}

#define THP_ENABLED	"/sys/kernel/mm/transparent_hugepage/enabled"
#define FREE_2M_PAGES	"/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages"
#define NO_HUGE_PAGES \
	"no transparent huge pages (CONFIG_TRANSPARENT_HUGEPAGE, not \"never\") and no free 2 MiB HugeTLB pages"

/* The first line of file @path in @buf ("" if it cannot be read). */
static void read_line(const char *path, char *buf, int size)
{
	FILE *f = fopen(path, "r");

	buf[0] = '\0';
	if (f && !fgets(buf, size, f))
		buf[0] = '\0';
	if (f)
		fclose(f);
}

/* What backs the huge page case: THP, else free 2 MiB HugeTLB pages. */
static enum vm_mem_backing_src_type huge_page_source(void)
{
	char buf[128];

	read_line(THP_ENABLED, buf, sizeof(buf));
	if (buf[0] && !strstr(buf, "[never]"))
		return VM_MEM_SRC_ANONYMOUS_THP;

	read_line(FREE_2M_PAGES, buf, sizeof(buf));
	if (atoi(buf) >= HUGE_REGIONS)
		return VM_MEM_SRC_ANONYMOUS_HUGETLB_2MB;

	skip_case(NO_HUGE_PAGES);
}

static void test_pf_huge_page(void)
{
	enum vm_mem_backing_src_type src = huge_page_source();
	const __u64 per_region = HUGE_BYTES / PAGE_BYTES;
	const __u64 mid = per_region / 2;
	__u64 before, mapped;
	char reason[160];

	setup_pf_vm(0);
	enable_vcpu_event(0, KVMI_VCPU_EVENT_PF);
	stop_runners(1);
	add_test_slot(src, HUGE_REGIONS * HUGE_BYTES, PG_LEVEL_2M);
	start_runner(0, test_vcpu);

	before = vm_get_stat(test_vm, "pages_2m");
	EXPECT_RESULT(guest_run(GOP_TOUCH, nr_test_pages, 0), nr_test_pages);
	mapped = vm_get_stat(test_vm, "pages_2m");
	pr_info("# %s: pages_2m %llu, then %llu\n",
		vm_mem_backing_src_alias(src)->name, before, mapped);
	if (mapped < before + HUGE_REGIONS) {
		snprintf(reason, sizeof(reason),
			 "KVM did not map the region with 2 MiB pages (%s, pages_2m %llu -> %llu)",
			 vm_mem_backing_src_alias(src)->name, before, mapped);
		skip_case(reason);
	}

	/* One 4 KiB page: only its 2 MiB region loses its huge mapping. */
	set_pages_access(mid, 1, KVMI_PAGE_ACCESS_R | KVMI_PAGE_ACCESS_X);
	check_access(mid, KVMI_PAGE_ACCESS_W, 1, true);
	check_access(mid - 1, KVMI_PAGE_ACCESS_W, 2, false);
	check_access(mid + 1, KVMI_PAGE_ACCESS_W, 3, false);
	check_access(mid + per_region, KVMI_PAGE_ACCESS_W, 4, false);
	check_access(mid, KVMI_PAGE_ACCESS_R, 5, false);
	check_access(mid, KVMI_PAGE_ACCESS_W, 6, true);
	EXPECT_RESULT(vm_get_stat(test_vm, "pages_2m"), mapped - 1);

	set_pages_access(mid, 1, PAGE_ACCESS_ALL);
	check_access(mid, KVMI_PAGE_ACCESS_W, 7, false);
	EXPECT_RESULT(guest_run(GOP_TOUCH, nr_test_pages, 0), nr_test_pages);
	expect_nothing(100);

	finish_vcpu_vm();
}

static void test_pf_before_first_touch(void)
{
	static struct page_access_req req;

	setup_pf_vm(3);
	enable_vcpu_event(0, KVMI_VCPU_EVENT_PF);

	build_page_access(&req, 0, 3, 0);
	req.e[0].access = KVMI_PAGE_ACCESS_W | KVMI_PAGE_ACCESS_X;
	req.e[1].access = KVMI_PAGE_ACCESS_R | KVMI_PAGE_ACCESS_X;
	req.e[2].access = KVMI_PAGE_ACCESS_R | KVMI_PAGE_ACCESS_W;
	EXPECT_ERR(vm_set_page_access(&req, PA_SIZE(3)), 0);

	check_access(0, KVMI_PAGE_ACCESS_R, 1, true);
	check_access(1, KVMI_PAGE_ACCESS_W, 2, true);
	check_access(2, KVMI_PAGE_ACCESS_X, 3, true);

	finish_vcpu_vm();
}

/* UNHOOK lifts every restriction, whatever CONTROL_CLEANUP says. */
static void test_pf_unhook_cleanup(__u8 cleanup)
{
	__u64 exits, i;

	setup_pf_vm(NR_UNHOOK_PAGES);
	enable_vcpu_event(0, KVMI_VCPU_EVENT_PF);
	allow_command(KVMI_VM_CONTROL_CLEANUP);
	EXPECT_ERR(vm_control_cleanup(cleanup), 0);
	set_pages_access(0, NR_UNHOOK_PAGES, 0);
	check_access(0, KVMI_PAGE_ACCESS_W, 1, true);

	unhook_introspection(test_vm);

	/* Emulated, each write would leave the guest. */
	count_exits(1, GOP_TOUCH, LOOP_WRITES, &exits);
	TEST_ASSERT(exits < LOOP_WRITES,
		    "%llu exits for %u writes: still restricted", exits,
		    LOOP_WRITES);

	/* A new session inherits no restriction. */
	hook_introspection(test_vm);
	enable_vcpu_event(0, KVMI_VCPU_EVENT_PF);
	for (i = 0; i < NR_UNHOOK_PAGES; i++)
		check_accesses_allowed(i, i);

	finish_vcpu_vm();
}

static void test_pf_unhook(void)
{
	test_pf_unhook_cleanup(1);
}

static void test_pf_unhook_no_cleanup(void)
{
	test_pf_unhook_cleanup(0);
}

/* GOP_TOUCH wrote @base + i to touch_gva(i), once per test page. */
static void check_touched(__u64 base)
{
	__u64 i;

	for (i = 0; i < nr_test_pages; i++)
		EXPECT_RESULT(*(__u64 *)addr_gva2hva(test_vm, touch_gva(i)),
			      base + i);
}

static void test_pf_many_pages(void)
{
	struct vcpu_event ev;
	__u64 i;

	setup_pf_vm(NR_MANY_PAGES);
	enable_vcpu_event(0, KVMI_VCPU_EVENT_PF);
	set_pages_access(0, NR_MANY_PAGES,
			 KVMI_PAGE_ACCESS_R | KVMI_PAGE_ACCESS_X);

	/* One event per page, in order. */
	guest_start(GOP_TOUCH, NR_MANY_PAGES, 0x1000000);
	for (i = 0; i < NR_MANY_PAGES; i++) {
		pf_event(&ev, touch_gva(i), KVMI_PAGE_ACCESS_W);
		reply_continue(&ev);
	}
	EXPECT_RESULT(runner_result(0), NR_MANY_PAGES);
	expect_nothing(100);
	check_touched(0x1000000);

	set_pages_access(0, NR_MANY_PAGES, PAGE_ACCESS_ALL);
	EXPECT_RESULT(guest_run(GOP_TOUCH, NR_MANY_PAGES, 0x2000000),
		      NR_MANY_PAGES);
	expect_nothing(100);
	check_touched(0x2000000);

	finish_vcpu_vm();
}

/* The result of GOP_SUM after GOP_FILL with @seed. */
static __u64 corr_sum(__u64 seed)
{
	__u64 h = CORR_HASH_INIT, k;

	for (k = 0; k < nr_test_pages * CORR_WORDS; k++)
		h = corr_hash(h, corr_value(seed, k));
	return h;
}

/*
 * The guest fills the test pages with @seed's words while they allow
 * @fill_access, then hashes them while they allow @sum_access; the tool
 * answers CONTINUE to every event.  Returns the hash.
 */
static __u64 fill_and_sum(__u64 seed, __u8 fill_access, __u8 sum_access)
{
	__u64 k, n = nr_test_pages * CORR_WORDS, sum;
	struct vcpu_event ev;

	for (k = 0; k < n; k++)
		WRITE_ONCE(*(__u64 *)addr_gva2hva(test_vm, corr_gva(k)), 0);

	set_pages_access(0, nr_test_pages, fill_access);
	guest_start(GOP_FILL, seed, 0);
	for (k = 0; k < n && !(fill_access & KVMI_PAGE_ACCESS_W); k++) {
		pf_event(&ev, corr_gva(k), KVMI_PAGE_ACCESS_W);
		reply_continue(&ev);
	}
	EXPECT_RESULT(runner_result(0), 0);

	set_pages_access(0, nr_test_pages, sum_access);
	guest_start(GOP_SUM, 0, 0);
	for (k = 0; k < n && !(sum_access & KVMI_PAGE_ACCESS_R); k++) {
		pf_event(&ev, corr_gva(k), KVMI_PAGE_ACCESS_R);
		reply_continue(&ev);
	}
	sum = runner_result(0);
	expect_nothing(100);

	for (k = 0; k < n; k++)
		EXPECT_RESULT(*(__u64 *)addr_gva2hva(test_vm, corr_gva(k)),
			      corr_value(seed, k));
	return sum;
}

static void test_pf_correctness(void)
{
	__u64 sum;

	setup_pf_vm(CORR_PAGES);
	enable_vcpu_event(0, KVMI_VCPU_EVENT_PF);

	sum = fill_and_sum(5, PAGE_ACCESS_ALL, PAGE_ACCESS_ALL);
	EXPECT_RESULT(sum, corr_sum(5));

	/* Writes forbidden for the fill, reads for the hash. */
	EXPECT_RESULT(fill_and_sum(5, KVMI_PAGE_ACCESS_R | KVMI_PAGE_ACCESS_X,
				   KVMI_PAGE_ACCESS_W | KVMI_PAGE_ACCESS_X),
		      sum);
	/* Execute only, then no access at all. */
	EXPECT_RESULT(fill_and_sum(5, KVMI_PAGE_ACCESS_X, 0), sum);

	finish_vcpu_vm();
}

/*
 * Restrictions are keyed by gfn, not by memslot: a memslot that is deleted
 * and added again, or moved away and back, finds them in place.
 */
static void test_pf_memslot(void)
{
	const __u8 rx = KVMI_PAGE_ACCESS_R | KVMI_PAGE_ACCESS_X;
	static struct page_access_req req;

	setup_pf_vm(0);
	enable_vcpu_event(0, KVMI_VCPU_EVENT_PF);
	stop_runners(1);
	add_test_slot(VM_MEM_SRC_ANONYMOUS, 2 * PAGE_BYTES, PG_LEVEL_4K);
	start_runner(0, test_vcpu);
	set_pages_access(1, 1, rx);
	check_access(1, KVMI_PAGE_ACCESS_W, 1, true);

	/* Deleted: the gfn has no memslot; added again, with new memory. */
	stop_runners(1);
	vm_mem_region_delete(test_vm, TEST_SLOT);
	build_page_access(&req, 1, 1, rx);
	EXPECT_ERR(vm_set_page_access(&req, PA_SIZE(1)), -KVM_EINVAL);
	vm_userspace_mem_region_add(test_vm, VM_MEM_SRC_ANONYMOUS,
				    TEST_SLOT_GPA, TEST_SLOT, 2, 0);
	start_runner(0, test_vcpu);
	check_access(1, KVMI_PAGE_ACCESS_W, 2, true);
	check_access(0, KVMI_PAGE_ACCESS_W, 3, false);

	/* Moved away and back. */
	stop_runners(1);
	vm_mem_region_move(test_vm, TEST_SLOT, MOVED_SLOT_GPA);
	EXPECT_ERR(vm_set_page_access(&req, PA_SIZE(1)), -KVM_EINVAL);
	vm_mem_region_move(test_vm, TEST_SLOT, TEST_SLOT_GPA);
	start_runner(0, test_vcpu);
	check_access(1, KVMI_PAGE_ACCESS_W, 4, true);

	set_pages_access(1, 1, PAGE_ACCESS_ALL);
	check_access(1, KVMI_PAGE_ACCESS_W, 5, false);

	finish_vcpu_vm();
}

/* ------------------------------------------------------------------ */
/* Demo                                                                */
/* ------------------------------------------------------------------ */

static int run_demo(void)
{
	struct kvmi_get_version_reply ver;
	struct kvmi_vm_get_info_reply info;
	char text[sizeof(demo_text)];
	unsigned int i;

	setup_vm(guest_demo_code);
	test_page_gva = vm_vaddr_alloc_page(test_vm);
	test_page_gpa = addr_gva2gpa(test_vm, test_page_gva);
	vcpu_args_set(test_vcpu, 1, test_page_gva);

	printf("Hooked a new VM; the tool talks to KVM over a socketpair\n");

	get_version(&ver);
	printf("KVMI version: %u, max message size: %u bytes, singlestep: %u\n",
	       ver.version, ver.max_msg_size, ver.features.singlestep);

	allow_command(KVMI_VM_GET_INFO);
	EXPECT_ERR(vm_get_info(&info), 0);
	printf("VM_GET_INFO: vcpu_count %u\n", info.vcpu_count);

	run_guest(UCALL_SYNC);
	printf("The guest wrote %zu bytes at gva 0x%lx (gpa 0x%llx)\n",
	       sizeof(demo_text), (unsigned long)test_page_gva,
	       (unsigned long long)test_page_gpa);

	allow_command(KVMI_VM_READ_PHYSICAL);
	EXPECT_ERR(vm_read_physical(test_page_gpa, sizeof(text), text), 0);
	TEST_ASSERT(!memcmp(text, demo_text, sizeof(text)),
		    "VM_READ_PHYSICAL returned unexpected bytes");
	printf("VM_READ_PHYSICAL gpa 0x%llx size %zu: \"%s\"\n",
	       (unsigned long long)test_page_gpa, sizeof(text), text);
	printf("bytes:");
	for (i = 0; i < sizeof(text); i++)
		printf(" %02x", (__u8)text[i]);
	printf("\n");

	run_guest(UCALL_DONE);
	teardown_vm();

	printf("Unhooked\n");
	return 0;
}

/* ------------------------------------------------------------------ */
/* Runner                                                              */
/* ------------------------------------------------------------------ */

struct kvmi_case {
	const char *name;
	void (*fn)(void);
};

static const struct kvmi_case cases[] = {
	/* ioctls */
	{ "cap_introspection", test_cap_introspection },
	{ "hook", test_hook },
	{ "hook_padding", test_hook_padding },
	{ "hook_not_a_socket", test_hook_not_a_socket },
	{ "hook_twice", test_hook_twice },
	{ "hook_after_tool_close", test_hook_after_tool_close },
	{ "unhook_not_hooked", test_unhook_not_hooked },
	{ "command_ioctl_invalid", test_command_ioctl_invalid },
	{ "event_ioctl_invalid", test_event_ioctl_invalid },
	{ "feature_ioctls_unhooked", test_feature_ioctls_unhooked },
	{ "command_disallow_always_allowed",
	  test_command_disallow_always_allowed },
	{ "command_disallow_all", test_command_disallow_all },
	{ "command_allow_one", test_command_allow_one },
	{ "preunhook_unhooked", test_preunhook_unhooked },
	{ "preunhook_event_not_enabled", test_preunhook_event_not_enabled },
	{ "preunhook_event", test_preunhook_event },
	{ "preunhook_after_tool_close", test_preunhook_after_tool_close },
	/* protocol */
	{ "unknown_message_ids", test_unknown_message_ids },
	{ "disallowed_command", test_disallowed_command },
	{ "oversized_message", test_oversized_message },
	{ "max_size_message", test_max_size_message },
	{ "truncated_header", test_truncated_header },
	{ "truncated_body", test_truncated_body },
	{ "short_payload_zero_filled", test_short_payload_zero_filled },
	{ "long_payload_ignored", test_long_payload_ignored },
	{ "write_physical_short_payload", test_write_physical_short_payload },
	{ "unhook_partial_message", test_unhook_partial_message },
	{ "unhook_busy_connection", test_unhook_busy_connection },
	/* commands */
	{ "get_version", test_get_version },
	{ "vm_check_command", test_vm_check_command },
	{ "vm_check_event", test_vm_check_event },
	{ "vm_get_info", test_vm_get_info },
	{ "vm_get_info_two_vcpus", test_vm_get_info_two_vcpus },
	{ "vm_control_events", test_vm_control_events },
	{ "vm_read_physical", test_vm_read_physical },
	{ "vm_write_physical", test_vm_write_physical },
	{ "vm_read_physical_invalid", test_vm_read_physical_invalid },
	{ "vm_write_physical_invalid", test_vm_write_physical_invalid },
	/* vCPU commands and events */
	{ "pause_vcpu", test_pause_vcpu },
	{ "pause_vcpu_busy", test_pause_vcpu_busy },
	{ "vcpu_common_checks", test_vcpu_common_checks },
	{ "vcpu_get_info", test_vcpu_get_info },
	{ "vcpu_control_events", test_vcpu_control_events },
	{ "vcpu_get_registers", test_vcpu_get_registers },
	{ "vcpu_set_registers", test_vcpu_set_registers },
	{ "vcpu_get_cpuid", test_vcpu_get_cpuid },
	{ "hypercall_event", test_hypercall_event },
	{ "event_reply_errors", test_event_reply_errors },
	{ "crash_action", test_crash_action },
	{ "pause_crash", test_pause_crash },
	{ "close_while_waiting", test_close_while_waiting },
	{ "unhook_while_waiting", test_unhook_while_waiting },
	{ "preunhook_while_waiting", test_preunhook_while_waiting },
	{ "multi_vcpu_events", test_multi_vcpu_events },
	{ "commands_while_waiting", test_commands_while_waiting },
	{ "breakpoint_event", test_breakpoint_event },
	{ "breakpoint_vs_guest_debug", test_breakpoint_vs_guest_debug },
	/* x86 control events and state (issue 4) */
	{ "control_cr", test_control_cr },
	{ "cr_event", test_cr_event },
	{ "cr_event_bad_reply", test_cr_event_bad_reply },
	{ "control_msr", test_control_msr },
	{ "msr_event", test_msr_event },
	{ "xsetbv_event", test_xsetbv_event },
	{ "get_xcr", test_get_xcr },
	{ "descriptor_event", test_descriptor_event },
	{ "inject_exception", test_inject_exception },
	{ "inject_exception_df", test_inject_exception_df },
	{ "vcpu_xsave", test_vcpu_xsave },
	{ "get_mtrr_type", test_get_mtrr_type },
	{ "translate_gva", test_translate_gva },
	{ "control_singlestep", test_control_singlestep },
	{ "singlestep_event", test_singlestep_event },
	{ "control_cleanup", test_control_cleanup },
	{ "cleanup_off", test_cleanup_off },
	{ "cleanup_two_vcpus", test_cleanup_two_vcpus },
	/* guest page access (issue 5) */
	{ "set_page_access_errors", test_set_page_access_errors },
	{ "get_max_gfn", test_get_max_gfn },
	{ "pf_event_read", test_pf_event_read },
	{ "pf_event_write", test_pf_event_write },
	{ "pf_event_exec", test_pf_event_exec },
	{ "pf_retry", test_pf_retry },
	{ "pf_crash", test_pf_crash },
	{ "pf_not_enabled", test_pf_not_enabled },
	{ "pf_huge_page", test_pf_huge_page },
	{ "pf_before_first_touch", test_pf_before_first_touch },
	{ "pf_unhook", test_pf_unhook },
	{ "pf_unhook_no_cleanup", test_pf_unhook_no_cleanup },
	{ "pf_many_pages", test_pf_many_pages },
	{ "pf_correctness", test_pf_correctness },
	{ "pf_memslot", test_pf_memslot },
};

/*
 * Wait for the child running a case.  Returns its wait status, or -1 if it
 * could not be reaped in time (e.g. stuck in the kernel).
 */
static int wait_case(pid_t pid)
{
	long long deadline = now_ms() + (CASE_TIMEOUT_SEC + 30) * 1000LL;
	int status;
	pid_t r;

	for (;;) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return status;
		TEST_ASSERT(r == 0 || errno == EINTR, "waitpid() failed");
		if (now_ms() > deadline) {
			kill(pid, SIGKILL);
			return -1;
		}
		usleep(10 * 1000);
	}
}

static void run_case(const struct kvmi_case *c)
{
	int status;
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	skip_reason[0] = '\0';

	pid = fork();
	TEST_ASSERT(pid >= 0, "fork() failed");
	if (!pid) {
		alarm(CASE_TIMEOUT_SEC);
		c->fn();
		exit(KSFT_PASS);
	}

	status = wait_case(pid);
	if (status == -1) {
		ksft_print_msg("%s: the child process is stuck\n", c->name);
		ksft_test_result_fail("%s\n", c->name);
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == KSFT_PASS) {
		ksft_test_result_pass("%s\n", c->name);
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == KSFT_SKIP) {
		ksft_test_result_skip("%s%s%s\n", c->name,
				      skip_reason[0] ? ": " : "", skip_reason);
	} else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
		ksft_print_msg("%s: timed out after %d seconds\n", c->name,
			       CASE_TIMEOUT_SEC);
		ksft_test_result_fail("%s\n", c->name);
	} else if (WIFSIGNALED(status)) {
		ksft_print_msg("%s: killed by signal %d\n", c->name,
			       WTERMSIG(status));
		ksft_test_result_fail("%s\n", c->name);
	} else {
		ksft_print_msg("%s: exit status %d\n", c->name,
			       WEXITSTATUS(status));
		ksft_test_result_fail("%s\n", c->name);
	}
}

static const struct kvmi_case *find_case(const char *name)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(cases); i++)
		if (!strcmp(cases[i].name, name))
			return &cases[i];
	return NULL;
}

int main(int argc, char *argv[])
{
	unsigned int i;
	int a;

	if (argc > 1 && !strcmp(argv[1], "--list")) {
		for (i = 0; i < ARRAY_SIZE(cases); i++)
			printf("%s\n", cases[i].name);
		return 0;
	}

	/* Shared with the children, for the reason of a skipped case. */
	skip_reason = mmap(NULL, PAGE_BYTES, PROT_READ | PROT_WRITE,
			   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	TEST_ASSERT(skip_reason != MAP_FAILED, "mmap() failed");

	__TEST_REQUIRE(kvm_has_cap(KVM_CAP_INTROSPECTION),
		       "KVM_CAP_INTROSPECTION is not available (no KVMI in the kernel, or kvm.introspection=0)");

	if (argc > 1 && !strcmp(argv[1], "--demo"))
		return run_demo();

	for (a = 1; a < argc; a++)
		if (!find_case(argv[a]))
			ksft_exit_fail_msg("Unknown case '%s' (see --list)\n",
					   argv[a]);

	ksft_print_header();

	if (argc > 1) {
		ksft_set_plan(argc - 1);
		for (a = 1; a < argc; a++)
			run_case(find_case(argv[a]));
	} else {
		ksft_set_plan(ARRAY_SIZE(cases));
		for (i = 0; i < ARRAY_SIZE(cases); i++)
			run_case(&cases[i]);
	}

	ksft_finished();
}
