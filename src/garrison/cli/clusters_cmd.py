"""``garrison clusters add|list|rotate``: cluster enrolment on the local store."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from garrison.cli.home import Home
from garrison.server.store.base import StoreError
from garrison.server.store.sqlite import SQLiteStore


def register(commands: Any, name: str) -> None:
    parser = commands.add_parser(name, help="enrol clusters and manage their agent tokens")
    parser.add_argument("--home", help="data directory (default $GARRISON_HOME or ~/.garrison)")
    parser.add_argument("--db", help="SQLite file (default HOME/garrison.db)")
    sub = parser.add_subparsers(dest="clusters_command", required=True, metavar="ACTION")
    add = sub.add_parser("add", help="enrol a cluster and print its install values (shown once)")
    add.add_argument("name")
    add.add_argument(
        "--url", default="https://garrison.example:8443", help="backend URL agents use"
    )
    add.set_defaults(run=add_cluster)
    revoke = sub.add_parser("revoke", help="refuse the cluster's token from now on")
    revoke.add_argument("name")
    revoke.set_defaults(run=revoke_cluster)
    rotate = sub.add_parser("rotate", help="issue a new token; the old one stops working")
    rotate.add_argument("name")
    rotate.set_defaults(run=rotate_cluster)
    listing = sub.add_parser("list", help="list enrolled clusters")
    listing.set_defaults(run=list_clusters)


def _store(args: argparse.Namespace) -> SQLiteStore:
    home = Home.resolve(args.home)
    home.ensure()
    return SQLiteStore(args.db or home.db)


def add_cluster(args: argparse.Namespace) -> int:
    try:
        store = _store(args)
        record, token = store.add_cluster(args.name)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    store.close()
    print(
        f"# install values for cluster {record.name} ({record.id}); the token is shown once\n"
        f"cluster: {record.name}\n"
        f"backend:\n  url: {args.url}\n"
        f"token: {token}"
    )
    return 0


def revoke_cluster(args: argparse.Namespace) -> int:
    try:
        store = _store(args)
        store.revoke_cluster(args.name)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    store.close()
    print(f"cluster {args.name}: token revoked (agents are refused; `rotate` issues a new one)")
    return 0


def rotate_cluster(args: argparse.Namespace) -> int:
    try:
        store = _store(args)
        token = store.rotate_cluster_token(args.name)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    store.close()
    print(f"token: {token}")
    return 0


def list_clusters(args: argparse.Namespace) -> int:
    try:
        store = _store(args)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for record in store.list_clusters():
        print(f"{record.name}\t{record.id}\t{'revoked' if record.revoked else 'active'}")
    store.close()
    return 0
