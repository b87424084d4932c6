"""What the console's templates show of a run: its badge, transcript, latency chart and the rest.

The Jinja environment lives here too, so the live Runs tab renders a row exactly as the page does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from jinja2 import Environment, FileSystemLoader, select_autoescape

from domain.recording import RunRecording
from domain.webhooks import WebhookDelivery
from domain.workflow_run import WorkflowRun
from entrypoints.web.console.base import TEMPLATES

ENVIRONMENT = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)

CHART_WIDTH = 320
BAR_HEIGHT = 14
BAR_GAP = 6
CHART_LABEL = 64  # room for "turn 12" left of the bars


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else "—"


ENVIRONMENT.filters["when"] = when


@dataclass(frozen=True, slots=True)
class Line:
    role: str  # "caller" | "agent"
    text: str
    at: str
    interrupted: bool


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    y: int
    width: int
    ms: int


@dataclass(frozen=True, slots=True)
class LatencyChart:
    bars: list[Bar]
    height: int
    width: int
    scale_ms: int  # the value of a full-width bar


class RunView:
    """A run as the console shows it."""

    def __init__(self, run: WorkflowRun, webhook: WebhookDelivery | None = None) -> None:
        self.run = run
        self.webhook = webhook

    @property
    def id(self) -> int:
        return self.run.stored_id

    @property
    def state(self) -> str:
        return str(self.run.state)

    @property
    def live(self) -> bool:
        return not self.run.state.terminal

    @property
    def duration(self) -> str:
        seconds = self.run.duration_seconds
        return "—" if seconds is None else f"{seconds:.1f} s"

    @property
    def caller(self) -> str:
        return str(self.run.initial_context.get("caller_number") or "—")

    @property
    def dtmf(self) -> str:
        return str(self.run.gathered_context.get("dtmf") or "")

    @property
    def recording(self) -> RunRecording | None:
        """The run's recording (`seconds`, `channels`; the page plays it through the console)."""
        return self.run.recording

    @property
    def transcript(self) -> list[Line]:
        raw = self.run.gathered_context.get("transcript")
        if not isinstance(raw, list):
            return []
        return [
            Line(
                role="agent" if item.get("role") == "agent" else "caller",
                text=str(item.get("text", "")),
                at=str(item.get("at", "")),
                interrupted=bool(item.get("interrupted")),
            )
            for item in raw
            if isinstance(item, dict)
        ]

    @property
    def latency(self) -> LatencyChart | None:
        """Voice-to-voice latency per turn, as bars scaled to the slowest (at least 1 s)."""
        raw = self.run.gathered_context.get("turns")
        if not isinstance(raw, list):
            return None
        values = [
            int(turn["voice_to_voice_ms"])
            for turn in raw
            if isinstance(turn, dict) and isinstance(turn.get("voice_to_voice_ms"), int | float)
        ]
        if not values:
            return None
        scale = max(1000, *values)
        room = CHART_WIDTH - CHART_LABEL - 56
        bars = [
            Bar(f"turn {n}", n * (BAR_HEIGHT + BAR_GAP) - BAR_HEIGHT, max(1, round(ms * room / scale)), ms)
            for n, ms in enumerate(values, start=1)
        ]
        return LatencyChart(bars, len(values) * (BAR_HEIGHT + BAR_GAP) + BAR_GAP, CHART_WIDTH, scale)


def run_row_html(run: RunView) -> str:
    """One row of the Runs tab (as the page renders it), for the live stream."""
    return ENVIRONMENT.get_template("run_row.html").render(run=run)
