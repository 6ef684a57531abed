"""Stands in for the sensor in crash tests: writes ``ev-0`` .. ``ev-{N-1}`` into an outbox.

Resumes from a checkpoint file written after each committed batch; killed between the two,
it writes the last batch again (the outbox and the backend each keep a key once).
Run: python -m tests.integration.outbox_producer OUTBOX CHECKPOINT COUNT CLUSTER
"""

from __future__ import annotations

import sys
from pathlib import Path

from garrison.publisher.envelopes import envelope_record
from garrison.publisher.outbox import Outbox

BATCH = 500
PAYLOAD = b'{"type":"exec","pid":4242,"comm":"sh","exe":"/bin/sh","args":["sh","-c","id"],"uid":0}'


def main(outbox: str, checkpoint: str, count: int, cluster: str) -> None:
    mark = Path(checkpoint)
    start = int(mark.read_text()) if mark.exists() else 0
    box = Outbox(outbox)
    for first in range(start, count, BATCH):
        last = min(count, first + BATCH)
        box.put(
            [
                envelope_record(
                    kind="runtime_event",
                    key=f"ev-{i}",
                    payload=PAYLOAD,
                    cluster_id=cluster,
                    source="producer",
                )
                for i in range(first, last)
            ]
        )
        temporary = mark.with_suffix(".tmp")
        temporary.write_text(str(last))
        temporary.replace(mark)
    box.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
