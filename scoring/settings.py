"""Scoring settings: every environment variable the scoring script reads, with its default.

One place: `score.py` reads them through `load_settings()`, docs/scoring.md documents them (a test
checks every variable listed in VARIABLES is documented). Invalid values stop the server at
start-up with a message naming the variable, rather than serving with a surprise default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from scoring.schema import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_ROWS

MAX_ROWS = "SCORING_MAX_ROWS"
MAX_BODY_BYTES = "SCORING_MAX_BODY_BYTES"
API_KEY = "SCORING_API_KEY"
API_KEY_SECONDARY = "SCORING_API_KEY_SECONDARY"
COLLECT = "SCORING_COLLECT"
COLLECT_DIR = "SCORING_COLLECT_DIR"
REQUEST_LOG = "SCORING_REQUEST_LOG"
REQUEST_LOG_MODES = ("rejected", "all")

# Set by Azure ML when a deployment has a data collector; the monitoring SDK reads them.
AZUREML_MDC_CONFIG_PATH = "AZUREML_MDC_CONFIG_PATH"
AZUREML_MDC_ENABLED = "AZUREML_MDC_ENABLED"

MIN_KEY_LENGTH = 16
MAX_ROWS_LIMIT = 1_000_000
# The Azure ML endpoint router rejects bodies over 100 MB anyway.
MAX_BODY_BYTES_LIMIT = 100 * 1024 * 1024

# (name, default, meaning): the table in docs/scoring.md.
VARIABLES: tuple[tuple[str, str, str], ...] = (
    (MAX_ROWS, str(DEFAULT_MAX_ROWS), "most rows one request may carry (more: 413)"),
    (MAX_BODY_BYTES, str(DEFAULT_MAX_BODY_BYTES), "largest request body in bytes (more: 413)"),
    (API_KEY, "unset", "key clients must send as `Authorization: Bearer <key>` (unset: no check)"),
    (API_KEY_SECONDARY, "unset", "second accepted key, for rotation without downtime"),
    (
        COLLECT,
        "auto",
        "collect model inputs/outputs: `true`, `false`, or `auto` (on when a data collector "
        "is configured or SCORING_COLLECT_DIR is set)",
    ),
    (COLLECT_DIR, "unset", "write collected rows as JSON lines under this directory (local runs)"),
    (
        REQUEST_LOG,
        "rejected",
        "which requests get a log line of their own: `rejected` (every 4xx, with its reason) or "
        "`all` (every request, with its id, rows and time)",
    ),
    ("MODEL_SHA256", "unset", "registered bundle digest; the bundle must match it or init fails"),
    ("AZUREML_MODEL_DIR", "set by Azure ML", "folder holding the model bundle"),
)


class SettingsError(ValueError):
    """An environment variable holds a value the scoring script cannot use."""


@dataclass(frozen=True)
class ScoringSettings:
    """What the scoring script enforces; read once per worker in init()."""

    max_rows: int = DEFAULT_MAX_ROWS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # Keys as bytes for hmac.compare_digest; repr=False keeps them out of logs and tracebacks.
    api_keys: tuple[bytes, ...] = field(default=(), repr=False)
    collect: bool = False
    collect_dir: Path | None = None
    log_all_requests: bool = False

    @property
    def auth_enabled(self) -> bool:
        """Whether requests must carry one of the configured keys."""
        return bool(self.api_keys)


def _int_setting(env: Mapping[str, str], name: str, default: int, upper: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None
    if not 1 <= value <= upper:
        raise SettingsError(f"{name}={value} is out of range; use 1..{upper}")
    return value


def _keys(env: Mapping[str, str]) -> tuple[bytes, ...]:
    keys = []
    for name in (API_KEY, API_KEY_SECONDARY):
        value = env.get(name, "").strip()
        if not value:
            continue
        if len(value) < MIN_KEY_LENGTH:
            # The value itself is never echoed: only its length.
            raise SettingsError(
                f"{name} is {len(value)} characters long; use a random key of at least "
                f"{MIN_KEY_LENGTH}"
            )
        keys.append(value.encode("utf-8"))
    return tuple(keys)


def _collect(env: Mapping[str, str], collect_dir: Path | None) -> bool:
    mode = env.get(COLLECT, "auto").strip().lower() or "auto"
    if mode in ("true", "1", "yes", "on"):
        return True
    if mode in ("false", "0", "no", "off"):
        return False
    if mode != "auto":
        raise SettingsError(f"{COLLECT}={mode!r} is not one of auto, true, false")
    return (
        collect_dir is not None
        or bool(env.get(AZUREML_MDC_CONFIG_PATH))
        or env.get(AZUREML_MDC_ENABLED, "").lower() == "true"
    )


def _log_all_requests(env: Mapping[str, str]) -> bool:
    mode = env.get(REQUEST_LOG, "").strip().lower() or REQUEST_LOG_MODES[0]
    if mode not in REQUEST_LOG_MODES:
        raise SettingsError(f"{REQUEST_LOG}={mode!r} is not one of {', '.join(REQUEST_LOG_MODES)}")
    return mode == "all"


def load_settings(environ: Mapping[str, str] | None = None) -> ScoringSettings:
    """Read the settings from the environment (or the mapping given); raise SettingsError."""
    env = os.environ if environ is None else environ
    raw_dir = env.get(COLLECT_DIR, "").strip()
    collect_dir = Path(raw_dir) if raw_dir else None
    return ScoringSettings(
        max_rows=_int_setting(env, MAX_ROWS, DEFAULT_MAX_ROWS, MAX_ROWS_LIMIT),
        max_body_bytes=_int_setting(
            env, MAX_BODY_BYTES, DEFAULT_MAX_BODY_BYTES, MAX_BODY_BYTES_LIMIT
        ),
        api_keys=_keys(env),
        collect=_collect(env, collect_dir),
        collect_dir=collect_dir,
        log_all_requests=_log_all_requests(env),
    )
