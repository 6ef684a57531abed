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
const struct garrison_fsop_event *garrison_fsop_event_btf __attribute__((unused));

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

/* -- removals, renames, permission and time changes ------------------------------------- */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct garrison_fsop_event);
} fsop_scratch SEC(".maps");

#define S_ISUID 04000
#define S_ISGID 02000
#define EXEC_BITS 0111

/* the watched-paths value for an absolute path (0: not watched or not absolute) */
static __always_inline __u8 watch_of(const char *filename)
{
	struct garrison_path_key *key;
	__u32 zero = 0;
	__u8 *watch;

	key = bpf_map_lookup_elem(&scratch, &zero);
	if (!key)
		return 0;
	if (bpf_probe_read_user_str(key->path, sizeof(key->path), filename) <= 1 || key->path[0] != '/')
		return 0;
	key->prefixlen = GARRISON_PREFIX_LEN * 8;
	watch = bpf_map_lookup_elem(&watched_paths, key);
	return watch ? *watch : 0;
}

static __always_inline int send_fsop(__u32 type, const char *path, const char *path2, __u32 mode)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct garrison_fsop_event *event;
	__u64 id = bpf_get_current_pid_tgid();
	__u32 zero = 0;

	event = bpf_ringbuf_reserve(&file_events, sizeof(*event), 0);
	if (!event) {
		__u64 *drops = bpf_map_lookup_elem(&file_drops, &zero);
		if (drops)
			*drops += 1;
		return 0;
	}
	event->type = type;
	event->pid = id >> 32;
	event->tid = (__u32)id;
	event->ppid = BPF_CORE_READ(task, real_parent, tgid);
	event->uid = (__u32)bpf_get_current_uid_gid();
	event->mode = mode;
	event->time_ns = bpf_ktime_get_boot_ns();
	event->cgroup_id = bpf_get_current_cgroup_id();
	event->cap_effective = BPF_CORE_READ(task, cred, cap_effective.val);
	bpf_get_current_comm(event->comm, sizeof(event->comm));
	event->path[0] = 0;
	event->path2[0] = 0;
	bpf_probe_read_user_str(event->path, sizeof(event->path), path);
	if (path2)
		bpf_probe_read_user_str(event->path2, sizeof(event->path2), path2);
	bpf_ringbuf_submit(event, 0);
	return 0;
}

/* removals and renames of watched paths (history files, logs, binaries, /etc) */
static __always_inline int on_unlink(const char *path)
{
	if (!(watch_of(path) & GARRISON_WATCH_WRITE))
		return 0;
	return send_fsop(GARRISON_EVENT_UNLINK, path, 0, 0);
}

static __always_inline int on_rename(const char *from, const char *to)
{
	if (!(watch_of(from) & GARRISON_WATCH_WRITE) && !(watch_of(to) & GARRISON_WATCH_WRITE))
		return 0;
	return send_fsop(GARRISON_EVENT_RENAME, from, to, 0);
}

/* setuid/setgid bits anywhere; execute bits under prefixes marked for them */
static __always_inline int on_chmod(const char *path, __u32 mode)
{
	if (!(mode & (S_ISUID | S_ISGID)) &&
	    !((mode & EXEC_BITS) && (watch_of(path) & GARRISON_WATCH_EXEC_BIT)))
		return 0;
	return send_fsop(GARRISON_EVENT_CHMOD, path, 0, mode);
}

SEC("tp/syscalls/sys_enter_unlinkat")
int handle_unlinkat(struct trace_event_raw_sys_enter *ctx)
{
	return on_unlink((const char *)ctx->args[1]);
}

SEC("tp/syscalls/sys_enter_unlink")
int handle_unlink(struct trace_event_raw_sys_enter *ctx)
{
	return on_unlink((const char *)ctx->args[0]);
}

SEC("tp/syscalls/sys_enter_renameat2")
int handle_renameat2(struct trace_event_raw_sys_enter *ctx)
{
	return on_rename((const char *)ctx->args[1], (const char *)ctx->args[3]);
}

SEC("tp/syscalls/sys_enter_renameat")
int handle_renameat(struct trace_event_raw_sys_enter *ctx)
{
	return on_rename((const char *)ctx->args[1], (const char *)ctx->args[3]);
}

SEC("tp/syscalls/sys_enter_rename")
int handle_rename(struct trace_event_raw_sys_enter *ctx)
{
	return on_rename((const char *)ctx->args[0], (const char *)ctx->args[1]);
}

SEC("tp/syscalls/sys_enter_fchmodat")
int handle_fchmodat(struct trace_event_raw_sys_enter *ctx)
{
	return on_chmod((const char *)ctx->args[1], (__u32)ctx->args[2]);
}

SEC("tp/syscalls/sys_enter_chmod")
int handle_chmod(struct trace_event_raw_sys_enter *ctx)
{
	return on_chmod((const char *)ctx->args[0], (__u32)ctx->args[1]);
}

/* explicit file times (touch -d/-r/-t, os.utime with times): rare, reported wherever they
 * are set; setting "now" (times == NULL) is ordinary and stays in the kernel */
SEC("tp/syscalls/sys_enter_utimensat")
int handle_utimensat(struct trace_event_raw_sys_enter *ctx)
{
	const char *path = (const char *)ctx->args[1];

	if (!ctx->args[2] || !path)
		return 0;
	return send_fsop(GARRISON_EVENT_UTIMES, path, 0, 0);
}

SEC("tp/syscalls/sys_enter_utimes")
int handle_utimes(struct trace_event_raw_sys_enter *ctx)
{
	if (!ctx->args[1])
		return 0;
	return send_fsop(GARRISON_EVENT_UTIMES, (const char *)ctx->args[0], 0, 0);
}
