"""``garrison policy verify|eval``: Gatekeeper policies tested and evaluated offline."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from garrison.admission.builtins import Catalog
from garrison.admission.evaluate import load_policy_set
from garrison.admission.files import read_objects
from garrison.admission.gator import verify
from garrison.admission.inventory import Inventory
from garrison.admission.review import as_request
from garrison.admission.sources import parse_effects
from garrison.events.errors import GarrisonError


def register(commands: Any, name: str) -> None:
    parser = commands.add_parser(name, help="test and evaluate Gatekeeper policies offline")
    sub = parser.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    ver = sub.add_parser("verify", help="run gator suite.yaml files, as `gator verify` does")
    ver.add_argument("paths", nargs="+", type=Path, metavar="DIR")
    ver.add_argument("--format", choices=("text", "json"), default="text")
    ver.add_argument(
        "--engine",
        choices=("rego", "cel"),
        default="rego",
        help="rego: Rego code (gator --enable-k8s-native-validation=false); "
        "cel: CEL where a template has it",
    )
    ver.set_defaults(run=run_verify)
    ev = sub.add_parser("eval", help="evaluate one object or AdmissionReview")
    ev.add_argument("--template", type=Path, required=True, metavar="FILE")
    ev.add_argument("--constraint", type=Path, required=True, metavar="FILE")
    ev.add_argument("--inventory", type=Path, action="append", default=[], metavar="FILE")
    ev.add_argument("--engine", choices=("auto", "rego", "cel"), default="auto")
    ev.add_argument("object", type=Path, metavar="OBJECT_OR_REVIEW")
    ev.set_defaults(run=run_eval)
    export = sub.add_parser("export", help="print built-in templates and constraints (YAML)")
    export.add_argument("--initiative", action="append", default=[], metavar="NAME")
    export.add_argument("--effect", action="append", default=[], metavar="INITIATIVE/NAME=EFFECT")
    export.set_defaults(run=run_export)


def run_verify(args: argparse.Namespace) -> int:
    try:
        report = verify(args.paths, args.engine)
    except GarrisonError as exc:
        print(f"garrison policy verify: {exc}", file=sys.stderr)
        return 2
    if args.format == "json":
        for case in report.cases:
            print(
                json.dumps(
                    {
                        "suite": case.suite,
                        "test": case.test,
                        "case": case.case,
                        "passed": case.passed,
                        "skipped": case.skipped,
                        "error": case.error,
                        "violations": list(case.violations),
                    }
                )
            )
    else:
        for case in report.cases:
            status = "SKIP" if case.skipped else ("ok  " if case.passed else "FAIL")
            line = f"{status} {case.suite}/{case.test}/{case.case}"
            if not case.passed:
                line += f": {case.error}" if case.error else f": got {list(case.violations)}"
            print(line)
    summary = f"{report.passed} passed, {report.failed} failed"
    if report.skipped:
        summary += f", {report.skipped} skipped"
    print(summary)
    return 1 if report.failed else 0


def run_export(args: argparse.Namespace) -> int:
    """The built-ins as plain Gatekeeper objects, to apply to a cluster that runs Gatekeeper."""
    try:
        catalog = Catalog()
        effects = parse_effects(args.effect)
        docs: list[Any] = catalog.template_objects()
        for name in args.initiative:
            docs.extend(catalog.constraint_objects(name, effects.get(name)))
    except GarrisonError as exc:
        print(f"garrison policy export: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(yaml.safe_dump_all(docs, sort_keys=False))
    return 0


def run_eval(args: argparse.Namespace) -> int:
    try:
        templates = read_objects(args.template)
        constraints = read_objects(args.constraint)
        inventory = Inventory(o for path in args.inventory for o in read_objects(path))
        objects = read_objects(args.object)
        if len(objects) != 1:
            raise GarrisonError(f"{args.object}: expected one object, found {len(objects)}")
        policy = load_policy_set([*templates, *constraints], args.engine, inventory)
        results = policy.review(as_request(objects[0]), point="gator.gatekeeper.sh")
    except GarrisonError as exc:
        print(f"garrison policy eval: {exc}", file=sys.stderr)
        return 2
    violations = [
        {"msg": r.msg, "details": {} if r.details is None else r.details} for r in results
    ]
    print(json.dumps(violations, indent=2))
    return 0
