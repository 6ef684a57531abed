"""``python -m bench`` (``make bench``): every benchmark in one run."""

from __future__ import annotations

from bench import admission, audit_pipeline, ingest, publisher, receiver, runtime_rules, sensor


def main() -> None:
    for module in (audit_pipeline, runtime_rules, sensor, receiver, ingest, publisher, admission):
        module.main()
        print()


if __name__ == "__main__":
    main()
