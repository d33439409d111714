"""Model data collection: the inputs and outputs of every scored request.

Collection goes through `azureml-ai-monitoring`'s `Collector` (the names `model_inputs` and
`model_outputs` are the ones Azure ML model monitoring expects), with `on_error` so that it can
never break scoring. The SDK works in pandas (a DataFrame per payload, `to_json` to send it) and
its sender thread; run inside the worker, that work holds the worker's GIL for milliseconds at a
time, and every request that needs the GIL meanwhile waits: the collection's p99 latency was
1.4-1.5 times collection off at concurrency 8 here, with a request's own share (a deque append)
costing nothing (measured with the SDK call removed: 0.99). So the SDK runs in a child process
of each worker (`python -m scoring.collection`), which also keeps pandas, requests and the SDK
out of the worker's memory and off its cold start. In the worker, requests only append (rows,
predictions, request id) to a bounded deque; a thread, every BATCH_INTERVAL_S, concatenates
what is pending into one message per payload and writes it to the child over a pipe (the GIL
is released while it writes). The child builds the DataFrames and hands them to the SDK.
Requests submitted before the child is ready wait; when DEFAULT_CAPACITY requests are pending
(the child or the SDK behind), further ones are dropped and counted.

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
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # imported where used: neither is on the worker's cold-start path
    import subprocess
    from multiprocessing.connection import Connection

INPUTS = "model_inputs"
CORRELATION_COLUMN = "correlationid"  # the column Learn suggests for per-row ids
AGENT = "azureml-ai-monitoring (local capture)"
OUTPUTS = "model_outputs"
CAPTURE_LOGGER = "local.capture"  # the monitoring SDK's logger for local capture
DEFAULT_CAPACITY = 10_000  # requests waiting for the next batch; beyond this they are dropped
BATCH_INTERVAL_S = 0.5  # how often pending requests become payloads
MAX_PAYLOAD_ROWS = 1_000  # rows per payload (no documented limit found; keeps each ~250 kB)
_MAX_DISTINCT_ERRORS = 20
READY_MESSAGE = "data collection ready"  # logged once the SDK is loaded (benchmarks wait for it)

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

    `submit` only appends to a deque (no lock, no wake-up). A thread wakes every `interval_s`,
    turns everything pending into one message per payload of up to `max_rows` rows (inputs,
    outputs and each row's correlation id) and writes it to the collection process, which
    builds the DataFrames and hands them to the SDK (module docstring: why a process).
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
        self._count_lock = threading.Lock()  # _in_hand changes on two threads
        self._send_lock = threading.Lock()  # the batch thread and flush() both write
        self._wake = threading.Event()
        self._synced = threading.Event()
        self._stopping = False
        self._stop_timeout_s = 10.0
        self._thread: threading.Thread | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._to_process: Connection | None = None
        self.ready = threading.Event()
        self.failure: str | None = None
        self.dropped = 0

    def start(self) -> None:
        """Start the collection process and the thread that feeds it."""
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
        while self.pending():
            if time.monotonic() > deadline or self.failure is not None:
                return False
            time.sleep(0.01)
        self._synced.clear()
        if not self._send(("sync",)):
            return False
        return self._synced.wait(max(0.0, deadline - time.monotonic())) and self.failure is None

    def stop(self, timeout_s: float = 10.0) -> None:
        """Hand what is pending to the SDK, let the collection process send it, and end it.

        A process still running after `timeout_s` is killed: what its SDK still held is lost.
        """
        if self._thread is None:
            return
        self._stop_timeout_s = timeout_s
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout_s + 1)
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def _fail(self, reason: str) -> None:
        if self.failure is None and not self._stopping:
            self.failure = reason
            _LOG.warning("data collection is off: %s", reason)
        self._pending.clear()
        with self._count_lock:
            self._in_hand = 0
        self._synced.set()  # a waiting flush() returns (and reports the failure)

    def _send(self, message: tuple[Any, ...]) -> bool:
        connection = self._to_process
        if connection is None:
            return False
        try:
            with self._send_lock:
                connection.send(message)
        except OSError:  # the process is gone; its reader reports why
            return False
        return True

    def _run(self) -> None:
        import subprocess

        try:
            self._start_process()
        except OSError as error:
            self._fail(f"the collection process did not start: {error}")
            return
        while True:
            self._wake.wait(self.interval_s)
            self._wake.clear()
            stopping = self._stopping
            if self.ready.is_set():
                self._drain()
            if self.failure is not None:
                return
            if stopping:
                self._send(("stop",))
                if self._process is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        self._process.wait(self._stop_timeout_s)
                return

    def _start_process(self) -> None:
        import subprocess
        from multiprocessing.connection import Connection

        from_parent, to_child = os.pipe()  # (read end, write end)
        from_child, to_parent = os.pipe()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            part for part in (str(_CODE_ROOT), env.get("PYTHONPATH", "")) if part
        )
        if self.capture_dir is not None:
            # Local capture: the SDK logs payloads instead of posting them to the MDC sidecar.
            env["AZUREML_MDC_ENABLED"] = "true"
            env["AZUREML_MDC_LOCAL_CAPTURE"] = "true"
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "scoring.collection", str(from_parent), str(to_parent)],
                pass_fds=(from_parent, to_parent),
                env=env,
                stdin=subprocess.DEVNULL,
            )
        finally:
            os.close(from_parent)
            os.close(to_parent)
        self._to_process = Connection(to_child, readable=False)
        replies = Connection(from_child, writable=False)
        threading.Thread(
            target=self._read, args=(replies,), name="scoring-data-collection-replies", daemon=True
        ).start()
        capture = str(self.capture_dir) if self.capture_dir is not None else None
        self._send(("config", capture, self.features, self.outputs))

    def _read(self, replies: Connection) -> None:
        """The collection process's replies: ready or failed, payloads done, problems."""
        while True:
            try:
                message = replies.recv()
            except (EOFError, OSError):
                break
            kind = message[0]
            if kind == "done":
                with self._count_lock:
                    self._in_hand = max(0, self._in_hand - message[1])
            elif kind == "synced":
                self._synced.set()
            elif kind == "ready":
                _LOG.info(READY_MESSAGE + " in %.2f s (%s)", message[1], message[2])
                self.ready.set()
                self._wake.set()  # requests submitted while it loaded go now
            elif kind == "failed":
                self._fail(message[1])
            elif kind == "error":  # each distinct problem once (the process sends it once)
                _LOG.warning("data collection problem (logged once): %s", message[1])
        replies.close()
        process = self._process
        code = process.wait() if process is not None else None
        self._fail(f"the collection process exited (code {code})")

    def _drain(self) -> None:
        taken: list[_Item] = []
        with self._count_lock:
            while self._pending:
                taken.append(self._pending.popleft())
            self._in_hand += len(taken)
        width = len(self.outputs)
        for group in batches(taken, self.max_rows):
            ids = [row for rows, _, request_id in group for row in row_ids(request_id, len(rows))]
            # One request: its id is the payload's, as before; several: a batch id, shared by
            # the inputs and outputs payloads (the rows carry the request ids).
            payload_id = group[0][2] if len(group) == 1 else f"batch-{uuid.uuid4()}"
            message = (
                "batch",
                np.concatenate([item[0] for item in group]),
                np.concatenate([item[1].reshape(-1, width) for item in group]),
                ids,
                payload_id,
                len(group),
            )
            if not self._send(message):
                return


# The folder that holds the scoring package: the collection process imports it from there.
_CODE_ROOT = Path(__file__).resolve().parent.parent
_SDK_IDLE_WAIT_S = 10.0


def _wait_for_sdk_queue(sdk_queue: Any, at_most: int, timeout_s: float) -> None:
    """Until the SDK's payload queue holds at most `at_most` payloads, or `timeout_s` passed."""
    deadline = time.monotonic() + timeout_s
    while sdk_queue is not None and sdk_queue.length() > at_most and time.monotonic() < deadline:
        time.sleep(0.002)


def _process_main(from_parent: int, to_parent: int) -> None:
    """The collection process: load the SDK, then turn each message into two payloads."""
    import signal
    from multiprocessing.connection import Connection

    # Ctrl+C reaches the whole process group: the worker stops, and its end of the pipe
    # closing is what ends this process, after the SDK sent what it holds.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    inbox = Connection(from_parent, writable=False)
    outbox = Connection(to_parent, readable=False)
    _, capture_dir, features, outputs = inbox.recv()
    errors_sent: set[str] = set()

    def report(error: Exception) -> None:
        message = f"{type(error).__name__}: {error}"
        if message not in errors_sent and len(errors_sent) < _MAX_DISTINCT_ERRORS:
            errors_sent.add(message)
            outbox.send(("error", message))

    started = time.perf_counter()
    try:
        import pandas as pd
        from azureml.ai.monitoring import Collector
        from azureml.ai.monitoring.context import BasicCorrelationContext

        inputs_collector = Collector(name=INPUTS, on_error=report)
        outputs_collector = Collector(name=OUTPUTS, on_error=report)
        if capture_dir is not None:
            Path(capture_dir).mkdir(parents=True, exist_ok=True)
            capture = logging.getLogger(CAPTURE_LOGGER)
            # Replace the SDK's stdout handler: collected rows belong in files, not in the log.
            for handler in capture.handlers:
                handler.close()
            capture.handlers = [CaptureFileHandler(Path(capture_dir))]
            capture.setLevel(logging.INFO)
            capture.propagate = False
    except Exception as error:
        outbox.send(("failed", f"{type(error).__name__}: {error}"))
        return
    sdk_queue = _sdk_queue()
    where = f"local capture to {capture_dir}" if capture_dir else "Azure ML collector"
    outbox.send(("ready", time.perf_counter() - started, f"{where}, process {os.getpid()}"))
    columns, output_columns = list(features), list(outputs)
    while True:
        try:
            message = inbox.recv()
        except EOFError:  # the worker is gone
            break
        kind = message[0]
        if kind == "stop":
            break
        if kind == "sync":
            _wait_for_sdk_queue(sdk_queue, 0, _SDK_IDLE_WAIT_S)
            outbox.send(("synced",))
            continue
        _, inputs, predictions, ids, payload_id, requests = message
        try:
            # Backpressure: the SDK drops payloads when its own queue (1500) is full; room for
            # this message's two payloads.
            if sdk_queue is not None:
                _wait_for_sdk_queue(sdk_queue, sdk_queue.capacity() - 3, 5)
            context = BasicCorrelationContext(id=payload_id)
            frame = pd.DataFrame(inputs, columns=columns)
            frame[CORRELATION_COLUMN] = ids
            inputs_collector.collect(frame, context)
            frame = pd.DataFrame(predictions, columns=output_columns)
            frame[CORRELATION_COLUMN] = ids
            outputs_collector.collect(frame, context)
        except Exception as error:
            report(error)
        outbox.send(("done", requests))
    _wait_for_sdk_queue(sdk_queue, 0, _SDK_IDLE_WAIT_S)
    with contextlib.suppress(Exception):  # the SDK's own flush: its sender finishes the last one
        from azureml.ai.monitoring.init import teardown

        teardown(wait_for_flush=True)


if __name__ == "__main__":
    _process_main(int(sys.argv[1]), int(sys.argv[2]))
