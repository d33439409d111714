"""Model data collection: the inputs and outputs of every scored request.

Collection goes through `azureml-ai-monitoring`'s `Collector` (the names `model_inputs` and
`model_outputs` are the ones Azure ML model monitoring expects), with `on_error` so that it can
never break scoring. Importing the SDK pulls in pandas and requests (about 1 s on this machine),
so nothing here is imported on the cold-start path: a background thread imports the SDK after
init() returned, requests only put (rows, predictions, request id) on a bounded queue, and the
same thread builds the DataFrames and hands them to the SDK. Rows submitted while the SDK is
still loading wait in the queue; when the queue is full, rows are dropped and counted.

Locally (SCORING_COLLECT_DIR set) the SDK runs in local-capture mode, which logs each payload to
its `local.capture` logger; `CaptureFileHandler` turns those records into JSON lines under
`<dir>/<collection>/<YYYY-MM-DD>.jsonl`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from scoring.schema import FEATURES, PREDICTION_COLUMN

INPUTS = "model_inputs"
OUTPUTS = "model_outputs"
CAPTURE_LOGGER = "local.capture"  # the monitoring SDK's logger for local capture
DEFAULT_CAPACITY = 10_000
_MAX_DISTINCT_ERRORS = 20

_LOG = logging.getLogger("azmlinfsrv.score.collection")

_Item = tuple[np.ndarray, np.ndarray, str]


class CaptureFileHandler(logging.Handler):
    """Write local-capture records of the monitoring SDK as JSON lines, one file per day."""

    def __init__(self, directory: Path) -> None:
        super().__init__(level=logging.INFO)
        self.directory = directory
        self._files: dict[Path, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        """Append one payload; the SDK logs (time, collection, correlation id, JSON records)."""
        try:
            args = record.args
            if not isinstance(args, tuple) or len(args) != 4:
                return
            stamp, collection, correlation_id, content = args
            # The content is the SDK's JSON already: embed it as is instead of re-encoding.
            line = (
                f'{{"time":{json.dumps(str(stamp))},"collection":{json.dumps(str(collection))},'
                f'"correlation_id":{json.dumps(str(correlation_id))},"data":{content}}}\n'
            )
            path = self.directory / str(collection) / f"{str(stamp)[:10]}.jsonl"
            descriptor = self._files.get(path)
            if descriptor is None:
                self._close_day_files(path.parent)  # a new day: yesterday's file is done
                path.parent.mkdir(parents=True, exist_ok=True)
                # O_APPEND and one write per line: gunicorn workers can share the file.
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                self._files[path] = descriptor
            os.write(descriptor, line.encode("utf-8"))
        except Exception:
            self.handleError(record)

    def _close_day_files(self, folder: Path) -> None:
        for old in [path for path in self._files if path.parent == folder]:
            with contextlib.suppress(OSError):
                os.close(self._files.pop(old))

    def close(self) -> None:
        """Close the open files."""
        for descriptor in self._files.values():
            with contextlib.suppress(OSError):
                os.close(descriptor)
        self._files.clear()
        super().close()


def _sdk_queue() -> Any:
    """The monitoring SDK's in-memory payload queue (internal API of the pinned 1.0.0)."""
    try:
        from azureml.ai.monitoring.queue import get_queue

        return get_queue()
    except Exception:  # another SDK version: run without backpressure
        return None


class DataCollection:
    """Asynchronous collection of model inputs and outputs; never raises into scoring."""

    def __init__(self, capture_dir: Path | None = None, *, capacity: int = DEFAULT_CAPACITY):
        self.capture_dir = capture_dir
        self._queue: queue.Queue[_Item | None] = queue.Queue(capacity)
        self._thread: threading.Thread | None = None
        self.ready = threading.Event()
        self.failure: str | None = None
        self.dropped = 0
        self._errors_seen: set[str] = set()
        self._downstream: Any = None  # the SDK's payload queue, once loaded

    def start(self) -> None:
        """Load the SDK on a background thread, then collect whatever is queued."""
        self._thread = threading.Thread(
            target=self._run, name="scoring-data-collection", daemon=True
        )
        self._thread.start()

    def submit(self, inputs: np.ndarray, outputs: np.ndarray, request_id: str) -> None:
        """Queue one request's rows and predictions (cheap: no pandas, no I/O here)."""
        if self.failure is not None:
            return
        try:
            self._queue.put_nowait((inputs, outputs, request_id))
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                _LOG.warning("data collection queue is full: %d request(s) dropped", self.dropped)

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every queued item went through the SDK's queue; True if it did in time."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks or (
            self._downstream is not None and self._downstream.length() > 0
        ):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the background thread after it handled what is queued."""
        if self._thread is None:
            return
        try:
            self._queue.put(None, timeout=timeout_s)
        except queue.Full:
            return
        self._thread.join(timeout_s)

    def on_error(self, error: Exception) -> None:
        """The Collector's error callback: log each distinct problem once, never raise."""
        message = f"{type(error).__name__}: {error}"
        if message in self._errors_seen or len(self._errors_seen) >= _MAX_DISTINCT_ERRORS:
            return
        self._errors_seen.add(message)
        _LOG.warning("data collection problem (logged once): %s", message)

    def _run(self) -> None:
        try:
            sink = self._create_sink()
        except Exception as error:
            self.failure = f"{type(error).__name__}: {error}"
            _LOG.warning("data collection is off: %s", self.failure)
            self._discard_queue()
            return
        self.ready.set()
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                sink(*item)
            except Exception as error:
                self.on_error(error)
            finally:
                self._queue.task_done()

    def _discard_queue(self) -> None:
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return
            self._queue.task_done()

    def _create_sink(self) -> Any:
        if self.capture_dir is not None:
            # Local capture: the SDK logs payloads instead of posting them to the MDC sidecar.
            os.environ["AZUREML_MDC_ENABLED"] = "true"
            os.environ["AZUREML_MDC_LOCAL_CAPTURE"] = "true"
        started = time.perf_counter()
        import pandas as pd
        from azureml.ai.monitoring import Collector
        from azureml.ai.monitoring.context import BasicCorrelationContext

        inputs_collector = Collector(name=INPUTS, on_error=self.on_error)
        outputs_collector = Collector(name=OUTPUTS, on_error=self.on_error)
        if self.capture_dir is not None:
            self.capture_dir.mkdir(parents=True, exist_ok=True)
            capture = logging.getLogger(CAPTURE_LOGGER)
            # Replace the SDK's stdout handler: collected rows belong in files, not in the log.
            for handler in capture.handlers:
                handler.close()
            capture.handlers = [CaptureFileHandler(self.capture_dir)]
            capture.setLevel(logging.INFO)
            capture.propagate = False
        _LOG.info(
            "data collection ready in %.2f s (%s)",
            time.perf_counter() - started,
            f"local capture to {self.capture_dir}" if self.capture_dir else "Azure ML collector",
        )
        columns = list(FEATURES)
        output_columns = [PREDICTION_COLUMN]
        sdk_queue = _sdk_queue()
        self._downstream = sdk_queue

        def sink(inputs: np.ndarray, outputs: np.ndarray, request_id: str) -> None:
            # Backpressure: the SDK drops payloads when its own queue (1500) is full, while
            # ours absorbs bursts and counts what it has to drop.
            if sdk_queue is not None:
                deadline = time.monotonic() + 5
                while sdk_queue.length() >= sdk_queue.capacity() - 2:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.002)
            # The request id correlates inputs with outputs, and both with the server log.
            context = BasicCorrelationContext(id=request_id)
            inputs_collector.collect(pd.DataFrame(inputs, columns=columns), context)
            outputs_collector.collect(
                pd.DataFrame(outputs.reshape(-1, 1), columns=output_columns), context
            )

        return sink
