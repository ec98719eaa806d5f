"""SIGTERM, SIGHUP and SIGINT during a service run: the run stops where it is, its `finally`
blocks kill its member processes and remove its staging folder, and it still writes a `failed`
metrics line naming the signal and exits with 128 + the signal's number.

Interrupted is a BaseException, like KeyboardInterrupt, so that no `except Exception` on the
way (a refresh that never fails a run, a forecast store that only warns) swallows it.
"""

import os
import signal
import threading
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


class Interrupted(BaseException):  # noqa: N818 (a stop, like KeyboardInterrupt, not an error)
    def __init__(self, signum: int):
        name = signal.Signals(signum).name
        super().__init__(
            f"interrupted by {name}: the run stopped, its member processes were killed and "
            "nothing was published; run it again when ready"
        )
        self.exit_code = 128 + signum


class Interrupts:
    """While `armed`, a stop signal raises Interrupted in the run's main thread (once); outside
    it the signal waits in `pending` until the run's metrics line is written."""

    def __init__(self):
        self._owner = os.getpid()
        self._armed = False
        self.pending: int | None = None

    def _handle(self, signum, frame):
        if os.getpid() != self._owner:  # a forked member process: stop at once, the run reports
            os._exit(128 + signum)
        if self._armed:
            self._armed = False
            raise Interrupted(signum)
        self.pending = self.pending or signum

    @contextmanager
    def armed(self):
        self._armed = True
        try:
            yield
        finally:
            self._armed = False


@contextmanager
def stop_on_signals():
    """Handle the stop signals for one run (in the main thread only: Python delivers signals
    there); a signal that came while disarmed is sent again once the previous handlers are
    back, so it still ends the process after the run's line is written."""
    state = Interrupts()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return
    previous = {signum: signal.signal(signum, state._handle) for signum in STOP_SIGNALS}
    try:
        yield state
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        if state.pending:
            os.kill(os.getpid(), state.pending)
