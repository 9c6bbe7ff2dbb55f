"""Errors raised by the analyzers.

Every analyzer raises a subclass of :class:`AnalysisError` (itself a :class:`ValueError`) for
input it cannot analyse, so callers may catch either ``ValueError`` or the specific class.
"""

from __future__ import annotations

__all__ = ["AnalysisError", "InsufficientDataError", "InvalidInputError"]


class AnalysisError(ValueError):
    """Base class of every error an analyzer raises on purpose."""


class InvalidInputError(AnalysisError):
    """The input is malformed: wrong shape, non-finite values, unsorted timestamps, bad option."""


class InsufficientDataError(AnalysisError):
    """The input is well formed but too short (or too constant) for the analysis asked for."""
