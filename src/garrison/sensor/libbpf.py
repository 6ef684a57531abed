"""ctypes bindings to the few libbpf 1.x calls the sensor needs (Debian ``libbpf1``)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from dataclasses import dataclass

from garrison.events.errors import GarrisonError

SampleFn = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)


class LibbpfError(GarrisonError):
    """A libbpf call failed; ``errno`` says why."""

    def __init__(self, call: str, errno: int) -> None:
        self.call = call
        self.errno = errno
        super().__init__(f"{call} failed: {os.strerror(errno)} (errno {errno})")


@dataclass(frozen=True)
class Libbpf:
    lib: ctypes.CDLL

    @classmethod
    def load(cls) -> Libbpf:
        name = ctypes.util.find_library("bpf") or "libbpf.so.1"
        try:
            lib = ctypes.CDLL(name, use_errno=True)
        except OSError as exc:
            raise GarrisonError(f"libbpf is not installed ({name}: {exc})") from None
        v = ctypes.c_void_p
        signatures = {
            "bpf_object__open_file": (v, [ctypes.c_char_p, v]),
            "bpf_object__load": (ctypes.c_int, [v]),
            "bpf_object__close": (None, [v]),
            "bpf_object__find_program_by_name": (v, [v, ctypes.c_char_p]),
            "bpf_object__find_map_fd_by_name": (ctypes.c_int, [v, ctypes.c_char_p]),
            "bpf_object__find_map_by_name": (v, [v, ctypes.c_char_p]),
            "bpf_map__reuse_fd": (ctypes.c_int, [v, ctypes.c_int]),
            "bpf_map__max_entries": (ctypes.c_uint32, [v]),
            "bpf_program__attach": (v, [v]),
            "bpf_link__destroy": (ctypes.c_int, [v]),
            "ring_buffer__new": (v, [ctypes.c_int, SampleFn, v, v]),
            "ring_buffer__add": (ctypes.c_int, [v, ctypes.c_int, SampleFn, v]),
            "ring_buffer__poll": (ctypes.c_int, [v, ctypes.c_int]),
            "ring_buffer__consume": (ctypes.c_int, [v]),
            "ring_buffer__free": (None, [v]),
            "bpf_map_lookup_elem": (ctypes.c_int, [ctypes.c_int, v, v]),
            "bpf_map_update_elem": (ctypes.c_int, [ctypes.c_int, v, v, ctypes.c_uint64]),
            "bpf_map_delete_elem": (ctypes.c_int, [ctypes.c_int, v]),
            "libbpf_num_possible_cpus": (ctypes.c_int, []),
            "libbpf_set_print": (v, [v]),
        }
        for function, (restype, argtypes) in signatures.items():
            fn = getattr(lib, function)
            fn.restype = restype
            fn.argtypes = argtypes
        lib.libbpf_set_print(None)  # errors are reported by garrison, one line each
        return cls(lib)

    def check_ptr(self, call: str, pointer: int | None) -> int:
        if not pointer:
            raise LibbpfError(call, ctypes.get_errno() or 22)
        return pointer

    def check_rc(self, call: str, rc: int) -> int:
        if rc < 0:
            raise LibbpfError(call, -rc if rc != -1 else (ctypes.get_errno() or 22))
        return rc
