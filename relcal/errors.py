"""The one error type for user mistakes, and the warning for lesser problems.

Every problem caused by the user's input (a file that cannot be read, a label
out of range, an option that makes no sense) raises :class:`RelcalError` or a
subclass.  The CLI turns it into ``Error: <message>`` on stderr and exit code 2,
without a traceback.  Anything else that escapes is a bug in relcal.

Messages are one line and name the input, the rule and the offending value,
e.g. ``labels: 3 values outside [0, 9] (first: 12 at row 40)``.
"""

from __future__ import annotations

import re

# control characters, and the other characters str.splitlines() breaks at
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str) -> str:
    """``text`` with its control characters (newlines, NUL, escape sequences,
    line separators) escaped as in a Python literal: a message that quotes a
    user's string (a file or class name) stays one line and cannot drive the
    terminal.

    >>> one_line("a\\nb")
    'a\\\\nb'
    """
    return _UNPRINTABLE.sub(
        lambda m: m.group().encode("unicode_escape").decode("ascii"), text
    )


class RelcalError(Exception):
    """A problem with the user's input or options (exit code 2 in the CLI)."""

    def __init__(self, message: str, *, source: str | None = None) -> None:
        self.message = message
        self.source = source
        super().__init__(self.__str__())

    def with_source(self, source: str) -> RelcalError:
        """Return the same error, naming the file (or input) it came from."""
        if self.source is not None:
            return self
        err = type(self)(self.message, source=source)
        return err

    def __str__(self) -> str:
        if self.source:
            return one_line(f"{self.source}: {self.message}")
        return one_line(self.message)


class InputError(RelcalError):
    """The input's values are invalid (NaN, labels out of range, …)."""


class ShapeError(RelcalError):
    """The input's arrays have shapes that do not fit together."""


class ScoresKindError(InputError):
    """Scores that are neither clearly probabilities nor clearly logits: every
    value in [0, 1], but the rows do not sum to 1 (``kind="auto"``).

    ``problem`` says which rows do not sum to 1, so that a loader can say the
    same in its own words (a table names its columns)."""

    def __init__(
        self, message: str, *, source: str | None = None, problem: str = ""
    ) -> None:
        self.problem = problem
        super().__init__(message, source=source)

    def with_source(self, source: str) -> RelcalError:
        if self.source is not None:
            return self
        return ScoresKindError(self.message, source=source, problem=self.problem)


class FormatError(RelcalError):
    """A file cannot be read, or does not hold what relcal needs."""


class UnsupportedMetricError(RelcalError):
    """The input cannot give this metric (e.g. NLL from top-label-only data)."""


class RelcalWarning(UserWarning):
    """A lesser problem that does not stop the computation."""
