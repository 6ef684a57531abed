"""Audit pipeline throughput: decode + every default rule + Falco's k8saudit rules, one core.

Baseline: decoding the same JSON lines with the same decoder and nothing else.
Target (issue 2): >= 50,000 events/s and <= 4x the decode-only cost.
"""

from __future__ import annotations

import gc
import time

from bench.workload import FALCO_RULES, audit_stream
from garrison.audit.analyzer import AuditAnalyzer, build_engine
from garrison.audit.decode import DecodeResult, decode_event
from garrison.audit.sa_baseline import ServiceAccountBaseline
from garrison.rules import Engine

EVENTS = 100_000
ROUNDS = 5


def decode_only(lines: list[bytes]) -> float:
    start = time.perf_counter()
    result = DecodeResult()
    count = 0
    for index, line in enumerate(lines):
        decode_event(line, index, result)
        count += len(result.events)
        result.events.clear()
    assert count == len(lines)
    return time.perf_counter() - start


def rules_only(lines: list[bytes], engine: Engine) -> tuple[float, int]:
    """Decode + every rule evaluated, matches with their rendered output (no Alert records)."""
    start = time.perf_counter()
    matches = 0
    result = DecodeResult()
    for index, line in enumerate(lines):
        decode_event(line, index, result)
        for event in result.events:
            matches += len(engine.evaluate(event))
        result.events.clear()
    return time.perf_counter() - start, matches


def pipeline(lines: list[bytes], analyzer: AuditAnalyzer) -> tuple[float, int]:
    """Decode + rules + Alert records (entities, evidence, ids) + the service-account baseline."""
    start = time.perf_counter()
    alerts = 0
    result = DecodeResult()
    for index, line in enumerate(lines):
        decode_event(line, index, result)
        for event in result.events:
            alerts += len(analyzer.analyze(event, "bench"))
        result.events.clear()
    return time.perf_counter() - start, alerts


def measure(lines: list[bytes], engine: Engine) -> tuple[float, float, float, int]:
    """Best of ``ROUNDS``: seconds for decode, decode + rules, full analyzer; alerts a pass."""
    decode_times, rule_times, full_times = [], [], []
    alerts = 0
    for _ in range(ROUNDS):
        decode_times.append(decode_only(lines))
        rule_times.append(rules_only(lines, engine)[0])
        elapsed, alerts = pipeline(lines, AuditAnalyzer(engine, ServiceAccountBaseline()))
        full_times.append(elapsed)
    return min(decode_times), min(rule_times), min(full_times), alerts


def main() -> dict[str, float]:
    engine, report = build_engine([FALCO_RULES], default_rules=True)
    print(
        f"audit pipeline: {EVENTS:,} events, {report.compiled} rules (garrison defaults + Falco k8saudit)"
    )
    gc.collect()
    gc.freeze()  # as garrison's processes do once their rules are built
    figures: dict[str, float] = {}
    for label, share in (("busy mix", 0.20), ("quiet mix", 0.02)):
        lines = audit_stream(EVENTS, recorded_share=share)
        decode_s, rules_s, full_s, alerts = measure(lines, engine)
        print(f"  {label} ({share:.0%} recorded attack/change events, {alerts:,} alerts per pass)")
        print(f"    decode only (baseline)   {EVENTS / decode_s:>10,.0f} events/s")
        for name, seconds in (("decode + rules", rules_s), ("+ alerts + baseline", full_s)):
            rate, ratio = EVENTS / seconds, seconds / decode_s
            print(f"    {name:<24} {rate:>10,.0f} events/s   {ratio:.2f}x decode-only")
            figures[f"{label} {name} events/s"] = rate
            figures[f"{label} {name} ratio"] = ratio
    print("  targets: >= 50,000 events/s and <= 4.00x decode-only")
    lines = audit_stream(20_000)
    costly = sorted(engine.profile(_decoded(lines)).items(), key=lambda kv: -kv[1])[:10]
    print("  costliest rules (seconds over 20,000 events):")
    for name, seconds in costly:
        print(f"    {seconds:8.4f}  {name}")
    return figures


def _decoded(lines: list[bytes]) -> list[object]:
    result = DecodeResult()
    for index, line in enumerate(lines):
        decode_event(line, index, result)
    return list(result.events)


if __name__ == "__main__":
    main()
