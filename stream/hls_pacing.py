"""A live HLS stream's pictures released on the stream's own clock (NetworkSource, for a live playlist): FFmpeg
downloads a whole segment at once and decodes it as fast as the CPU goes, where a camera gives a picture a frame
period apart, which the live queue (newest kept) expects."""
from __future__ import annotations

from typing import Any, Callable, Iterator

from stream.console import notify
from stream.frame import now_ns


class SegmentPacer:
    """A live HLS stream's pictures released on the stream's own clock, a frame period apart as a camera's come.
    FFmpeg downloads a whole segment (2-6 s of pictures) at once and decodes it as fast as the CPU goes: the live
    queue, which keeps the newest, kept about one picture a segment (15 of 300). Each picture is now due at its
    presentation time after the first's release; it is read only once the one before has gone (FFmpeg keeps the
    segment, compressed, meanwhile), and released at its time, which is its capture time.

    No playout delay is added at the start: FFmpeg starts a live playlist three segments back, so the next segments
    are out before they are due. A picture that comes later than its time (a slow download, a segment out late)
    moves the beat by its lateness, up to `behind_ns` (a segment): later ones then come on time, the stream's
    own jitter absorbed. One later than that (a stall) means the stream fell behind by more than a segment: the
    pictures that were there already are skipped, as a live player jumps to the live edge, until one is on time
    again or had to be waited for (the newest: the beat is laid on it). So no stall builds a delay that lasts:
    the beat stays within a segment of where the stream's arrivals put it.

    `wait(seconds)` sleeps, True where a stop ended it; `clock` is the pipeline's, `tell` says a line (notify): a
    test's stand-ins."""

    def __init__(self, period_ns: int, behind_ns: int, wait: Callable[[float], bool], clock: Callable[[], int] = now_ns,
                 tell: Callable[[str], None] | None = None, name: str = "") -> None:
        self.period_ns, self.behind_ns = period_ns, behind_ns
        self._wait, self._clock, self._tell, self._name = wait, clock, tell, name
        self._base: int | None = None  # the beat: a picture of stream time t (ns) is due at _base + t
        self._last: int | None = None  # the stream time of the picture before
        self._catching_up = False  # skipping the pictures that were there already, to the newest
        self._told = False
        self.skipped = 0  # pictures never released (the index of each frame after them counts them)

    def paced(self, pictures: Iterator[tuple[Any, int]]) -> Iterator[tuple[Any, int]]:
        """(picture, capture time) as `pictures` gives them, each held until it is due, its capture time then; those
        skipped left out. Ends where `pictures` does, or at once where a stop ends a wait."""
        while True:
            asked = self._clock()
            found = next(pictures, None)
            if found is None:
                return
            picture = found[0]
            seconds = getattr(picture, "time", None)
            if seconds is None:  # nothing to pace it by: as it came
                yield found
                continue
            now = self._clock()
            due = self.due(round(seconds * 1e9), now, waited=now - asked >= self.period_ns)
            if due is None:
                self.skipped += 1
                continue
            if due > now and self._wait((due - now) / 1e9):
                return
            yield picture, due

    def due(self, stamp: int, now: int, waited: bool) -> int | None:
        """When the picture of stream time `stamp` (ns), read at `now` (`waited`: its read waited a frame period or
        more, for the network), is released; None where it is skipped."""
        if self._base is None or self._last is None or stamp <= self._last or \
                self._base + stamp - now > self.behind_ns:
            # the first, or the stream's clock went back or jumped ahead (a restart, a discontinuity): laid on it
            return self._laid(stamp, now)
        self._last = stamp
        late = now - (self._base + stamp)
        if late <= self.period_ns:  # on time (a period late at most, which counts as latency, as a paced file's)
            self._catching_up = False
            return self._base + stamp
        if self._catching_up:  # skipping to the beat; where none was there after the one before, the newest
            return self._laid(stamp, now) if waited else None
        if late <= self.behind_ns:  # later than its time by a segment at most: the beat moves with the stream
            self._base += late
            return now
        self._catching_up = True
        self._say_behind(late)
        return None

    def _laid(self, stamp: int, now: int) -> int:
        self._base, self._last, self._catching_up = now - stamp, stamp, False
        return now

    def _say_behind(self, late: int) -> None:
        if not self._told:
            self._told = True
            line = (f"network stream {self._name} fell {late / 1e9:.1f} s behind (a segment came late): the "
                    f"pictures already there are skipped to its newest, as a live player does")
            (self._tell or notify)(line)
