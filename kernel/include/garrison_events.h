/* Wire format shared by the BPF programs and garrison.sensor (mirrored in
 * src/garrison/sensor/wire.py and checked against the compiled object's BTF by a test). */
#ifndef GARRISON_EVENTS_H
#define GARRISON_EVENTS_H

#define GARRISON_COMM_LEN 16
#define GARRISON_PATH_LEN 256
#define GARRISON_PREFIX_LEN 64     /* watched path prefixes: up to 63 bytes compared */
#define GARRISON_ARGS_LEN 512 /* a power of two; exec.bpf.c masks with 511 */

enum garrison_event_type {
	GARRISON_EVENT_EXEC = 1,
	GARRISON_EVENT_FORK = 2,
	GARRISON_EVENT_EXIT = 3,
	GARRISON_EVENT_CONNECT = 4,
	GARRISON_EVENT_DUP_SOCKET = 5,
	GARRISON_EVENT_OPEN = 6,
	GARRISON_EVENT_SYSCALL = 7,
	GARRISON_EVENT_UNLINK = 8,
	GARRISON_EVENT_RENAME = 9,
	GARRISON_EVENT_CHMOD = 10,
	GARRISON_EVENT_UTIMES = 11,
	GARRISON_EVENT_LISTEN = 12,
	GARRISON_EVENT_ACCEPT = 13,
};

/* garrison_exec_event.flags */
#define GARRISON_EXE_OVERLAY 0x1     /* the executable is a file of an overlayfs mount */
#define GARRISON_EXE_UPPER_LAYER 0x2 /* ... that has an upper-layer copy (written after start) */
#define GARRISON_EXE_MEMFD 0x4       /* the executable is a memfd (fileless execution) */
#define GARRISON_EXE_BLOCKED 0x8     /* policy: the new image was killed before it ran */

/* the enforce map's flags: which blocking lists user space has filled */
#define GARRISON_ENFORCE_DENY 0x1    /* deny_paths / deny_inodes */
#define GARRISON_ENFORCE_DRIFT 0x2   /* block_drift (cgroups whose drift is blocked) */

/* key of deny_inodes: an executable file, whatever path it is run by */
struct garrison_inode_key {
	__u64 ino;
	__u32 dev;
	__u32 pad;
};

struct garrison_exec_event {
	__u32 type;          /* GARRISON_EVENT_EXEC */
	__u32 pid;           /* tgid */
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__u32 gid;
	__u64 time_ns;       /* bpf_ktime_get_boot_ns */
	__u64 cgroup_id;
	__u64 cap_effective;
	__u64 exe_ino;       /* inode number of the executable */
	__u32 args_len;      /* bytes of args used, NUL-separated */
	__u32 flags;         /* GARRISON_EXE_* */
	__u32 tty;           /* controlling terminal as /proc/<pid>/stat's tty_nr; 0: none */
	__u32 loginuid;      /* audit login uid; 4294967295 when not from a login */
	__u32 sid;           /* session id (the session leader's pid) */
	__u32 pad;
	char comm[GARRISON_COMM_LEN];
	char filename[GARRISON_PATH_LEN];
	char args[GARRISON_ARGS_LEN];
};

/* a new process (not a thread) or a process that ended: keeps the process tree */
struct garrison_task_event {
	__u32 type;          /* GARRISON_EVENT_FORK or GARRISON_EVENT_EXIT */
	__u32 pid;           /* the new or ending process (tgid) */
	__u32 ppid;          /* its parent */
	__u32 exit_code;     /* GARRISON_EVENT_EXIT: as wait(2) reports it */
	__u64 time_ns;
	__u64 cgroup_id;
	char comm[GARRISON_COMM_LEN];
};

/* net_config flags: which optional network events are reported */
#define GARRISON_NET_LISTEN 0x1
#define GARRISON_NET_ACCEPT 0x2

/* garrison_net_event.sock_flags */
#define GARRISON_SOCK_OUTBOUND 0x1 /* connected by a connect() the sensor saw (a client) */

/* an outbound connect, a socket duplicated onto fd 0, 1 or 2, a listen or an accept
 * (LISTEN, ACCEPT: newfd holds the local port, addr/port the peer of an accepted socket) */
struct garrison_net_event {
	__u32 type;          /* GARRISON_EVENT_CONNECT or GARRISON_EVENT_DUP_SOCKET */
	__u32 pid;
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__s32 fd;            /* the socket */
	__s32 newfd;         /* DUP_SOCKET: 0, 1 or 2 */
	__u16 sock_type;     /* SOCK_STREAM (1), SOCK_DGRAM (2), ... of the socket; 0 unknown */
	__u16 sock_flags;    /* GARRISON_SOCK_* */
	__u16 family;        /* AF_INET or AF_INET6 (DUP_SOCKET: of the duplicated socket) */
	__u16 port;          /* CONNECT: host byte order */
	__s32 ret;           /* CONNECT: 0, -EINPROGRESS or another -errno (reported on return) */
	__u64 time_ns;
	__u64 cgroup_id;
	__u8 addr[16];       /* CONNECT: 4 bytes for IPv4, 16 for IPv6, network order */
	char comm[GARRISON_COMM_LEN];
};

/* the key of the watched-paths LPM trie: prefixlen in bits, then the path bytes */
struct garrison_path_key {
	__u32 prefixlen;
	char path[GARRISON_PREFIX_LEN];
};

/* values of the watched-paths trie: which opens of a prefix are reported */
#define GARRISON_WATCH_READ 0x1  /* opens for reading only */
#define GARRISON_WATCH_WRITE 0x2 /* opens for writing, creating or truncating */
#define GARRISON_WATCH_EXEC_BIT 0x4 /* chmod adding an execute bit (drift in the making) */

/* a file removed, renamed, given new permissions or explicit times */
struct garrison_fsop_event {
	__u32 type;          /* GARRISON_EVENT_UNLINK, _RENAME, _CHMOD or _UTIMES */
	__u32 pid;
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__u32 mode;          /* CHMOD: the new mode */
	__u64 time_ns;
	__u64 cgroup_id;
	__u64 cap_effective;
	char comm[GARRISON_COMM_LEN];
	char path[GARRISON_PATH_LEN];  /* RENAME: the old path */
	char path2[GARRISON_PATH_LEN]; /* RENAME: the new path */
};

/* an open of a watched path, reported when it returns */
struct garrison_file_event {
	__u32 type;          /* GARRISON_EVENT_OPEN */
	__u32 pid;
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__u32 flags;         /* open(2) flags: O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, ... */
	__s32 ret;           /* the new descriptor, or -errno */
	__u32 mode;          /* open(2) mode (permissions of a created file) */
	__u64 time_ns;
	__u64 cgroup_id;
	__u64 cap_effective;
	char comm[GARRISON_COMM_LEN];
	char path[GARRISON_PATH_LEN];
};

/* a watched syscall was entered */
struct garrison_syscall_event {
	__u32 type;          /* GARRISON_EVENT_SYSCALL */
	__u32 nr;            /* syscall number (x86_64) */
	__u32 pid;
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__u64 time_ns;
	__u64 cgroup_id;
	__u64 cap_effective;
	__u64 args[3];       /* the first three arguments */
	char comm[GARRISON_COMM_LEN];
};

#endif
