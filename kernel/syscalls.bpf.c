// SPDX-License-Identifier: GPL-2.0
/* Privilege-relevant syscalls (ptrace, set*id, capset, unshare, setns, mount, module loads,
 * bpf, memfd_create, ...) from raw_syscalls:sys_enter. Which syscall numbers are reported is
 * set by user space in watched_syscalls: every other syscall ends at one array lookup. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "garrison_events.h"

char LICENSE[] SEC("license") = "GPL";

const struct garrison_syscall_event *garrison_syscall_event_btf __attribute__((unused));

#define MAX_SYSCALL_NR 512
#define SYS_SOCKET 41 /* x86_64 */
#define AF_PACKET 17

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_SYSCALL_NR);
	__type(key, __u32);
	__type(value, __u8);
} watched_syscalls SEC(".maps");

/* the sensor's own process: its bpf() calls (reading counters) are not events */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} ignored_tgid SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} syscall_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} syscall_drops SEC(".maps");

SEC("raw_tp/sys_enter")
int handle_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	struct task_struct *task;
	struct garrison_syscall_event *event;
	__u32 nr = (__u32)ctx->args[1];
	__u64 id;
	__u8 *watched;
	__u32 zero = 0;

	__u32 *ignored;

	watched = bpf_map_lookup_elem(&watched_syscalls, &nr);
	if (!watched || !*watched)
		return 0;
	ignored = bpf_map_lookup_elem(&ignored_tgid, &zero);
	if (ignored && *ignored == bpf_get_current_pid_tgid() >> 32)
		return 0;
	/* socket(2) is busy: only packet sockets (sniffing, ARP spoofing) are reported */
	if (nr == SYS_SOCKET && BPF_CORE_READ(regs, di) != AF_PACKET)
		return 0;
	event = bpf_ringbuf_reserve(&syscall_events, sizeof(*event), 0);
	if (!event) {
		__u64 *drops = bpf_map_lookup_elem(&syscall_drops, &zero);
		if (drops)
			*drops += 1;
		return 0;
	}
	task = (struct task_struct *)bpf_get_current_task();
	id = bpf_get_current_pid_tgid();
	event->type = GARRISON_EVENT_SYSCALL;
	event->nr = nr;
	event->pid = id >> 32;
	event->tid = (__u32)id;
	event->ppid = BPF_CORE_READ(task, real_parent, tgid);
	event->uid = (__u32)bpf_get_current_uid_gid();
	event->time_ns = bpf_ktime_get_boot_ns();
	event->cgroup_id = bpf_get_current_cgroup_id();
	event->cap_effective = BPF_CORE_READ(task, cred, cap_effective.val);
	/* the first three arguments (x86_64 calling convention for syscalls) */
	event->args[0] = BPF_CORE_READ(regs, di);
	event->args[1] = BPF_CORE_READ(regs, si);
	event->args[2] = BPF_CORE_READ(regs, dx);
	bpf_get_current_comm(event->comm, sizeof(event->comm));
	bpf_ringbuf_submit(event, 0);
	return 0;
}
