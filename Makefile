# garrison — one entry point for contributors and CI. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3.11
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
APT_PACKAGES := openssl sqlite3 ca-certificates clang llvm libbpf-dev libbpf1 bpftool runc busybox-static bpftrace gcc
KERNEL_BUILD := build/kernel
BPF_OBJECTS := $(patsubst kernel/%.bpf.c,$(KERNEL_BUILD)/%.bpf.o,$(wildcard kernel/*.bpf.c))
BTF := /sys/kernel/btf/vmlinux

.PHONY: help setup system-deps venv kernel lint typecheck test test-only bench up clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

system-deps:  ## install Debian packages (only when root and something is missing)
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "missing Debian packages:$$missing (run as root or install them)"; exit 1; fi; \
	fi

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q --disable-pip-version-check uv==$(UV_VERSION)

venv: $(UV)  ## create .venv from uv.lock (idempotent); leaves .venv/bin/garrison
	$(UV) sync --frozen --python $(PYTHON) --quiet

kernel: system-deps  ## compile the BPF programs against this kernel's BTF (CO-RE)
	@if [ -r $(BTF) ]; then $(MAKE) --no-print-directory $(BPF_OBJECTS); \
	else echo "no kernel BTF at $(BTF): BPF programs not built (the sensor will say so)"; fi

$(KERNEL_BUILD)/vmlinux.h:
	mkdir -p $(KERNEL_BUILD)
	bpftool btf dump file $(BTF) format c > $@.tmp && mv $@.tmp $@

$(KERNEL_BUILD)/%.bpf.o: kernel/%.bpf.c kernel/include/*.h $(KERNEL_BUILD)/vmlinux.h
	clang -O2 -g -Wall -target bpf -D__TARGET_ARCH_x86 -I $(KERNEL_BUILD) -I kernel/include -c $< -o $@

setup: system-deps venv kernel  ## everything needed to run garrison and its tests

lint: setup  ## ruff lint + format check
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

typecheck: setup  ## mypy strict on src/
	$(VENV)/bin/mypy

test-only:
	$(VENV)/bin/pytest

test: setup lint typecheck test-only  ## the CI command: lint, types, every test

bench: setup  ## benchmarks (figures as ratios to a baseline of the same run)
	$(VENV)/bin/python -m bench

up: setup  ## run garrison on the embedded default (SQLite) on this machine
	$(VENV)/bin/garrison up

clean:
	rm -rf $(VENV) $(TOOLS) .mypy_cache .pytest_cache .ruff_cache
