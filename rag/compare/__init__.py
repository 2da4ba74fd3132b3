"""Temporal comparison: a study against the patient's prior one.

``rag.compare(current, prior=None)`` (this package is callable) returns a
:class:`~rag.compare.result.Comparison`; :class:`~rag.compare.comparer.Comparer` compares many studies
without reloading. See :mod:`rag.compare.comparer`.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

from rag.core.lazy import lazy_exports

if TYPE_CHECKING:
    from rag.compare.calls import ChangeModel
    from rag.compare.comparer import Comparer, compare
    from rag.compare.prior import find_prior
    from rag.compare.result import Comparison

_LAZY = {
    "ChangeModel": "rag.compare.calls",
    "Comparer": "rag.compare.comparer",
    "compare": "rag.compare.comparer",
    "find_prior": "rag.compare.prior",
    "Comparison": "rag.compare.result",
}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())

__all__ = ["ChangeModel", "Comparer", "Comparison", "compare", "find_prior"]


class _CallableModule(ModuleType):
    """``rag.compare(...)`` calls :func:`rag.compare.comparer.compare`; the package stays importable."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from rag.compare.comparer import compare as _compare

        return _compare(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
