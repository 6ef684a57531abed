// SPDX-License-Identifier: GPL-2.0
/* File opens of sensitive paths, filtered in the kernel: a path whose leading bytes match a
 * prefix in the watched_paths LPM trie (filled by user space) is reported; nothing else
 * leaves the kernel. Each prefix says whether reads, writes or both are reported. The
 * open is remembered at syscall entry and reported at exit, with its result (a descriptor
 * or -errno), so failed attempts are seen too. Relative paths are not resolved here and
 * are not reported. */
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
	__type(value, __u8); /* GARRISON_WATCH_READ | GARRISON_WATCH_WRITE */
} watched_paths SEC(".maps");

/* opens between entry and exit, by thread; LRU so a lost exit cannot fill it */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct garrison_file_event);
} pending SEC(".maps");

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

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct garrison_file_event);
} event_scratch SEC(".maps");

#define O_ACCMODE 00000003
#define O_CREAT 00000100
#define O_TRUNC 00001000

static __always_inline int on_open(const char *filename, __u32 flags, __u32 mode)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct garrison_file_event *event;
	struct garrison_path_key *key;
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	__u32 zero = 0;
	__u8 *watch;
	__u8 wanted;

	key = bpf_map_lookup_elem(&scratch, &zero);
	if (!key)
		return 0;
	if (bpf_probe_read_user_str(key->path, sizeof(key->path), filename) <= 1 || key->path[0] != '/')
		return 0;
	key->prefixlen = GARRISON_PREFIX_LEN * 8;
	watch = bpf_map_lookup_elem(&watched_paths, key);
	if (!watch)
		return 0;
	wanted = ((flags & O_ACCMODE) || (flags & (O_CREAT | O_TRUNC))) ? GARRISON_WATCH_WRITE
									   : GARRISON_WATCH_READ;
	if (!(*watch & wanted))
		return 0;
	event = bpf_map_lookup_elem(&event_scratch, &zero);
	if (!event)
		return 0;
	event->type = GARRISON_EVENT_OPEN;
	event->pid = id >> 32;
	event->tid = tid;
	event->ppid = BPF_CORE_READ(task, real_parent, tgid);
	event->uid = (__u32)bpf_get_current_uid_gid();
	event->flags = flags;
	event->ret = 0;
	event->mode = mode;
	event->time_ns = bpf_ktime_get_boot_ns();
	event->cgroup_id = bpf_get_current_cgroup_id();
	event->cap_effective = BPF_CORE_READ(task, cred, cap_effective.val);
	bpf_get_current_comm(event->comm, sizeof(event->comm));
	bpf_probe_read_user_str(event->path, sizeof(event->path), filename);
	bpf_map_update_elem(&pending, &tid, event, BPF_ANY);
	return 0;
}

static __always_inline int on_open_exit(long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct garrison_file_event *pending_event = bpf_map_lookup_elem(&pending, &tid);
	struct garrison_file_event *event;
	__u32 zero = 0;

	if (!pending_event)
		return 0;
	event = bpf_ringbuf_reserve(&file_events, sizeof(*event), 0);
	if (!event) {
		__u64 *drops = bpf_map_lookup_elem(&file_drops, &zero);
		if (drops)
			*drops += 1;
		bpf_map_delete_elem(&pending, &tid);
		return 0;
	}
	__builtin_memcpy(event, pending_event, sizeof(*event));
	event->ret = (__s32)ret;
	bpf_map_delete_elem(&pending, &tid);
	bpf_ringbuf_submit(event, 0);
	return 0;
}

SEC("tp/syscalls/sys_enter_openat")
int handle_openat(struct trace_event_raw_sys_enter *ctx)
{
	return on_open((const char *)ctx->args[1], (__u32)ctx->args[2], (__u32)ctx->args[3]);
}

SEC("tp/syscalls/sys_enter_open")
int handle_open(struct trace_event_raw_sys_enter *ctx)
{
	return on_open((const char *)ctx->args[0], (__u32)ctx->args[1], (__u32)ctx->args[2]);
}

SEC("tp/syscalls/sys_exit_openat")
int handle_openat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return on_open_exit(ctx->ret);
}

SEC("tp/syscalls/sys_exit_open")
int handle_open_exit(struct trace_event_raw_sys_exit *ctx)
{
	return on_open_exit(ctx->ret);
}
