"""Errors raised by boundlab."""

from __future__ import annotations


class ValidationError(ValueError):
    """Bad input to a boundlab function.

    The message names the offending array and, where it applies, the row
    (layer ``t`` is 0-based in messages, as in the Python arrays), so the user
    can find the problem without a debugger.
    """
