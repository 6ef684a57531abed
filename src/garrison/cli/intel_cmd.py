"""``garrison intel tor-list FILE``: a Tor bulk exit list → a rules file for the proxy-IP rule."""

from __future__ import annotations

import argparse
import ipaddress
import sys
from typing import Any

import yaml


def register(commands: Any, name: str) -> None:
    parser = commands.add_parser(name, help="threat-intelligence content")
    sub = parser.add_subparsers(dest="intel_command", required=True, metavar="ACTION")
    tor = sub.add_parser(
        "tor-list",
        help="turn a list of addresses (one a line) into a garrison_proxy_ips rules file",
    )
    tor.add_argument("file", metavar="FILE", help="address list, '-' for stdin")
    tor.set_defaults(run=tor_list)


def tor_list(args: argparse.Namespace) -> int:
    stream = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")  # noqa: SIM115
    addresses: list[str] = []
    bad = 0
    with stream:
        for number, line in enumerate(stream, 1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            try:
                addresses.append(str(ipaddress.ip_address(text)))
            except ValueError:
                bad += 1
                print(f"warning: line {number}: not an IP address: {text[:60]!r}", file=sys.stderr)
    document = [{"list": "garrison_proxy_ips", "items": sorted(set(addresses)), "append": True}]
    sys.stdout.write(yaml.safe_dump(document, sort_keys=False))
    print(f"{len(set(addresses))} addresses, {bad} lines skipped", file=sys.stderr)
    return 0
