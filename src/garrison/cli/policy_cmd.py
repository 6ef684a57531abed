"""``garrison policy verify|eval``: Gatekeeper policies tested and evaluated offline."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import yaml

from garrison.admission.builtins import Catalog
from garrison.admission.evaluate import load_policy_set
from garrison.admission.files import read_objects, read_tree
from garrison.admission.gator import verify
from garrison.admission.inventory import Inventory
from garrison.admission.review import as_request
from garrison.admission.sources import parse_effects
from garrison.cli.backend_client import Backend, add_backend_arguments
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
    assign = sub.add_parser("assign", help="assign admission policies to a cluster (backend)")
    assign.add_argument("cluster")
    assign.add_argument("--initiative", action="append", default=[], metavar="NAME")
    assign.add_argument("--effect", action="append", default=[], metavar="INITIATIVE/NAME=EFFECT")
    assign.add_argument("--policy", type=Path, action="append", default=[], metavar="PATH")
    assign.add_argument("--exempt-namespace", action="append", default=[], metavar="NS")
    add_backend_arguments(assign)
    assign.set_defaults(run=run_assign)
    show = sub.add_parser("show", help="print a cluster's policy assignment (backend)")
    show.add_argument("cluster")
    add_backend_arguments(show)
    show.set_defaults(run=run_show)
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


def run_assign(args: argparse.Namespace) -> int:
    """Check the assignment here (it must load), then store it on the backend."""
    try:
        catalog = Catalog()
        known = set(catalog.initiative_names())
        unknown = [i for i in args.initiative if i not in known]
        if unknown:
            raise GarrisonError(f"unknown initiative(s) {unknown}; known: {sorted(known)}")
        effects = parse_effects(args.effect)
        objects = read_tree(args.policy)
        load_policy_set(  # refuse here what the cluster would refuse
            [
                *catalog.template_objects(),
                *(
                    c
                    for i in args.initiative
                    for c in catalog.constraint_objects(i, effects.get(i))
                ),
                *(o for o in objects if not str(o.get("apiVersion", "")).startswith("mutations.")),
            ]
        )
        body = {
            "initiatives": args.initiative,
            "effects": {f"{i}/{n}": e for i, over in effects.items() for n, e in over.items()},
            "objects": objects,
            "exempt_namespaces": args.exempt_namespace,
        }
        answer = Backend.from_args(args).call(
            "PUT", f"/v1/clusters/{urllib.parse.quote(args.cluster)}/policy", body
        )
    except GarrisonError as exc:
        print(f"garrison policy assign: {exc}", file=sys.stderr)
        return 2
    print(f"cluster {answer['cluster']}: policy assignment version {answer['version']}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    try:
        answer = Backend.from_args(args).call(
            "GET", f"/v1/clusters/{urllib.parse.quote(args.cluster)}/policy"
        )
    except GarrisonError as exc:
        print(f"garrison policy show: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(answer, indent=2, sort_keys=True))
    return 0


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
