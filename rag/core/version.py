"""The library's version, recorded in every checkpoint and manifest it writes."""

from __future__ import annotations

__version__ = "0.1.0"
