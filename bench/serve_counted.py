"""`agent-stream` with one addition for the soak: a thread that writes the process's count of pending
asyncio tasks to TASKS_FILE every TASKS_EVERY seconds (JSON lines), so a leak of tasks shows.

It reads asyncio's registry of tasks (the one `asyncio.all_tasks()` reads) from outside the loop: no
change to the service, no work on its loop. usage: python bench/serve_counted.py serve --port 8765
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from asyncio import tasks as asyncio_tasks

from entrypoints.cli import main


def _pending() -> int | None:
    for _ in range(10):  # the loop may add a task while we copy the set: copy again
        try:
            return sum(1 for task in list(asyncio_tasks._all_tasks) if not task.done())
        except RuntimeError:
            time.sleep(0.01)
    return None


def _record(path: str, every: float) -> None:
    while True:
        with open(path, "a") as f:
            f.write(json.dumps({"t": round(time.time(), 1), "tasks": _pending()}) + "\n")
        time.sleep(every)


if __name__ == "__main__":
    if path := os.environ.get("TASKS_FILE"):
        every = float(os.environ.get("TASKS_EVERY", "5"))
        threading.Thread(target=_record, args=(path, every), daemon=True, name="bench-tasks").start()
    sys.exit(main())
