// SPDX-License-Identifier: GPL-2.0
/* Network events (CO-RE): outbound connects (IPv4, IPv6) and a socket duplicated onto
 * stdin, stdout or stderr (dup2/dup3), the mark of a reverse shell. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "garrison_events.h"

char LICENSE[] SEC("license") = "GPL";

/* keeps the wire struct in the object's BTF, where a test checks the Python mirror */
const struct garrison_net_event *garrison_net_event_btf __attribute__((unused));

#define AF_INET 2
#define AF_INET6 10
#define S_IFMT 00170000
#define EINPROGRESS 115
#define S_IFSOCK 0140000

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} net_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} net_drops SEC(".maps");

static __always_inline void count_drop(void)
{
	__u32 zero = 0;
	__u64 *drops = bpf_map_lookup_elem(&net_drops, &zero);

	if (drops)
		*drops += 1;
}

static __always_inline void fill(struct garrison_net_event *event, __u32 type)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 id = bpf_get_current_pid_tgid();

	__builtin_memset(event, 0, sizeof(*event));
	event->type = type;
	event->pid = id >> 32;
	event->tid = (__u32)id;
	event->ppid = BPF_CORE_READ(task, real_parent, tgid);
	event->uid = (__u32)bpf_get_current_uid_gid();
	event->time_ns = bpf_ktime_get_boot_ns();
	event->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(event->comm, sizeof(event->comm));
}

static __always_inline struct garrison_net_event *reserve(__u32 type)
{
	struct garrison_net_event *event = bpf_ringbuf_reserve(&net_events, sizeof(*event), 0);

	if (!event) {
		count_drop();
		return 0;
	}
	fill(event, type);
	return event;
}

/* sockets connected outward (by struct sock address): a dup of one onto stdio is a client
 * handing its terminal to the network, while a server's accepted socket is not here. A TCP
 * socket leaves the map when it closes (handle_sock_state): its memory is reused for later
 * sockets, and a server's accepted socket at a stale address read as a client's */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u8);
} outbound_socks SEC(".maps");

/* connects between entry and exit, by thread (LRU: a lost exit cannot fill it) */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct garrison_net_event);
} pending_connects SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct garrison_net_event);
} connect_scratch SEC(".maps");

/* The socket behind descriptor ``fd`` of the current task, or NULL. */
static __always_inline struct socket *fd_socket(int fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *file = 0;

	if (fd < 0 || fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) < 0 || !file)
		return 0;
	if ((BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return 0;
	return BPF_CORE_READ(file, private_data);
}

SEC("tp/syscalls/sys_enter_connect")
int handle_connect(struct trace_event_raw_sys_enter *ctx)
{
	struct sockaddr *address = (struct sockaddr *)ctx->args[1];
	struct garrison_net_event *event;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u32 zero = 0;
	__u16 family = 0;

	if (bpf_probe_read_user(&family, sizeof(family), &address->sa_family) < 0)
		return 0;
	if (family != AF_INET && family != AF_INET6)
		return 0; /* unix sockets and the like: not network */
	event = bpf_map_lookup_elem(&connect_scratch, &zero);
	if (!event)
		return 0;
	fill(event, GARRISON_EVENT_CONNECT);
	event->fd = (__s32)ctx->args[0];
	event->family = family;
	{
		struct socket *sock = fd_socket(event->fd);

		if (sock)
			event->sock_type = BPF_CORE_READ(sock, type);
	}
	if (family == AF_INET) {
		struct sockaddr_in in4 = {};

		bpf_probe_read_user(&in4, sizeof(in4), address);
		event->port = bpf_ntohs(in4.sin_port);
		__builtin_memcpy(event->addr, &in4.sin_addr.s_addr, 4);
	} else {
		struct sockaddr_in6 in6 = {};

		bpf_probe_read_user(&in6, sizeof(in6), address);
		event->port = bpf_ntohs(in6.sin6_port);
		__builtin_memcpy(event->addr, &in6.sin6_addr, 16);
	}
	bpf_map_update_elem(&pending_connects, &tid, event, BPF_ANY);
	return 0;
}

SEC("tp/syscalls/sys_exit_connect")
int handle_connect_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct garrison_net_event *pending = bpf_map_lookup_elem(&pending_connects, &tid);
	struct garrison_net_event *event;

	if (!pending)
		return 0;
	event = bpf_ringbuf_reserve(&net_events, sizeof(*event), 0);
	if (!event) {
		count_drop();
		bpf_map_delete_elem(&pending_connects, &tid);
		return 0;
	}
	__builtin_memcpy(event, pending, sizeof(*event));
	event->ret = (__s32)ctx->ret;
	if (event->ret == 0 || event->ret == -EINPROGRESS) {
		struct socket *sock = fd_socket(event->fd);
		__u64 sk = sock ? (__u64)BPF_CORE_READ(sock, sk) : 0;
		__u8 one = 1;

		if (sk)
			bpf_map_update_elem(&outbound_socks, &sk, &one, BPF_ANY);
	}
	bpf_map_delete_elem(&pending_connects, &tid);
	bpf_ringbuf_submit(event, 0);
	return 0;
}

/* TCP state changes: a socket that closes, or a server's accepted child becoming established,
 * is not (or no longer) an outbound client socket */
SEC("tp/sock/inet_sock_set_state")
int handle_sock_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	__u64 key;

	if (ctx->protocol != IPPROTO_TCP)
		return 0;
	if (ctx->newstate != TCP_CLOSE && ctx->oldstate != TCP_SYN_RECV)
		return 0;
	key = (__u64)ctx->skaddr;
	bpf_map_delete_elem(&outbound_socks, &key);
	return 0;
}

static __always_inline int on_dup(struct trace_event_raw_sys_enter *ctx)
{
	int oldfd = (int)ctx->args[0];
	int newfd = (int)ctx->args[1];
	struct garrison_net_event *event;
	struct socket *sock;
	struct sock *sk;

	if (newfd < 0 || newfd > 2)
		return 0;
	sock = fd_socket(oldfd);
	if (!sock)
		return 0;
	event = reserve(GARRISON_EVENT_DUP_SOCKET);
	if (!event)
		return 0;
	event->fd = oldfd;
	event->newfd = newfd;
	event->sock_type = BPF_CORE_READ(sock, type);
	/* the peer of a connected socket: where the shell's input and output now go */
	sk = BPF_CORE_READ(sock, sk);
	{
		__u64 key = (__u64)sk;

		if (bpf_map_lookup_elem(&outbound_socks, &key))
			event->sock_flags |= GARRISON_SOCK_OUTBOUND;
	}
	event->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	event->port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (event->family == AF_INET) {
		__u32 daddr = BPF_CORE_READ(sk, __sk_common.skc_daddr);

		__builtin_memcpy(event->addr, &daddr, 4);
	} else if (event->family == AF_INET6) {
		BPF_CORE_READ_INTO(&event->addr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	}
	bpf_ringbuf_submit(event, 0);
	return 0;
}

SEC("tp/syscalls/sys_enter_dup2")
int handle_dup2(struct trace_event_raw_sys_enter *ctx)
{
	return on_dup(ctx);
}

SEC("tp/syscalls/sys_enter_dup3")
int handle_dup3(struct trace_event_raw_sys_enter *ctx)
{
	return on_dup(ctx);
}

/* -- listen and accept: servers, and connections coming in ---------------------------- */

/* which of these are reported (GARRISON_NET_*): user space turns accept on only when
 * something consumes it, so a busy server's accepts stay in the kernel otherwise */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} net_config SEC(".maps");

static __always_inline bool reported(__u32 flag)
{
	__u32 zero = 0;
	__u32 *config = bpf_map_lookup_elem(&net_config, &zero);

	return config && (*config & flag);
}

/* family, local port and the peer of a socket, into an event */
static __always_inline bool describe(struct socket *sock, struct garrison_net_event *event)
{
	struct sock *sk = BPF_CORE_READ(sock, sk);

	event->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (event->family != AF_INET && event->family != AF_INET6)
		return false;
	event->sock_type = BPF_CORE_READ(sock, type);
	event->newfd = BPF_CORE_READ(sk, __sk_common.skc_num); /* the local port */
	event->port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (event->family == AF_INET) {
		__u32 daddr = BPF_CORE_READ(sk, __sk_common.skc_daddr);

		__builtin_memcpy(event->addr, &daddr, 4);
	} else {
		BPF_CORE_READ_INTO(&event->addr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	}
	return true;
}

SEC("tp/syscalls/sys_enter_listen")
int handle_listen(struct trace_event_raw_sys_enter *ctx)
{
	struct garrison_net_event *event;
	struct socket *sock;
	__u32 zero = 0;
	int fd = (int)ctx->args[0];

	if (!reported(GARRISON_NET_LISTEN))
		return 0;
	sock = fd_socket(fd);
	if (!sock)
		return 0;
	event = bpf_map_lookup_elem(&connect_scratch, &zero);
	if (!event)
		return 0;
	fill(event, GARRISON_EVENT_LISTEN);
	event->fd = fd;
	if (!describe(sock, event))
		return 0;
	{
		struct garrison_net_event *out = bpf_ringbuf_reserve(&net_events, sizeof(*out), 0);

		if (!out) {
			count_drop();
			return 0;
		}
		__builtin_memcpy(out, event, sizeof(*out));
		bpf_ringbuf_submit(out, 0);
	}
	return 0;
}

static __always_inline int on_accept_exit(long ret)
{
	struct garrison_net_event *event;
	struct socket *sock;
	__u32 zero = 0;

	if (ret < 0 || !reported(GARRISON_NET_ACCEPT))
		return 0;
	sock = fd_socket((int)ret);
	if (!sock)
		return 0;
	event = bpf_map_lookup_elem(&connect_scratch, &zero);
	if (!event)
		return 0;
	fill(event, GARRISON_EVENT_ACCEPT);
	event->fd = (int)ret;
	if (!describe(sock, event))
		return 0;
	{
		struct garrison_net_event *out = bpf_ringbuf_reserve(&net_events, sizeof(*out), 0);

		if (!out) {
			count_drop();
			return 0;
		}
		__builtin_memcpy(out, event, sizeof(*out));
		bpf_ringbuf_submit(out, 0);
	}
	return 0;
}

SEC("tp/syscalls/sys_exit_accept4")
int handle_accept4_exit(struct trace_event_raw_sys_exit *ctx)
{
	return on_accept_exit(ctx->ret);
}

SEC("tp/syscalls/sys_exit_accept")
int handle_accept_exit(struct trace_event_raw_sys_exit *ctx)
{
	return on_accept_exit(ctx->ret);
}
