"""Real OCI containers for kernel tests: runc on a busybox-static rootfs mounted as overlayfs.

lower = the "image" (busybox and its applet links), upper = the container's own layer.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

APPLETS = (
    "sh",
    "echo",
    "true",
    "cat",
    "ls",
    "sleep",
    "nc",
    "id",
    "cp",
    "chmod",
    "rm",
    "touch",
    "unshare",
    "hostname",
    "uname",
    "ps",
    "env",
    "whoami",
    "wget",
    "mkdir",
    "insmod",
    "httpd",
)


@dataclass(frozen=True)
class Bundle:
    root: Path
    name: str

    @property
    def upper(self) -> Path:
        return self.root / "upper"


def _image(lower: Path, files: dict[str, str] | None = None) -> None:
    for directory in ("bin", "proc", "dev", "sys", "tmp", "etc"):
        (lower / directory).mkdir(parents=True, exist_ok=True)
    busybox = shutil.which("busybox")
    assert busybox, "busybox-static is not installed (make setup installs it)"
    shutil.copy2(busybox, lower / "bin" / "busybox")
    for applet in APPLETS:
        (lower / "bin" / applet).symlink_to("busybox")
    (lower / "etc" / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    for name, text in (files or {}).items():  # more image content; "#!" files are executable
        path = lower / name.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if text.startswith("#!"):
            path.chmod(0o755)


@contextmanager
def runc_bundle(tmp: Path, name: str, files: dict[str, str] | None = None) -> Iterator[Bundle]:
    root = tmp / name
    lower, upper, work, merged = (root / d for d in ("lower", "upper", "work", "merged"))
    for directory in (upper, work, merged):
        directory.mkdir(parents=True)
    _image(lower, files)
    subprocess.run(
        [
            "mount",
            "-t",
            "overlay",
            "overlay",
            "-o",
            f"lowerdir={lower},upperdir={upper},workdir={work}",
            str(merged),
        ],
        check=True,
    )
    try:
        subprocess.run(["runc", "spec", "--bundle", str(root)], check=True)
        yield Bundle(root, name)
    finally:
        subprocess.run(["runc", "delete", "--force", name], capture_output=True, check=False)
        subprocess.run(["umount", str(merged)], check=False)


def run(
    bundle: Bundle,
    *args: str,
    timeout: float = 30,
    host_network: bool = False,
    annotations: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``args`` as the container's process, in the foreground, to completion.

    ``host_network`` shares the host's network namespace (a hostNetwork pod), so the
    container reaches listeners on the host's loopback; ``annotations`` are what a CRI
    runtime puts there (image name, pod, namespace).
    """
    config_path = bundle.root / "config.json"
    config = json.loads(config_path.read_text())
    config["root"] = {"path": "merged", "readonly": False}
    config["process"]["terminal"] = False
    config["process"]["args"] = list(args)
    if host_network:
        namespaces = config["linux"]["namespaces"]
        config["linux"]["namespaces"] = [n for n in namespaces if n["type"] != "network"]
    if annotations:
        config["annotations"] = dict(annotations)
    config_path.write_text(json.dumps(config))
    return subprocess.run(
        ["runc", "run", "--bundle", str(bundle.root), bundle.name],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
