"""evofool: how easily evolutionary search fools image classifiers."""

from __future__ import annotations

__version__ = "0.1.0"
