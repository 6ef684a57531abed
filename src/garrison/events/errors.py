"""The root error type every garrison package derives its own errors from."""

from __future__ import annotations


class GarrisonError(Exception):
    """Base class of every error garrison raises on purpose."""
