"""Smart Turn v3.2, Pipecat's end-of-turn model, for agents with `turn_detection: "smart_turn"`.

At each pause the VAD confirms (its `stop_secs`, 200 ms), the model is asked whether the caller's
utterance so far is finished; "incomplete" waits for more speech, at most `turn_fallback_secs` of
silence, after which the turn is answered anyway. Pipecat's `LocalSmartTurnAnalyzerV3` loads the
model (66 MB) per call and starts a thread per call; here:

- the model (shipped inside Pipecat's wheel) is loaded once per process, off the event loop, the
  first time an agent asks for it (`smart_turn_models()`), and shared by every call;
- every inference runs on one worker thread of the process (`SmartTurnModel.executor`), never on
  the event loop; onnxruntime uses one intra-op thread and releases the GIL;
- numpy's BLAS (the model's audio features) is held to one thread: with more, each inference
  takes about twice the CPU for the same answer.

`CallSmartTurn` is Pipecat's `BaseSmartTurn` (its audio buffering and fallback timer, per call)
over the shared model. It leans on two private members of `BaseSmartTurn`, written against
pipecat-ai 1.14.0: the `_model_executor` property and the `_predict_endpoint` hook.
"""

from __future__ import annotations

import asyncio
import ctypes
import glob
import os
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

import numpy as np
import structlog
from pipecat.audio.turn.smart_turn.base_smart_turn import BaseSmartTurn, SmartTurnParams
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3

from adapters.pipelines.pcm import CALL_RATE

log = structlog.get_logger(__name__)


def hold_blas_to_one_thread() -> bool:
    """Set numpy's bundled OpenBLAS to one thread (process-wide); False when it is not found."""
    libs = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "*openblas*")
    for path in glob.glob(libs):
        library = ctypes.CDLL(path)  # already loaded by numpy: the same library, not a second one
        for name in ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads"):
            setter = getattr(library, name, None)
            if setter is not None:
                setter(1)
                return True
    log.info("blas_threads_not_set")  # another BLAS: its threads are as the environment says
    return False


class SmartTurnModel:
    """The model, loaded once, and the one worker thread every call's inferences run on."""

    def __init__(self) -> None:
        hold_blas_to_one_thread()
        self._analyzer = LocalSmartTurnAnalyzerV3(cpu_count=1)  # Pipecat's loader: one ORT thread
        self._analyzer.set_sample_rate(CALL_RATE)  # it resamples the calls' audio to its 16 kHz
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smart-turn")
        self.inferences = 0  # for tests and benchmarks

    def predict(self, audio: np.ndarray[Any, Any]) -> dict[str, Any]:
        """On the worker thread: `{"prediction": 1 (complete) or 0, "probability": float}`."""
        self.inferences += 1
        return self._analyzer._predict_endpoint(audio)  # Pipecat's own inference


class SmartTurnModels:
    """The process's model, loaded on a thread the first time a call needs it (and kept, as the
    VAD's model is, for the process's life)."""

    def __init__(self) -> None:
        self._model: SmartTurnModel | None = None
        self._lock = asyncio.Lock()
        self.loads = 0

    async def get(self) -> SmartTurnModel:
        if self._model is None:
            async with self._lock:
                if self._model is None:
                    self._model = await asyncio.to_thread(SmartTurnModel)
                    self.loads += 1
        return self._model


@cache
def smart_turn_models() -> SmartTurnModels:
    """The one per process."""
    return SmartTurnModels()


class CallSmartTurn(BaseSmartTurn):
    """One call's end-of-turn analyser: Pipecat's buffering and fallback, the shared model."""

    def __init__(self, model: SmartTurnModel, fallback_secs: float) -> None:
        super().__init__(sample_rate=CALL_RATE, params=SmartTurnParams(stop_secs=fallback_secs))
        self._model = model

    @property
    def _model_executor(self) -> ThreadPoolExecutor:
        return self._model.executor

    def _predict_endpoint(self, audio_array: np.ndarray[Any, Any]) -> dict[str, Any]:
        return self._model.predict(audio_array)
