"""``gator verify``: run gatekeeper-library ``suite.yaml`` files with gator's exact semantics.

Per case: the template and constraint are loaded (schema defaults applied to the
parameters), the one object of the case file becomes the review gator builds (operation
``""``, empty user) or, for an AdmissionReview, its request; inventory files fill
``data.inventory``; the constraint's match decides (no match is zero violations); each
assertion counts the violations whose message matches its regex (an unanchored search)
and compares with ``yes`` (≥ 1), ``no`` (0) or an exact number.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from garrison.admission.evaluate import EngineMode, load_policy_set
from garrison.admission.inventory import Inventory
from garrison.admission.model import PolicyError
from garrison.admission.review import as_request, is_admission_review
from garrison.events.errors import GarrisonError
from garrison.yaml12 import load_all

SUITE_KIND = "Suite"
SUITE_API = "test.gatekeeper.sh/"


@dataclass(frozen=True)
class CaseResult:
    suite: str
    test: str
    case: str
    passed: bool
    skipped: bool = False
    error: str | None = None
    violations: tuple[str, ...] = ()


@dataclass
class VerifyReport:
    cases: list[CaseResult] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(1 for c in self.cases if c.passed and not c.skipped)

    @property
    def failed(self) -> int:
        return sum(1 for c in self.cases if not c.passed and not c.skipped)

    @property
    def skipped(self) -> int:
        return sum(1 for c in self.cases if c.skipped)


def _read_documents(path: Path) -> list[Any]:
    try:
        return list(load_all(path.read_text()))
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read: {exc.strerror}") from None
    except Exception as exc:  # yaml.YAMLError and its kin
        raise PolicyError(f"{path}: not valid YAML: {exc}") from None


def _read_one(path: Path) -> Any:
    docs = _read_documents(path)
    if len(docs) != 1:
        raise PolicyError(f"{path}: expected exactly one object, found {len(docs)}")
    return docs[0]


def _relative(base: Path, value: Any, what: str) -> Path:
    if not isinstance(value, str) or not value:
        raise PolicyError(f"{what} must be a path relative to the suite")
    if Path(value).is_absolute():
        raise PolicyError(f"{what} {value!r}: absolute paths are not allowed in a suite")
    return base / value


def find_suites(paths: list[Path]) -> Iterator[Path]:
    """Suite files under the given files or directories, in a stable order."""
    for path in paths:
        if path.is_dir():
            for candidate in sorted(path.rglob("*.yaml")):
                if _is_suite_file(candidate):
                    yield candidate
        elif _is_suite_file(path):
            yield path
        else:
            raise PolicyError(f"{path}: not a gator Suite file or a directory")


def _is_suite_file(path: Path) -> bool:
    if not path.is_file():
        return False
    head = path.read_text(errors="replace")[:2000]
    return f"kind: {SUITE_KIND}" in head and SUITE_API in head


def _expected(value: Any) -> str | int:
    if value is None:
        return "yes"
    if isinstance(value, bool):  # a YAML 1.1 reading of yes/no
        return "yes" if value else "no"
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value in ("yes", "no"):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise PolicyError(f"assertion violations: {value!r} is not yes, no or a number")


def _assert(assertion: Mapping[str, Any], messages: list[str]) -> bool:
    expected = _expected(assertion.get("violations"))
    pattern = assertion.get("message")
    if pattern is not None:
        regex = re.compile(str(pattern))
        n = sum(1 for m in messages if regex.search(m))
    else:
        n = len(messages)
    if expected == "yes":
        return n >= 1
    if expected == "no":
        return n == 0
    return n == expected


def _run_case(
    base: Path,
    template_obj: Any,
    constraint_obj: Any,
    case: Mapping[str, Any],
    engine: EngineMode,
) -> tuple[bool, tuple[str, ...]]:
    assertions = case.get("assertions")
    if not isinstance(assertions, list) or not assertions:
        raise PolicyError("a case needs at least one assertion")
    obj = _read_one(_relative(base, case.get("object"), "case object"))
    inventory = Inventory()
    for inv_path in case.get("inventory") or []:
        for inv_obj in _read_documents(_relative(base, inv_path, "inventory")):
            if isinstance(inv_obj, Mapping):
                inventory.put(inv_obj)
    policy = load_policy_set([template_obj, constraint_obj], engine, inventory)
    request = _strict_request(obj) if is_admission_review(obj) else as_request(obj)
    messages = [r.msg for r in policy.review(request, point="gator.gatekeeper.sh")]
    ok = all(_assert(a, messages) for a in assertions if isinstance(a, Mapping))
    return ok, tuple(messages)


_REQUEST_FIELDS = frozenset(
    {
        "uid",
        "kind",
        "resource",
        "subResource",
        "requestKind",
        "requestResource",
        "requestSubResource",
        "name",
        "namespace",
        "operation",
        "userInfo",
        "object",
        "oldObject",
        "dryRun",
        "options",
    }
)


def _strict_request(review: Mapping[str, Any]) -> dict[str, Any]:
    """gator decodes the request strictly: unknown fields are an error."""
    request = review.get("request")
    if isinstance(request, Mapping):
        unknown = set(request) - _REQUEST_FIELDS
        if unknown:
            raise PolicyError(f"AdmissionReview request has unknown fields {sorted(unknown)}")
    out = as_request(review, require_kind=False)
    out.setdefault("uid", "")
    out.setdefault("operation", "")
    out.setdefault("userInfo", {})
    out.setdefault("resource", {"group": "", "version": "", "resource": ""})
    return out


def verify_suite(path: Path, engine: EngineMode = "rego") -> list[CaseResult]:
    suite = _read_one(path)
    name = str((suite.get("metadata") or {}).get("name") or path.parent.name)
    base = path.parent
    out: list[CaseResult] = []
    suite_skip = bool(suite.get("skip"))
    for test in suite.get("tests") or []:
        test_name = str(test.get("name", ""))
        cases = test.get("cases") or []
        try:
            template_obj = _read_one(_relative(base, test.get("template"), "template"))
            constraint_obj = _read_one(_relative(base, test.get("constraint"), "constraint"))
            if test.get("invalid"):
                out.append(_invalid_case(name, test_name, template_obj, constraint_obj, engine))
                continue
            load_policy_set([template_obj, constraint_obj], engine)  # compiles, or fails the test
        except GarrisonError as exc:
            for case in cases:
                out.append(
                    CaseResult(name, test_name, str(case.get("name", "")), False, error=str(exc))
                )
            continue
        for case in cases:
            case_name = str(case.get("name", ""))
            if suite_skip or test.get("skip") or case.get("skip"):
                out.append(CaseResult(name, test_name, case_name, True, skipped=True))
                continue
            try:
                ok, messages = _run_case(base, template_obj, constraint_obj, case, engine)
                out.append(CaseResult(name, test_name, case_name, ok, violations=messages))
            except GarrisonError as exc:
                out.append(CaseResult(name, test_name, case_name, False, error=str(exc)))
    return out


def _invalid_case(
    suite: str, test: str, template_obj: Any, constraint_obj: Any, engine: EngineMode
) -> CaseResult:
    """A test marked ``invalid``: the constraint must be refused."""
    try:
        load_policy_set([template_obj, constraint_obj], engine)
    except GarrisonError:
        return CaseResult(suite, test, "(invalid constraint)", True)
    return CaseResult(
        suite, test, "(invalid constraint)", False, error="the constraint was accepted"
    )


def verify(paths: list[Path], engine: EngineMode = "rego") -> VerifyReport:
    report = VerifyReport()
    for suite in find_suites(paths):
        report.cases.extend(verify_suite(suite, engine))
    return report
