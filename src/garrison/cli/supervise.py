"""Child processes of ``garrison up`` (sensor, publisher): started, watched, restarted, stopped.

A child that exits on its own is restarted after a pause that doubles each time (1 s up to
30 s); more than ``max_restarts`` exits within ``window_seconds`` and it is given up, with
a line saying so. Their output is read line by line and handed to callbacks; stopping sends
SIGTERM and, after ``grace_seconds``, SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

LineHandler = Callable[[str], None]


@dataclass
class Child:
    name: str
    argv: list[str]
    env: Mapping[str, str]
    on_stdout: LineHandler
    on_stderr: LineHandler
    exits: list[float] = field(default_factory=list)
    process: asyncio.subprocess.Process | None = None


class Supervisor:
    def __init__(
        self,
        children: list[Child],
        *,
        say: LineHandler,
        max_restarts: int = 5,
        window_seconds: float = 60.0,
        grace_seconds: float = 10.0,
    ) -> None:
        self.children = children
        self.say = say
        self.max_restarts = max_restarts
        self.window = window_seconds
        self.grace = grace_seconds
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []

    def stopping(self) -> bool:
        return self._stopping

    def start(self) -> None:
        for child in self.children:
            self._tasks.append(asyncio.create_task(self._watch(child)))

    async def _watch(self, child: Child) -> None:
        pause = 1.0
        while not self.stopping():
            child.process = await asyncio.create_subprocess_exec(
                *child.argv,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=dict(child.env),
            )
            assert child.process.stdout is not None and child.process.stderr is not None
            await asyncio.gather(
                _lines(child.process.stdout, child.on_stdout),
                _lines(child.process.stderr, child.on_stderr),
            )
            code = await child.process.wait()
            if self.stopping():
                return
            now = time.monotonic()
            child.exits = [t for t in child.exits if now - t < self.window] + [now]
            if len(child.exits) > self.max_restarts:
                self.say(f"{child.name} exited {len(child.exits)} times in a minute; not restarted")
                return
            self.say(f"{child.name} exited with status {code}; restarting in {pause:.0f} s")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 30.0)

    async def stop(self) -> None:
        self._stopping = True
        running = [c.process for c in self.children if c.process and c.process.returncode is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        for process in running:
            try:
                await asyncio.wait_for(process.wait(), self.grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def _lines(stream: asyncio.StreamReader, handle: LineHandler) -> None:
    while True:
        try:
            line = await stream.readline()
        except ValueError:  # a line longer than the reader's limit: skip what it has
            continue
        if not line:
            return
        handle(line.decode("utf-8", "replace").rstrip("\n"))
