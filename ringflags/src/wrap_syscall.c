/*
 * A wrapper for libc's syscall(), linked in with -Wl,--wrap=syscall, that adds
 * IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG to every io_uring_setup call
 * that asks for neither polling mode nor a task-run mode of its own. glommio's bundled
 * liburing creates its rings through syscall() and offers no way to pass setup flags;
 * without COOP_TASKRUN the kernel interrupts the ring's thread (an IPI) for every
 * completion that arrives from another CPU. Every other call is forwarded unchanged.
 *
 * Per thread it counts the rings it saw, changed, and could not change (the kernel
 * refused the flags: before Linux 5.19); see lib.rs.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/syscall.h>

#define SETUP_IOPOLL (1U << 0)
#define SETUP_SQPOLL (1U << 1)
#define SETUP_COOP_TASKRUN (1U << 8)
#define SETUP_TASKRUN_FLAG (1U << 9)
#define SETUP_DEFER_TASKRUN (1U << 13)
#define LEAVE_ALONE (SETUP_IOPOLL | SETUP_SQPOLL | SETUP_COOP_TASKRUN | SETUP_DEFER_TASKRUN)

/* The head of struct io_uring_params: flags is its third 32-bit field. */
struct params_head {
	uint32_t sq_entries;
	uint32_t cq_entries;
	uint32_t flags;
};

/* Mirrored by RingCounts in lib.rs. */
struct corekv_ring_counts {
	uint32_t seen;
	uint32_t changed;
	uint32_t refused;
};

static _Thread_local struct corekv_ring_counts counts;
/* Set once the kernel refused the flags, so later rings skip the failed attempt. */
static _Atomic int refused_by_kernel;

/* libc's syscall(), under --wrap=syscall. Weak, so that a program linked without the
 * wrap (and so never calling __wrap_syscall) still links. */
extern long __real_syscall(long number, ...) __attribute__((weak));

long __wrap_syscall(long number, ...)
{
	/* syscall(2) passes at most six arguments, all machine words; reading six is what
	 * libc's own syscall() does whatever the caller passed. */
	va_list ap;
	va_start(ap, number);
	long a1 = va_arg(ap, long), a2 = va_arg(ap, long), a3 = va_arg(ap, long);
	long a4 = va_arg(ap, long), a5 = va_arg(ap, long), a6 = va_arg(ap, long);
	va_end(ap);
	if (number != SYS_io_uring_setup)
		return __real_syscall(number, a1, a2, a3, a4, a5, a6);

	struct params_head *p = (struct params_head *)a2;
	counts.seen++;
	if (p == 0 || (p->flags & LEAVE_ALONE))
		return __real_syscall(number, a1, a2, a3, a4, a5, a6);
	if (refused_by_kernel) {
		counts.refused++;
		return __real_syscall(number, a1, a2, a3, a4, a5, a6);
	}
	uint32_t asked = p->flags;
	p->flags = asked | SETUP_COOP_TASKRUN | SETUP_TASKRUN_FLAG;
	long fd = __real_syscall(number, a1, a2, a3, a4, a5, a6);
	if (fd >= 0) {
		counts.changed++;
		return fd;
	}
	if (errno != EINVAL) {
		p->flags = asked;
		return fd;
	}
	/* Linux before 5.19 rejects flags it does not know: set up the ring as asked. */
	p->flags = asked;
	fd = __real_syscall(number, a1, a2, a3, a4, a5, a6);
	if (fd >= 0) {
		refused_by_kernel = 1;
		counts.refused++;
	}
	return fd;
}

void corekv_ring_counts(struct corekv_ring_counts *out)
{
	*out = counts;
}
