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

APPLETS = ("sh", "echo", "true", "cat", "ls", "sleep", "nc", "id", "cp", "chmod")


@dataclass(frozen=True)
class Bundle:
    root: Path
    name: str

    @property
    def upper(self) -> Path:
        return self.root / "upper"


def _image(lower: Path) -> None:
    for directory in ("bin", "proc", "dev", "sys", "tmp", "etc"):
        (lower / directory).mkdir(parents=True, exist_ok=True)
    busybox = shutil.which("busybox")
    assert busybox, "busybox-static is not installed (make setup installs it)"
    shutil.copy2(busybox, lower / "bin" / "busybox")
    for applet in APPLETS:
        (lower / "bin" / applet).symlink_to("busybox")
    (lower / "etc" / "shadow").write_text("root:*:19000:0:99999:7:::\n")


@contextmanager
def runc_bundle(tmp: Path, name: str) -> Iterator[Bundle]:
    root = tmp / name
    lower, upper, work, merged = (root / d for d in ("lower", "upper", "work", "merged"))
    for directory in (upper, work, merged):
        directory.mkdir(parents=True)
    _image(lower)
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


def run(bundle: Bundle, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run ``args`` as the container's process, in the foreground, to completion."""
    config_path = bundle.root / "config.json"
    config = json.loads(config_path.read_text())
    config["root"] = {"path": "merged", "readonly": False}
    config["process"]["terminal"] = False
    config["process"]["args"] = list(args)
    config_path.write_text(json.dumps(config))
    return subprocess.run(
        ["runc", "run", "--bundle", str(bundle.root), bundle.name],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
