"""Progress as plain lines, for runs whose output is not a terminal (a log file, CI, a pipe).

A progress bar needs a terminal; without one a folder run of 5,000 images printed nothing
for minutes, and whoever watched the log could not tell a slow run from a hung one. So,
every few seconds, one line says how far the run got and about how long is left. Only the
pacing and the wording live here; the caller decides where the line goes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

#: Seconds between two lines: often enough to see a run move, rare enough for a long log.
EVERY_SECONDS = 5.0


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 5 s``, ``2 h 10 min``: a reader's units, not a count of seconds."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


class ProgressLines:
    """An ``on_done`` callback that calls ``say`` with a progress line at most every
    ``every`` seconds (:data:`EVERY_SECONDS` by default).

    The last job says nothing: the run's own summary line follows at once.
    """

    def __init__(
        self,
        total: int,
        say: Callable[[str], None],
        *,
        what: str = "harmonizing",
        every: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.done = 0
        self._say = say
        self._what = what
        self._every = EVERY_SECONDS if every is None else every
        self._clock = clock
        self._started = self._last = clock()

    def advance(self, _job: object = None) -> None:
        """Count one finished job (done, skipped or failed) and maybe say where the run is."""
        self.done += 1
        now = self._clock()
        if self.done >= self.total or now - self._last < self._every:
            return
        self._last = now
        self._say(self.line(now - self._started))

    def line(self, elapsed: float) -> str:
        percent = 100 * self.done // max(self.total, 1)
        text = f"{self._what}: {self.done} of {self.total} ({percent}%) in {duration(elapsed)}"
        if self.done and elapsed > 0:
            left = (self.total - self.done) * elapsed / self.done
            text += f", about {duration(left)} left"
        return text
