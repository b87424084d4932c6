"""The disk cost of recording, from what a ladder with RECORDING=1 left in its recordings folder.

usage: python bench/recording_rate.py RECORDINGS_FOLDER [PROCESS_WRITE_BYTES]

Each recording is a stereo 16-bit 8 kHz WAV (32,000 bytes a second of call, plus a 44-byte header);
the figure that matters is bytes written per second of each call. PROCESS_WRITE_BYTES (the server's
`/proc/PID/io` write_bytes over the ladder) shows what the process wrote to disk in all (its logs
and the embedded database included, if any).
"""

from __future__ import annotations

import sys
import wave
from pathlib import Path


def main() -> None:
    folder = Path(sys.argv[1])
    process_bytes = int(sys.argv[2]) if len(sys.argv) > 2 else None
    files = sorted(folder.glob("*.wav"))
    seconds = 0.0
    total = 0
    for path in files:
        with wave.open(str(path)) as wav:
            seconds += wav.getnframes() / wav.getframerate()
        total += path.stat().st_size
    left = list((folder / ".partial").glob("*")) if (folder / ".partial").is_dir() else []
    print("| recordings | call seconds | bytes | bytes per call-second | left unfinished |")
    print("|---|---|---|---|---|")
    rate = total / seconds if seconds else 0.0
    print(f"| {len(files)} | {seconds:.1f} | {total} | {rate:,.0f} ({rate / 1024:.1f} KiB/s) | {len(left)} |")
    if process_bytes is not None:
        print(f"\nserver process write_bytes over the ladder: {process_bytes:,}")
        if seconds:
            print(f"= {process_bytes / seconds:,.0f} bytes per call-second (recordings are {rate:,.0f})")


if __name__ == "__main__":
    main()
