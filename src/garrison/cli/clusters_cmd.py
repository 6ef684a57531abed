"""``garrison clusters add|list|rotate``: cluster enrolment on the local store."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
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


def _with_store(args: argparse.Namespace, action: Callable[[SQLiteStore], str]) -> int:
    """Open the store, do ``action``, print what it returns; a store error is one line."""
    try:
        home = Home.resolve(args.home)
        home.ensure()
        store = SQLiteStore(args.db or home.db)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        text = action(store)
        if text:
            print(text)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    return 0


def add_cluster(args: argparse.Namespace) -> int:
    def add(store: SQLiteStore) -> str:
        record, token = store.add_cluster(args.name)
        return (
            f"# install values for cluster {record.name} ({record.id}); the token is shown once\n"
            f"cluster: {record.name}\n"
            f"backend:\n  url: {args.url}\n"
            f"token: {token}"
        )

    return _with_store(args, add)


def revoke_cluster(args: argparse.Namespace) -> int:
    def revoke(store: SQLiteStore) -> str:
        store.revoke_cluster(args.name)
        return f"cluster {args.name}: token revoked (agents are refused; `rotate` issues a new one)"

    return _with_store(args, revoke)


def rotate_cluster(args: argparse.Namespace) -> int:
    return _with_store(args, lambda store: f"token: {store.rotate_cluster_token(args.name)}")


def list_clusters(args: argparse.Namespace) -> int:
    def listing(store: SQLiteStore) -> str:
        return "\n".join(
            f"{r.name}\t{r.id}\t{'revoked' if r.revoked else 'active'}"
            for r in store.list_clusters()
        )

    return _with_store(args, listing)
