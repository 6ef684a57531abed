"""The ``garrison`` command: one subcommand per deployable, plus tools around them."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from garrison import __version__
from garrison.cli import (
    admission_cmd,
    alerts_cmd,
    audit_cmd,
    clusters_cmd,
    intel_cmd,
    policy_cmd,
    publisher_cmd,
    rules_cmd,
    sensor_cmd,
    server_cmd,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="garrison", description="Container threat protection for Kubernetes."
    )
    parser.add_argument("--version", action="version", version=f"garrison {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    registry = {
        "up": server_cmd.register_up,
        "server": server_cmd.register_server,
        "publisher": publisher_cmd.register,
        "sensor": sensor_cmd.register,
        "audit": audit_cmd.register,
        "rules": rules_cmd.register,
        "alerts": alerts_cmd.register,
        "clusters": clusters_cmd.register,
        "intel": intel_cmd.register,
        "policy": policy_cmd.register,
        "admission": admission_cmd.register,
    }
    for name, register in registry.items():
        register(commands, name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    code: int = args.run(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
