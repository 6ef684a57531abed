"""What every garrison component needs to talk to the Kubernetes API: where, and with what token.

In a pod the service account's token and CA are mounted; elsewhere the URL, token and CA are
given. The token is sent in a header and never logged; errors name the status, not the token.
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from garrison.events.errors import GarrisonError

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class KubeError(GarrisonError):
    pass


@dataclass(frozen=True)
class KubeConfig:
    url: str  # https://host:port
    token: str
    ca: Path | None

    @classmethod
    def in_cluster(cls, env: Mapping[str, str] = os.environ) -> KubeConfig | None:
        host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
        token_file = SERVICE_ACCOUNT / "token"
        if not host or not port or not token_file.exists():
            return None
        host = f"[{host}]" if ":" in host else host
        token = token_file.read_text().strip()
        return cls(f"https://{host}:{port}", token, SERVICE_ACCOUNT / "ca.crt")

    @classmethod
    def from_files(cls, url: str, token_file: Path | None, ca: Path | None) -> KubeConfig:
        """An API server given on the command line: its URL, a token file (none: no token)
        and the CA file; a token file that cannot be read is a KubeError."""
        token = ""
        if token_file is not None:
            try:
                token = token_file.read_text().strip()
            except OSError as exc:
                raise KubeError(f"cannot read the API token {token_file}: {exc.strerror}") from None
        return cls(url, token, ca)

    def connection(self, timeout: float) -> http.client.HTTPSConnection:
        parts = urlsplit(self.url)
        if parts.scheme != "https":
            raise KubeError(f"the API server URL must be https://, not {parts.scheme}://")
        context = ssl.create_default_context(cafile=str(self.ca) if self.ca else None)
        return http.client.HTTPSConnection(
            parts.hostname or "", parts.port or 443, timeout=timeout, context=context
        )

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}


def check_status(response: http.client.HTTPResponse, what: str) -> None:
    """Raise a clear error for anything but 200 (never with the token in it)."""
    if response.status in (401, 403):
        raise KubeError(
            f"the API server refused the token ({response.status}) for {what}; check RBAC"
        )
    if response.status == 410:
        raise KubeError(f"{what}: resourceVersion or continue token too old (410 Gone)")
    if response.status != 200:
        raise KubeError(f"GET {what} answered {response.status}")


def get_json(config: KubeConfig, path: str, timeout: float = 30.0) -> Any:
    """One GET of an API path, decoded."""
    connection = config.connection(timeout)
    try:
        connection.request("GET", path, headers=config.headers())
        response = connection.getresponse()
        check_status(response, path.split("?", 1)[0])
        try:
            return json.loads(response.read())
        except ValueError as exc:
            raise KubeError(f"{path}: the API server answered something that is not JSON") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise KubeError(f"GET {path.split('?', 1)[0]}: {exc}") from None
    finally:
        connection.close()
