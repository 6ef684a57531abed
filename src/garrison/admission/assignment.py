"""Pulling this cluster's policy assignment from the backend (central assignment).

``GET /v1/policy`` with the cluster's agent token, over HTTPS with the backend's CA;
``If-None-Match`` makes an unchanged assignment a cheap 304. A backend that is down, a
refused token or a malformed answer is an error the caller logs while it keeps enforcing
what it has: a central outage never changes what a cluster admits.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import msgspec

from garrison.events.errors import GarrisonError
from garrison.events.policy import PolicyAssignment
from garrison.tls import client_context

_decoder = msgspec.json.Decoder(PolicyAssignment)


class AssignmentError(GarrisonError):
    pass


class AssignmentPuller:
    def __init__(self, url: str, token: str, ca: Path | None, timeout: float = 10.0) -> None:
        if not url.startswith("https://"):
            raise AssignmentError("the backend URL must be https://")
        self.url = url.rstrip("/") + "/v1/policy"
        self.token = token
        self.context: ssl.SSLContext = client_context(ca)
        self.timeout = timeout
        self.current: PolicyAssignment | None = None
        self._etag = ""

    def pull(self) -> bool:
        """Fetch the assignment; True when it changed (``current`` holds the new one)."""
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if self._etag:
            headers["If-None-Match"] = self._etag
        request = urllib.request.Request(self.url, headers=headers)  # noqa: S310 - https only
        try:
            with urllib.request.urlopen(  # noqa: S310 - https only
                request, context=self.context, timeout=self.timeout
            ) as response:
                body = response.read()
                etag = response.headers.get("ETag", "")
        except urllib.error.HTTPError as exc:
            if exc.code == 304:
                return False
            detail = ""
            with contextlib.suppress(ValueError, AttributeError):
                detail = str(json.loads(exc.read()).get("error", ""))
            raise AssignmentError(f"backend answered {exc.code} {detail}".strip()) from None
        except (urllib.error.URLError, OSError) as exc:
            raise AssignmentError(f"backend unreachable: {exc}") from None
        try:
            assignment = _decoder.decode(body)
        except msgspec.DecodeError as exc:
            raise AssignmentError(f"the backend's assignment is malformed: {exc}") from None
        self.current = assignment
        self._etag = etag
        return True
