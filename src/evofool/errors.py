"""The one exception type whose message is shown to the user as is, without a traceback."""

from __future__ import annotations


class EvofoolError(Exception):
    """A problem the user can fix: the message names it and says what to do."""
