"""Abnormal service-account operation: a learned per-account baseline of (verb, resource).

For each service account the detector learns, for ``learning_seconds`` after it first sees
the account, the operations it performs. After that, an operation outside the baseline
raises an alert once and joins the baseline. Time is the events' own time, so a replayed
log behaves as the live stream did. Memory is bounded: at most ``max_accounts`` accounts
(least recently seen evicted first) and ``max_operations`` operations each; the state
snapshots to JSON for persistence.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import msgspec

from garrison.audit.alerts import event_time, make_alert
from garrison.events.alert import Alert, Mitre, Severity
from garrison.events.audit import AuditEvent

RULE_ID = "k8s_serviceaccount_rare_operation"
TITLE = "Abnormal Kubernetes service account operation detected"
MITRE = Mitre(
    tactics=("TA0008", "TA0006"),
    techniques=("T1528", "T1550.001"),
    threat_matrix=("MS-TA9016",),
)
REMEDIATION = (
    "Check whether the workload behind this service account was changed or compromised; "
    "if the operation is legitimate it joins the baseline, otherwise rotate the account's "
    "tokens and narrow its RBAC."
)
SA_PREFIX = "system:serviceaccount:"


@dataclass
class AccountBaseline:
    first_seen: float
    operations: set[str] = field(default_factory=set)
    overflow: bool = False


class _Snapshot(msgspec.Struct):
    version: int
    accounts: dict[str, tuple[float, list[str], bool]]


class ServiceAccountBaseline:
    def __init__(
        self,
        *,
        learning_seconds: float = 7 * 24 * 3600,
        max_accounts: int = 10_000,
        max_operations: int = 256,
    ) -> None:
        self.learning_seconds = learning_seconds
        self.max_accounts = max_accounts
        self.max_operations = max_operations
        self._accounts: OrderedDict[str, AccountBaseline] = OrderedDict()
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._accounts)

    @staticmethod
    def operation(event: AuditEvent) -> str | None:
        ref = event.object_ref
        if ref is None or not ref.resource:
            return None
        resource = f"{ref.resource}/{ref.subresource}" if ref.subresource else ref.resource
        group = ref.api_group
        return f"{event.verb} {group + '/' if group else ''}{resource}"

    def observe(self, event: AuditEvent, cluster: str) -> Alert | None:
        user = event.user.username
        if not user.startswith(SA_PREFIX) or event.stage not in ("ResponseComplete", ""):
            return None
        operation = self.operation(event)
        if operation is None:
            return None
        key = f"{cluster}\x1f{user}"
        now = event_time(event)
        account = self._accounts.get(key)
        if account is None:
            account = AccountBaseline(first_seen=now)
            self._accounts[key] = account
            if len(self._accounts) > self.max_accounts:
                self._accounts.popitem(last=False)
                self.evicted += 1
        else:
            self._accounts.move_to_end(key)
        if operation in account.operations:
            return None
        learning = now - account.first_seen < self.learning_seconds
        if len(account.operations) < self.max_operations:
            account.operations.add(operation)
        else:
            account.overflow = True
        if learning or account.overflow:
            return None
        namespace, _, name = user[len(SA_PREFIX) :].partition(":")
        return make_alert(
            event=event,
            cluster=cluster,
            rule_id=RULE_ID,
            title=TITLE,
            severity=Severity.MEDIUM,
            priority="WARNING",
            output=(
                f"Service account {namespace}/{name} performed '{operation}', "
                f"outside its learned baseline of {len(account.operations) - 1} operations"
            ),
            mitre=MITRE,
            remediation=REMEDIATION,
            extra_evidence={"operation": operation, "service_account": f"{namespace}/{name}"},
        )

    def snapshot(self) -> bytes:
        accounts = {
            key: (acc.first_seen, sorted(acc.operations), acc.overflow)
            for key, acc in self._accounts.items()
        }
        return msgspec.json.encode(_Snapshot(version=1, accounts=accounts))

    def restore(self, data: bytes) -> None:
        """Load a snapshot; a corrupt one raises ``msgspec.DecodeError`` and changes nothing."""
        snap = msgspec.json.decode(data, type=_Snapshot)
        accounts: OrderedDict[str, AccountBaseline] = OrderedDict()
        for key, (first_seen, operations, overflow) in snap.accounts.items():
            accounts[key] = AccountBaseline(
                first_seen, set(operations[: self.max_operations]), overflow
            )
        while len(accounts) > self.max_accounts:
            accounts.popitem(last=False)
        self._accounts = accounts

    def stats(self) -> dict[str, Any]:
        return {"accounts": len(self._accounts), "evicted": self.evicted}
