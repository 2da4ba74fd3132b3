"""The retrieval tests use ``embedded_archive`` from tests/conftest.py."""

from tests.conftest import KEY, EmbeddedArchive

__all__ = ["KEY", "EmbeddedArchive"]
