"""The one error type every command raises for a problem the user can act on."""

# `--fail-on-reject`: the gate rejected the candidate (an outcome, not an error).
REJECTED_EXIT_CODE = 3


class MlopsError(Exception):
    """A failure the user can fix: the message is one sentence saying what is wrong and what to do.

    The CLI prints `details` (one line each, e.g. every failed data rule), then the message,
    without a stack trace, and exits with ``exit_code``.
    """

    def __init__(self, message: str, exit_code: int = 2, details: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.details = details
