"""The CLI's client of the backend API: where it is (``client.json`` or flags) and one call."""

from __future__ import annotations

import argparse
import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from garrison.cli.home import Home
from garrison.events.errors import GarrisonError
from garrison.tls import client_context


class BackendError(GarrisonError):
    """The backend is not reachable or refused the call."""


class BackendConfigError(BackendError):
    """No usable backend address, token or CA was given."""


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--home", help="data directory holding client.json")
    parser.add_argument("--url", help="backend URL (default from client.json)")
    parser.add_argument("--token", help="API token (default from client.json)")
    parser.add_argument("--ca", help="CA certificate to trust (default from client.json)")


@dataclass(frozen=True)
class Backend:
    url: str
    token: str
    context: ssl.SSLContext

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Backend:
        client = Home.resolve(args.home).read_client() or {}
        url = args.url or client.get("url")
        token = args.token or client.get("token")
        ca = args.ca or client.get("ca")
        if not url or not token or not ca:
            raise BackendConfigError(
                "no backend configured: run `garrison up`, or pass --url, --token and --ca"
            )
        if not Path(ca).is_file():
            raise BackendConfigError(f"CA certificate {ca} not found")
        if not url.startswith("https://"):
            raise BackendConfigError("--url must be https://")
        return cls(url.rstrip("/"), token, client_context(Path(ca)))

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {self.token}"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(  # noqa: S310 - https was checked
            self.url + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=30) as response:  # noqa: S310
                return json.load(response)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:300]
            raise BackendError(f"backend answered {exc.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise BackendError(f"cannot reach {self.url}: {getattr(exc, 'reason', exc)}") from None
