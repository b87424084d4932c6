"""A run's recording: a stereo WAV of the call (caller left, agent right), as the run carries it.

`key` names the file in the recording store; `url` is where the API serves it
(`GET /api/v1/runs/{id}/recording`); `seconds` and `channels` describe it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

SAMPLE_RATE: Final = 8000
CHANNELS: Final = 2  # caller left, agent right
SAMPLE_BYTES: Final = 2  # 16-bit PCM


def recording_key(run_id: int) -> str:
    """The file name of run `run_id`'s recording in the store."""
    return f"run-{run_id}.wav"


def run_id_of_key(name: str) -> int | None:
    """The run id a recording's file name (`run-<id>.wav`, maybe with a further suffix) names."""
    if not name.startswith("run-"):
        return None
    digits = name[4:].split(".", 1)[0]
    return int(digits) if digits.isdigit() else None


def recording_url(public_url: str, run_id: int) -> str:
    return f"{public_url.rstrip('/')}/api/v1/runs/{run_id}/recording"


@dataclass(frozen=True, slots=True)
class RunRecording:
    key: str
    url: str
    seconds: float
    channels: int = CHANNELS
    bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        """What the run's row stores (the API shows `url`, `seconds` and `channels`)."""
        return {
            "key": self.key,
            "url": self.url,
            "seconds": self.seconds,
            "channels": self.channels,
            "bytes": self.bytes,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> RunRecording | None:
        if not raw:
            return None
        return cls(
            key=str(raw["key"]),
            url=str(raw["url"]),
            seconds=float(raw["seconds"]),
            channels=int(raw.get("channels", CHANNELS)),
            bytes=int(raw.get("bytes", 0)),
        )

    def to_api(self) -> dict[str, Any]:
        return {"url": self.url, "seconds": self.seconds, "channels": self.channels}
