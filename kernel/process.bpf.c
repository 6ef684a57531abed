// SPDX-License-Identifier: GPL-2.0
/* Process events (CO-RE): exec from sched:sched_process_exec, new processes from the
 * sched_process_fork raw tracepoint (it gives the child's task, so threads are left out),
 * process exits from sched:sched_process_exit. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "garrison_events.h"

char LICENSE[] SEC("license") = "GPL";

/* keeps the wire struct in the object's BTF, where a test checks the Python mirror */
const struct garrison_exec_event *garrison_exec_event_btf __attribute__((unused));
const struct garrison_task_event *garrison_task_event_btf __attribute__((unused));

/* the one ring buffer: the other objects reuse it (user space shares its fd before they
 * load), so every event is read in the order the kernel reserved it */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 24);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

/* Blocking (opt-in): user space fills these from the drift policy and the deny-list. At
 * sched_process_exec the new image is mapped but has not run an instruction; SIGKILL sent
 * there ends it first (the Tetragon Sigkill model; BPF LSM is not loadable everywhere). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32); /* GARRISON_ENFORCE_* */
} enforce SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* cgroup id of a container whose drift is blocked */
	__type(value, __u8);
} block_drift SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, char[GARRISON_PATH_LEN]); /* the path given to exec, NUL-padded */
	__type(value, __u8);
} deny_paths SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct garrison_inode_key);
	__type(value, __u8);
} deny_inodes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, char[GARRISON_PATH_LEN]); /* drift allowed for these executables */
	__type(value, __u8);
} allow_paths SEC(".maps");

struct path_buf {
	char path[GARRISON_PATH_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct path_buf);
} path_scratch SEC(".maps");

const struct garrison_inode_key *garrison_inode_key_btf __attribute__((unused));

#define OVERLAYFS_SUPER_MAGIC 0x794c7630
#define SIGKILL 9

/* Should this exec die before it runs? (only when user space enabled a list) */
static __always_inline bool must_block(__u32 flags, __u64 cgroup_id, struct inode *inode,
				       const char *filename)
{
	__u32 zero = 0;
	__u32 *mode = bpf_map_lookup_elem(&enforce, &zero);
	struct garrison_inode_key ino_key = {};
	struct path_buf *buf;

	if (!mode || !*mode)
		return false;
	buf = bpf_map_lookup_elem(&path_scratch, &zero);
	if (!buf)
		return false;
	__builtin_memset(buf->path, 0, sizeof(buf->path));
	bpf_probe_read_kernel_str(buf->path, sizeof(buf->path), filename);
	if (*mode & GARRISON_ENFORCE_DENY) {
		ino_key.ino = BPF_CORE_READ(inode, i_ino);
		ino_key.dev = BPF_CORE_READ(inode, i_sb, s_dev);
		if (bpf_map_lookup_elem(&deny_inodes, &ino_key) || bpf_map_lookup_elem(&deny_paths, buf->path))
			return true;
	}
	if ((*mode & GARRISON_ENFORCE_DRIFT) && (flags & (GARRISON_EXE_UPPER_LAYER | GARRISON_EXE_MEMFD)) &&
	    bpf_map_lookup_elem(&block_drift, &cgroup_id) && !bpf_map_lookup_elem(&allow_paths, buf->path))
		return true;
	return false;
}

/* What kind of file the new program image is: overlay, upper layer, memfd. */
static __always_inline __u32 exe_flags(struct file *exe, struct inode *inode)
{
	char name[8] = {};
	__u32 flags = 0;

	if (BPF_CORE_READ(inode, i_sb, s_magic) == OVERLAYFS_SUPER_MAGIC) {
		/* the VFS inode is embedded in struct ovl_inode, beside __upperdentry */
		struct ovl_inode *ovl = (void *)inode - bpf_core_field_offset(struct ovl_inode, vfs_inode);

		flags |= GARRISON_EXE_OVERLAY;
		if (BPF_CORE_READ(ovl, __upperdentry))
			flags |= GARRISON_EXE_UPPER_LAYER;
	}
	bpf_probe_read_kernel_str(name, sizeof(name), BPF_CORE_READ(exe, f_path.dentry, d_name.name));
	if (name[0] == 'm' && name[1] == 'e' && name[2] == 'm' && name[3] == 'f' && name[4] == 'd' &&
	    name[5] == ':')
		flags |= GARRISON_EXE_MEMFD;
	return flags;
}

/* The controlling terminal as tty_nr in /proc/<pid>/stat encodes it (0: none). */
static __always_inline __u32 tty_nr(struct task_struct *task)
{
	struct tty_struct *tty = BPF_CORE_READ(task, signal, tty);
	__u32 major, minor;

	if (!tty)
		return 0;
	major = BPF_CORE_READ(tty, driver, major);
	minor = BPF_CORE_READ(tty, driver, minor_start) + BPF_CORE_READ(tty, index);
	return (minor & 0xff) | (major << 8) | ((minor & ~0xffU) << 12);
}

static __always_inline void count_drop(void)
{
	__u32 zero = 0;
	__u64 *value = bpf_map_lookup_elem(&drops, &zero);
	if (value)
		*value += 1;
}

SEC("tp/sched/sched_process_exec")
int handle_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct garrison_exec_event *event;
	__u64 id = bpf_get_current_pid_tgid();
	__u64 ugid = bpf_get_current_uid_gid();
	unsigned long arg_start, arg_end;
	unsigned int filename_loc;
	__u64 size = 0;

	event = bpf_ringbuf_reserve(&events, sizeof(*event), 0);
	if (!event) {
		count_drop();
		return 0;
	}
	event->type = GARRISON_EVENT_EXEC;
	event->pid = id >> 32;
	event->tid = (__u32)id;
	event->ppid = BPF_CORE_READ(task, real_parent, tgid);
	event->uid = (__u32)ugid;
	event->gid = ugid >> 32;
	event->time_ns = bpf_ktime_get_boot_ns();
	event->cgroup_id = bpf_get_current_cgroup_id();
	event->cap_effective = BPF_CORE_READ(task, cred, cap_effective.val);
	{
		struct file *exe = BPF_CORE_READ(task, mm, exe_file);
		struct inode *inode = BPF_CORE_READ(exe, f_inode);

		event->exe_ino = BPF_CORE_READ(inode, i_ino);
		event->flags = exe_flags(exe, inode);
	}
	event->tty = tty_nr(task);
	event->sid = BPF_CORE_READ(task, signal, pids[PIDTYPE_SID], numbers[0].nr);
	event->loginuid = (__u32)-1;
	if (bpf_core_field_exists(task->loginuid))
		event->loginuid = BPF_CORE_READ(task, loginuid.val);
	bpf_get_current_comm(event->comm, sizeof(event->comm));

	filename_loc = ctx->__data_loc_filename & 0xFFFF;
	bpf_probe_read_kernel_str(event->filename, sizeof(event->filename), (void *)ctx + filename_loc);
	{
		struct inode *inode = BPF_CORE_READ(task, mm, exe_file, f_inode);

		if (must_block(event->flags, event->cgroup_id, inode, (void *)ctx + filename_loc)) {
			bpf_send_signal(SIGKILL);
			event->flags |= GARRISON_EXE_BLOCKED;
		}
	}

	/* argv as the process sees it: NUL-separated, bounded by GARRISON_ARGS_LEN */
	arg_start = BPF_CORE_READ(task, mm, arg_start);
	arg_end = BPF_CORE_READ(task, mm, arg_end);
	if (arg_end > arg_start)
		size = arg_end - arg_start;
	if (size > GARRISON_ARGS_LEN - 1)
		size = GARRISON_ARGS_LEN - 1;
	/* clang knows size < 512 and would drop a plain mask; the verifier needs it in the
	 * register actually passed, so the mask is forced (GARRISON_ARGS_LEN is a power of two) */
	asm volatile("%[size] &= 511" : [size] "+r"(size));
	if (size && bpf_probe_read_user(event->args, size, (void *)arg_start) < 0)
		size = 0;
	event->args_len = size;

	bpf_ringbuf_submit(event, 0);
	return 0;
}

SEC("raw_tp/sched_process_fork")
int handle_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *parent = (struct task_struct *)ctx->args[0];
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	struct garrison_task_event *event;
	__u32 child_tgid = BPF_CORE_READ(child, tgid);

	if (BPF_CORE_READ(child, pid) != child_tgid)
		return 0; /* a new thread of an existing process */
	event = bpf_ringbuf_reserve(&events, sizeof(*event), 0);
	if (!event) {
		count_drop();
		return 0;
	}
	event->type = GARRISON_EVENT_FORK;
	event->pid = child_tgid;
	event->ppid = BPF_CORE_READ(parent, tgid);
	event->exit_code = 0;
	event->time_ns = bpf_ktime_get_boot_ns();
	event->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(event->comm, sizeof(event->comm));
	bpf_ringbuf_submit(event, 0);
	return 0;
}

SEC("tp/sched/sched_process_exit")
int handle_exit(void *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct garrison_task_event *event;
	__u64 id = bpf_get_current_pid_tgid();

	if ((__u32)id != id >> 32)
		return 0; /* a thread ended; the process goes on */
	event = bpf_ringbuf_reserve(&events, sizeof(*event), 0);
	if (!event) {
		count_drop();
		return 0;
	}
	event->type = GARRISON_EVENT_EXIT;
	event->pid = id >> 32;
	event->ppid = BPF_CORE_READ(task, real_parent, tgid);
	event->exit_code = BPF_CORE_READ(task, exit_code);
	event->time_ns = bpf_ktime_get_boot_ns();
	event->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(event->comm, sizeof(event->comm));
	bpf_ringbuf_submit(event, 0);
	return 0;
}
