"""Smart Turn's cost per inference, on the thread that infers (as the engine runs it: one
onnxruntime thread, numpy's BLAS held to one), and the memory the model adds to the process.

    python3 -m uv run python bench/smart_turn_cost.py [--seconds 3 --runs 30]

Audio of `--seconds` at the call's 8 kHz (the model resamples it to its 16 kHz), three warm-up
inferences, then `--runs` timed ones: CPU time of this thread per inference (p50, min, max), and
the growth of the process's peak resident memory from before the model was loaded.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from adapters.pipelines.pcm import CALL_RATE
from adapters.pipelines.pipecat.smart_turn import SmartTurnModel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model = SmartTurnModel()
    audio = (np.random.default_rng(0).standard_normal(round(args.seconds * CALL_RATE)) * 0.05).astype(
        np.float32
    )
    for _ in range(3):
        model.predict(audio)
    times = []
    for _ in range(args.runs):
        started = time.thread_time()
        model.predict(audio)
        times.append((time.thread_time() - started) * 1000)
    times.sort()
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(
        f"{args.runs} inferences on {args.seconds} s of audio: p50 {times[len(times) // 2]:.1f} ms, "
        f"min {times[0]:.1f}, max {times[-1]:.1f} ms of CPU each; the model added {grown:.0f} MB"
    )


if __name__ == "__main__":
    main()
