// SPDX-License-Identifier: GPL-2.0
/* File opens of sensitive paths, filtered in the kernel: a path whose leading bytes match a
 * prefix in the watched_paths LPM trie (filled by user space) is reported; nothing else
 * leaves the kernel. Relative paths are not resolved here and are not reported. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "garrison_events.h"

char LICENSE[] SEC("license") = "GPL";

const struct garrison_file_event *garrison_file_event_btf __attribute__((unused));
const struct garrison_path_key *garrison_path_key_btf __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct garrison_path_key);
	__type(value, __u8);
} watched_paths SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} file_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} file_drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct garrison_path_key);
} scratch SEC(".maps");

static __always_inline int on_open(const char *filename, __u32 flags)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct garrison_file_event *event;
	struct garrison_path_key *key;
	__u64 id = bpf_get_current_pid_tgid();
	__u32 zero = 0;

	key = bpf_map_lookup_elem(&scratch, &zero);
	if (!key)
		return 0;
	if (bpf_probe_read_user_str(key->path, sizeof(key->path), filename) <= 1 || key->path[0] != '/')
		return 0;
	key->prefixlen = GARRISON_PREFIX_LEN * 8;
	if (!bpf_map_lookup_elem(&watched_paths, key))
		return 0;
	event = bpf_ringbuf_reserve(&file_events, sizeof(*event), 0);
	if (!event) {
		__u64 *drops = bpf_map_lookup_elem(&file_drops, &zero);
		if (drops)
			*drops += 1;
		return 0;
	}
	event->type = GARRISON_EVENT_OPEN;
	event->pid = id >> 32;
	event->tid = (__u32)id;
	event->ppid = BPF_CORE_READ(task, real_parent, tgid);
	event->uid = (__u32)bpf_get_current_uid_gid();
	event->flags = flags;
	event->time_ns = bpf_ktime_get_boot_ns();
	event->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(event->comm, sizeof(event->comm));
	bpf_probe_read_user_str(event->path, sizeof(event->path), filename);
	bpf_ringbuf_submit(event, 0);
	return 0;
}

SEC("tp/syscalls/sys_enter_openat")
int handle_openat(struct trace_event_raw_sys_enter *ctx)
{
	return on_open((const char *)ctx->args[1], (__u32)ctx->args[2]);
}

SEC("tp/syscalls/sys_enter_open")
int handle_open(struct trace_event_raw_sys_enter *ctx)
{
	return on_open((const char *)ctx->args[0], (__u32)ctx->args[1]);
}
