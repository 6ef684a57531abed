"""The local data directory of ``garrison up``: store, TLS material, client settings."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

AUDIT_POLICY = """\
# Audit policy for kube-apiserver (--audit-policy-file), written by garrison.
# Bodies are logged where garrison's rules read them; secrets only at Metadata level.
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    nonResourceURLs: ["/healthz*", "/livez*", "/readyz*", "/version", "/metrics"]
  - level: None
    users: ["system:kube-proxy"]
    verbs: [watch]
  - level: Metadata
    resources:
      - group: ""
        resources: [secrets, serviceaccounts/token]
      - group: authentication.k8s.io
        resources: [tokenreviews]
  - level: Metadata
    resources:
      - group: ""
        resources: [events]
  - level: RequestResponse
    verbs: [create, update, patch, delete, deletecollection]
    resources:
      - group: ""
        resources: [pods, pods/ephemeralcontainers, services, configmaps, namespaces,
                    serviceaccounts, replicationcontrollers]
      - group: apps
      - group: batch
      - group: rbac.authorization.k8s.io
      - group: admissionregistration.k8s.io
      - group: networking.k8s.io
  - level: Request
    resources:
      - group: ""
        resources: [pods/exec, pods/attach, pods/portforward, nodes/proxy]
  - level: Metadata
"""


@dataclass(frozen=True)
class Home:
    root: Path

    @classmethod
    def resolve(cls, explicit: str | None) -> Home:
        root = explicit or os.environ.get("GARRISON_HOME") or str(Path.home() / ".garrison")
        return cls(Path(root).expanduser().resolve())

    @property
    def db(self) -> Path:
        return self.root / "garrison.db"

    @property
    def tls_dir(self) -> Path:
        return self.root / "tls"

    @property
    def client_file(self) -> Path:
        return self.root / "client.json"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "audit-webhook.kubeconfig"

    @property
    def policy(self) -> Path:
        return self.root / "audit-policy.yaml"

    def ensure(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)

    def write_private(self, path: Path, text: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)

    def webhook_token(self) -> str | None:
        """The agent token in an existing webhook kubeconfig, if it is readable."""
        try:
            config = yaml.safe_load(self.kubeconfig.read_text(encoding="utf-8"))
            token = config["users"][0]["user"]["token"]
        except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError):
            return None
        return token if isinstance(token, str) and token else None

    def read_client(self) -> dict[str, str] | None:
        try:
            data = json.loads(self.client_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None


def webhook_kubeconfig(url: str, ca_pem: str, token: str) -> str:
    """A kubeconfig for ``--audit-webhook-config-file`` pointing at garrison's receiver."""
    import base64

    ca = base64.b64encode(ca_pem.encode()).decode()
    return f"""\
apiVersion: v1
kind: Config
clusters:
  - name: garrison
    cluster:
      server: {url}
      certificate-authority-data: {ca}
users:
  - name: kube-apiserver
    user:
      token: {token}
contexts:
  - name: default
    context: {{cluster: garrison, user: kube-apiserver}}
current-context: default
"""
