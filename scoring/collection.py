"""Model data collection: the inputs and outputs of every scored request.

Collection goes through `azureml-ai-monitoring`'s `Collector` (the names `model_inputs` and
`model_outputs` are the ones Azure ML model monitoring expects), with `on_error` so that it can
never break scoring. Importing the SDK pulls in pandas and requests (about 1 s on this machine),
so nothing here is imported on the cold-start path: a background thread imports the SDK after
init() returned, requests only append (rows, predictions, request id) to a bounded deque, and
the same thread, every BATCH_INTERVAL_S, turns what is pending into one DataFrame per
collection and hands it to the SDK. Rows submitted while the SDK is still loading wait; when
DEFAULT_CAPACITY requests are pending, further ones are dropped and counted.

Locally (SCORING_COLLECT_DIR set) the SDK runs in local-capture mode, which logs each payload to
its `local.capture` logger; `CaptureFileHandler` turns those records into the files Azure ML's
data collector writes on Azure (Learn, "how-to-collect-production-data", "Store collected data
in Blob Storage"): `<dir>/<collection>/<yyyy>/<MM>/<dd>/<HH>/<instance_id>.jsonl`, one JSON
object per payload with the rows under `data`. The local target points <dir> at
`modelDataCollector/<endpoint>/<deployment>` and copies the files to the local blob storage,
so one reader serves both targets.

Every row carries its own `correlationid` column, as Learn recommends for joining ground truth
later ("Collect data for model performance monitoring": the collector batches requests, so the
payload's correlationid alone cannot identify a row): the request id for a one-row request,
`<request id>:<row>` (row counted from 0) for a request with several rows.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

INPUTS = "model_inputs"
CORRELATION_COLUMN = "correlationid"  # the column Learn suggests for per-row ids
AGENT = "azureml-ai-monitoring (local capture)"
OUTPUTS = "model_outputs"
CAPTURE_LOGGER = "local.capture"  # the monitoring SDK's logger for local capture
DEFAULT_CAPACITY = 10_000  # requests waiting for the next batch; beyond this they are dropped
BATCH_INTERVAL_S = 0.5  # how often pending requests become payloads
MAX_PAYLOAD_ROWS = 1_000  # rows per payload (no documented limit found; keeps each ~250 kB)
_MAX_DISTINCT_ERRORS = 20

_LOG = logging.getLogger("azmlinfsrv.score.collection")

_Item = tuple[np.ndarray, np.ndarray, str]


class CaptureFileHandler(logging.Handler):
    """Write local-capture records of the monitoring SDK in the data collector's blob layout."""

    def __init__(self, directory: Path, instance_id: str | None = None) -> None:
        super().__init__(level=logging.INFO)
        self.directory = directory
        # Azure names each file after the instance that logged it; here: one per worker.
        self.instance_id = instance_id or uuid.uuid4().hex
        self._files: dict[str, tuple[Path, int]] = {}  # collection -> its current hour's file

    def emit(self, record: logging.LogRecord) -> None:
        """Append one payload; the SDK logs (UTC time, collection, correlation id, JSON rows)."""
        try:
            args = record.args
            if not isinstance(args, tuple) or len(args) != 4:
                return
            stamp, collection, correlation_id, content = (str(arg) for arg in args)
            # "YYYY-MM-DD HH:MM:SS" in UTC (the SDK's LocalCapture.send).
            day, clock = stamp[:10], stamp[11:19]
            # The collector's schema; the content is the SDK's JSON already: embedded as is.
            line = (
                f'{{"specversion":"1.0","id":"{uuid.uuid4()}",'
                f'"type":{json.dumps("azureml.inference." + collection)},'
                f'"datacontenttype":"application/json","time":"{day}T{clock}Z",'
                f'"data":{content},"correlationid":{json.dumps(correlation_id)},'
                f'"xrequestid":{json.dumps(correlation_id)},'
                f'"collectdatatype":"pandas.core.frame.DataFrame","agent":"{AGENT}"}}\n'
            )
            hour = f"{day.replace('-', '/')}/{clock[:2]}"
            path = self.directory / collection / hour / f"{self.instance_id}.jsonl"
            current = self._files.get(collection)
            if current is None or current[0] != path:
                if current is not None:  # a new hour: the previous hour's file is done
                    with contextlib.suppress(OSError):
                        os.close(current[1])
                path.parent.mkdir(parents=True, exist_ok=True)
                # O_APPEND and one write per line: never a torn line, even if files are shared.
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                current = self._files[collection] = (path, descriptor)
            os.write(current[1], line.encode("utf-8"))
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        """Close the open files."""
        for _, descriptor in self._files.values():
            with contextlib.suppress(OSError):
                os.close(descriptor)
        self._files.clear()
        super().close()


def row_ids(request_id: str, rows: int) -> list[str]:
    """Each row's correlation id: the request id, with `:<row>` when the request has several."""
    if rows == 1:
        return [request_id]
    return [f"{request_id}:{row}" for row in range(rows)]


def _sdk_queue() -> Any:
    """The monitoring SDK's in-memory payload queue (internal API of the pinned 1.0.0)."""
    try:
        from azureml.ai.monitoring.queue import get_queue

        return get_queue()
    except Exception:  # another SDK version: run without backpressure
        return None


def batches(items: list[_Item], max_rows: int) -> list[list[_Item]]:
    """Consecutive requests grouped into payloads of at most `max_rows` rows (one request at
    least, however many rows it has)."""
    groups: list[list[_Item]] = []
    rows = 0
    for item in items:
        if groups and rows + len(item[0]) <= max_rows:
            groups[-1].append(item)
            rows += len(item[0])
        else:
            groups.append([item])
            rows = len(item[0])
    return groups


class DataCollection:
    """Asynchronous, batched collection of model inputs and outputs; never raises into scoring.

    Where the time went (py-spy on a worker at concurrency 8): not in the
    DataFrames themselves but in waking two threads per request. Each `submit` notified the
    collection thread, which took the GIL away from the request thread, built two DataFrames and
    woke the SDK's sender thread, twice. Now `submit` only appends to a deque (no lock, no
    wake-up), and the collection thread wakes every `interval_s` to turn everything pending into
    one DataFrame per collection and payload of up to `max_rows` rows. Each row keeps its own
    correlation id column, which is what the feedback join reads.
    """

    def __init__(
        self,
        capture_dir: Path | None = None,
        *,
        features: tuple[str, ...],
        outputs: tuple[str, ...],
        capacity: int = DEFAULT_CAPACITY,
        interval_s: float = BATCH_INTERVAL_S,
        max_rows: int = MAX_PAYLOAD_ROWS,
    ):
        self.capture_dir = capture_dir
        self.features = features  # column names of model_inputs and model_outputs: the
        self.outputs = outputs  # model's contract (contract.json in its bundle)
        self.capacity = capacity
        self.interval_s = interval_s
        self.max_rows = max_rows
        self._pending: collections.deque[_Item] = collections.deque()
        self._in_hand = 0  # requests taken off the deque and not yet handed to the SDK
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.ready = threading.Event()
        self.failure: str | None = None
        self.dropped = 0
        self._errors_seen: set[str] = set()
        self._downstream: Any = None  # the SDK's payload queue, once loaded

    def start(self) -> None:
        """Load the SDK on a background thread, then collect whatever is pending."""
        self._thread = threading.Thread(
            target=self._run, name="scoring-data-collection", daemon=True
        )
        self._thread.start()

    def submit(self, inputs: np.ndarray, outputs: np.ndarray, request_id: str) -> None:
        """Keep one request's rows and predictions for the next batch (an append, nothing more)."""
        if self.failure is not None:
            return
        if len(self._pending) >= self.capacity:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                _LOG.warning("data collection queue is full: %d request(s) dropped", self.dropped)
            return
        self._pending.append((inputs, outputs, request_id))

    def pending(self) -> int:
        """Requests not yet handed to the SDK."""
        return len(self._pending) + self._in_hand

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Send what is pending now and wait until the SDK's queue is empty; True if in time."""
        deadline = time.monotonic() + timeout_s
        self._wake.set()
        while self.pending() or (self._downstream is not None and self._downstream.length() > 0):
            if time.monotonic() > deadline or self.failure is not None:
                return False
            time.sleep(0.01)
        return True

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the background thread after it handed what is pending to the SDK."""
        if self._thread is None:
            return
        self._stopping = True
        self._wake.set()
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
            self._pending.clear()
            return
        self.ready.set()
        while True:
            self._wake.wait(self.interval_s)
            self._wake.clear()
            stopping = self._stopping
            self._drain(sink)
            if stopping:
                return

    def _drain(self, sink: Any) -> None:
        taken: list[_Item] = []
        while self._pending:
            taken.append(self._pending.popleft())
            self._in_hand += 1
        for group in batches(taken, self.max_rows):
            try:
                sink(group)
            except Exception as error:
                self.on_error(error)
            finally:
                self._in_hand -= len(group)

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
        columns = list(self.features)
        output_columns = list(self.outputs)
        sdk_queue = _sdk_queue()
        self._downstream = sdk_queue

        def sink(group: list[_Item]) -> None:
            # Backpressure: the SDK drops payloads when its own queue (1500) is full.
            if sdk_queue is not None:
                deadline = time.monotonic() + 5
                while sdk_queue.length() >= sdk_queue.capacity() - 2:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.002)
            ids = [row for rows, _, request_id in group for row in row_ids(request_id, len(rows))]
            # One request: its id is the payload's, as before; several: a batch id, shared by
            # the inputs and outputs payloads (the rows carry the request ids).
            payload_id = group[0][2] if len(group) == 1 else f"batch-{uuid.uuid4()}"
            context = BasicCorrelationContext(id=payload_id)
            frame = pd.DataFrame(np.concatenate([item[0] for item in group]), columns=columns)
            frame[CORRELATION_COLUMN] = ids
            inputs_collector.collect(frame, context)
            width = len(output_columns)
            outputs = np.concatenate([item[1].reshape(-1, width) for item in group])
            predictions = pd.DataFrame(outputs, columns=output_columns)
            predictions[CORRELATION_COLUMN] = ids
            outputs_collector.collect(predictions, context)

        return sink
