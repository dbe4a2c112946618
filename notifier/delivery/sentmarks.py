"""Group commit of the ledger's "sent" marks: one fsync for the sends that finish together."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from notifier.delivery.ledger import Ledger, Sent
from notifier.errors import LedgerError, LedgerWriteError

__all__ = ["SentMarks"]


@dataclass(eq=False)
class _Mark:
    sent: Sent
    done: bool = False
    error: BaseException | None = None


class SentMarks:
    """Group commit of "sent" marks.

    A worker whose send succeeded calls `mark` and returns once its mark is
    committed. While one commit runs, the marks of the sends that finish
    meanwhile gather, and the next commit takes them all: one fsync for
    several, yet no mark waits for more than the commit before its own.
    """

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._cond = threading.Condition()
        self._waiting: list[_Mark] = []
        self._committing = False

    def mark(self, sent: Sent) -> None:
        mine = _Mark(sent)
        with self._cond:
            self._waiting.append(mine)
            while self._committing and not mine.done:
                self._cond.wait()
            if not mine.done:
                # Nobody is committing and ours is still waiting: commit everything waiting.
                group, self._waiting = self._waiting, []
                self._committing = True
        if not mine.done:
            try:
                self._commit(group)
            finally:
                with self._cond:
                    self._committing = False
                    self._cond.notify_all()
        if mine.error is not None:
            raise mine.error

    def _commit(self, group: list[_Mark]) -> None:
        try:
            self._ledger.mark_sent_many([m.sent for m in group])
        except LedgerWriteError as e:
            # The disk: every waiter retries its own mark (see Dispatcher._retrying).
            for m in group:
                m.error = LedgerWriteError(str(e))
        except LedgerError:
            # One bad row must not cost the others their marks: one at a time.
            for m in group:
                try:
                    self._ledger.mark_sent(m.sent.key, m.sent.channel, now=m.sent.at)
                except LedgerError as e:
                    m.error = e
        except BaseException as e:
            for m in group:
                m.error = e
            raise
        finally:
            with self._cond:
                for m in group:
                    m.done = True
