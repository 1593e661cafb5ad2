"""Errors that the command line reports as one line, without a traceback."""

from __future__ import annotations


class AmbsError(Exception):
    """A user-facing error: bad input, a bad problem module, a bad run directory."""


class SpaceError(AmbsError, ValueError):
    """An invalid search-space declaration."""


class ProblemError(AmbsError):
    """A problem module that cannot be loaded or does not follow the contract."""


class RunDirError(AmbsError):
    """A run directory that cannot be used (another run, malformed CSV, ...)."""


class RecorderError(AmbsError):
    """Results could not be written: the search stops rather than lose them."""


class AnalysisError(AmbsError):
    """A results file that cannot be analyzed (missing, empty, not a results CSV)."""
