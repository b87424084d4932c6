"""The WAV container of a recording: 16-bit PCM, 8 kHz, stereo (caller left, agent right).

A recording is written with a header whose sizes are zero and fixed when it is closed; a file a
crash left open is made playable by `repair`, which sets the sizes from the file's length.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import BinaryIO, Final

from domain.recording import CHANNELS, SAMPLE_BYTES, SAMPLE_RATE

HEADER_BYTES: Final = 44
FRAME_BYTES: Final = CHANNELS * SAMPLE_BYTES  # one stereo sample
BYTES_PER_SECOND: Final = SAMPLE_RATE * FRAME_BYTES


def header(data_bytes: int) -> bytes:
    """The RIFF header of a stereo 16-bit 8 kHz WAV holding `data_bytes` of samples."""
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,
        1,  # PCM
        CHANNELS,
        SAMPLE_RATE,
        BYTES_PER_SECOND,
        FRAME_BYTES,
        8 * SAMPLE_BYTES,
        b"data",
        data_bytes,
    )


def fix_sizes(file: BinaryIO, data_bytes: int) -> None:
    """Write the final header over the provisional one (the file position is restored)."""
    position = file.tell()
    file.seek(0)
    file.write(header(data_bytes))
    file.seek(position)


def repair(path: Path) -> int:
    """Make a recording a crash left behind playable: drop a torn last sample, set the RIFF and
    data sizes from the file's length. Returns the data bytes (0 for a file with no samples)."""
    with path.open("r+b") as file:
        size = file.seek(0, os.SEEK_END)
        data_bytes = max(0, size - HEADER_BYTES) // FRAME_BYTES * FRAME_BYTES
        file.truncate(HEADER_BYTES + data_bytes)
        fix_sizes(file, data_bytes)
    return data_bytes
