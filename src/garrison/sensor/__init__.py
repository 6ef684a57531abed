"""The node sensor: eBPF programs through libbpf, events decoded and attributed."""
