"""The section x view weight table of view-informed retrieval, as a plain file a person can edit.

Rows are the 15 anatomical report sections (``ECHO_SECTIONS``), columns the 11 coarse views
(``COARSE_VIEWS``). A weight says how much a clip of that view tells about that section; only the
ratios inside a row matter (each section embedding is normalised), so rows are usually scaled to a
maximum of 1.

Two file formats, chosen by the suffix:

- YAML (``.yaml`` / ``.yml``), one line per section::

      Left Ventricle: {A2C: 1.0, A3C: 1.0, A4C: 1.0, Parasternal_Long: 1.0}
      IVC: {Subcostal: 1.0}

  A view left out of a row weighs 0.
- CSV (``.csv``): a ``section`` column, then one column per view; an empty cell weighs 0.

Every one of the 15 sections must have a row (an empty mapping ``{}`` is allowed and means the
section never has evidence). Unknown section or view names, negative, non-numeric or non-finite
weights are refused with an error that names them and the allowed ones.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.core.errors import ViewWeightsError
from rag.core.lookup import did_you_mean
from rag.vocab.sections import ECHO_SECTIONS
from rag.vocab.views import COARSE_VIEWS

__all__ = ["ViewWeights"]

_YAML_SUFFIXES = (".yaml", ".yml")
_CSV_SUFFIXES = (".csv",)


def _as_weight(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ViewWeightsError(f"{where}: weight {value!r} is not a number; use a number >= 0 such as 0.5")
    weight = float(value)
    if not math.isfinite(weight):
        raise ViewWeightsError(f"{where}: weight {value!r} is not finite; use a number >= 0 such as 0.5")
    if weight < 0:
        raise ViewWeightsError(f"{where}: weight {weight:g} is negative; weights must be >= 0 (0 = view ignored)")
    return weight


@dataclass(frozen=True, eq=False)
class ViewWeights:
    """A section x view weight table.

    Attributes:
        matrix: (15, 11) float64, >= 0; row ``i`` is ``sections[i]``, column ``j`` is ``views[j]``.
        sections: the row names, ``ECHO_SECTIONS``.
        views: the column names, ``COARSE_VIEWS``.
        name: a short label for logs and results ("default", "uniform", a file name, ...).
    """

    matrix: np.ndarray
    name: str = "custom"
    sections: tuple[str, ...] = field(default=ECHO_SECTIONS)
    views: tuple[str, ...] = field(default=COARSE_VIEWS)

    def __post_init__(self) -> None:
        if tuple(self.sections) != ECHO_SECTIONS:
            raise ViewWeightsError(f"sections must be ECHO_SECTIONS in order: {list(ECHO_SECTIONS)}")
        if tuple(self.views) != COARSE_VIEWS:
            raise ViewWeightsError(f"views must be COARSE_VIEWS in order: {list(COARSE_VIEWS)}")
        matrix = np.array(self.matrix, dtype=np.float64)
        shape = (len(ECHO_SECTIONS), len(COARSE_VIEWS))
        if matrix.shape != shape:
            raise ViewWeightsError(f"the weight matrix has shape {matrix.shape}; expected {shape} (sections x views)")
        if not np.all(np.isfinite(matrix)):
            raise ViewWeightsError("the weight matrix holds NaN or infinite values; weights must be finite and >= 0")
        if np.any(matrix < 0):
            bad = [
                f"{ECHO_SECTIONS[i]}/{COARSE_VIEWS[j]}={matrix[i, j]:g}"
                for i, j in zip(*np.nonzero(matrix < 0), strict=True)
            ]
            raise ViewWeightsError(f"negative weights are refused: {bad}; weights must be >= 0 (0 = view ignored)")
        matrix.setflags(write=False)
        object.__setattr__(self, "matrix", matrix)

    # -- constructors ---------------------------------------------------------------------------

    @classmethod
    def default(cls) -> ViewWeights:
        """The default table of :func:`rag.vocab.view_sections.default_weights`."""
        from rag.vocab.view_sections import default_weights

        return cls.from_mapping(default_weights(), name="default")

    @classmethod
    def uniform(cls) -> ViewWeights:
        """Every view weighs 1 for every section (a plain mean of the study's clips)."""
        return cls(np.ones((len(ECHO_SECTIONS), len(COARSE_VIEWS))), name="uniform")

    @classmethod
    def from_mapping(
        cls, table: Mapping[str, Mapping[str, Any] | None], *, name: str = "custom", source: str = "table"
    ) -> ViewWeights:
        """Build from ``{section: {view: weight}}``; a view left out weighs 0, every section must be present.

        Raises:
            ViewWeightsError: an unknown or missing section, an unknown view, a bad weight.
        """
        if not isinstance(table, Mapping):
            raise ViewWeightsError(
                f"{source}: expected a mapping of section -> {{view: weight}}, got {type(table).__name__}"
            )
        unknown = [str(s) for s in table if s not in ECHO_SECTIONS]
        if unknown:
            hints = "".join(did_you_mean(str(s), ECHO_SECTIONS) for s in unknown[:1])
            raise ViewWeightsError(
                f"{source}: unknown section name(s) {unknown}{hints}; allowed sections: {list(ECHO_SECTIONS)}"
            )
        missing = [s for s in ECHO_SECTIONS if s not in table]
        if missing:
            raise ViewWeightsError(
                f"{source}: section(s) {missing} have no row; give every section a row "
                "(an empty row {} means the section is never informed by any view)"
            )
        matrix = np.zeros((len(ECHO_SECTIONS), len(COARSE_VIEWS)))
        for i, section in enumerate(ECHO_SECTIONS):
            row = table[section]
            if row is None:
                continue
            if not isinstance(row, Mapping):
                raise ViewWeightsError(f"{source}: the row of '{section}' must map view names to weights, got {row!r}")
            bad_views = [str(v) for v in row if v not in COARSE_VIEWS]
            if bad_views:
                hints = "".join(did_you_mean(str(v), COARSE_VIEWS) for v in bad_views[:1])
                raise ViewWeightsError(
                    f"{source}: unknown view name(s) {bad_views} in section '{section}'{hints}; "
                    f"allowed views: {list(COARSE_VIEWS)}"
                )
            for view, value in row.items():
                matrix[i, COARSE_VIEWS.index(view)] = _as_weight(value, f"{source}: {section}/{view}")
        return cls(matrix, name=name)

    @classmethod
    def from_spec(cls, spec: str | Path) -> ViewWeights:
        """``"default"``, ``"uniform"`` or the path of a weight file (.yaml/.csv)."""
        if str(spec) == "default":
            return cls.default()
        if str(spec) == "uniform":
            return cls.uniform()
        return cls.load(Path(spec))

    @classmethod
    def load(cls, path: Path | str) -> ViewWeights:
        """Read a YAML or CSV weight file (see the module docstring).

        Raises:
            ViewWeightsError: the file is missing, of an unknown type, or malformed.
        """
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in _YAML_SUFFIXES + _CSV_SUFFIXES:
            raise ViewWeightsError(f"{path}: unknown weight file type '{path.suffix}'; use .yaml, .yml or .csv")
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise ViewWeightsError(f"cannot read the view weight file {path}: {e.strerror or e}") from e
        if suffix in _CSV_SUFFIXES:
            return cls._from_csv(text, path)
        import yaml

        try:
            table = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ViewWeightsError(f"{path}: not valid YAML: {e}") from e
        return cls.from_mapping(table if table is not None else {}, name=path.name, source=str(path))

    @classmethod
    def _from_csv(cls, text: str, path: Path) -> ViewWeights:
        rows = list(csv.reader(io.StringIO(text)))
        rows = [r for r in rows if any(cell.strip() for cell in r)]
        if not rows or not rows[0] or rows[0][0].strip().lower() != "section":
            raise ViewWeightsError(f"{path}: the first row must be 'section,' followed by view names")
        views = [v.strip() for v in rows[0][1:]]
        table: dict[str, dict[str, Any]] = {}
        for line, row in enumerate(rows[1:], start=2):
            if len(row) > len(views) + 1:
                raise ViewWeightsError(f"{path}: line {line} has {len(row) - 1} weights for {len(views)} views")
            section = row[0].strip()
            if section in table:
                raise ViewWeightsError(f"{path}: section '{section}' appears twice (line {line})")
            cells: dict[str, Any] = {}
            for view, cell in zip(views, row[1:], strict=False):
                if not cell.strip():
                    continue
                try:
                    cells[view] = float(cell)
                except ValueError:
                    raise ViewWeightsError(
                        f"{path}: line {line}, {section}/{view}: weight {cell!r} is not a number"
                    ) from None
            table[section] = cells
        bad_views = [v for v in views if v not in COARSE_VIEWS]
        if bad_views:
            hints = "".join(did_you_mean(v, COARSE_VIEWS) for v in bad_views[:1])
            raise ViewWeightsError(
                f"{path}: unknown view column(s) {bad_views}{hints}; allowed views: {list(COARSE_VIEWS)}"
            )
        return cls.from_mapping(table, name=path.name, source=str(path))

    # -- output -----------------------------------------------------------------------------------

    def to_mapping(self, *, keep_zeros: bool = False) -> dict[str, dict[str, float]]:
        """``{section: {view: weight}}`` in table order (zero weights left out unless ``keep_zeros``)."""
        return {
            s: {v: float(self.matrix[i, j]) for j, v in enumerate(COARSE_VIEWS) if keep_zeros or self.matrix[i, j] != 0}
            for i, s in enumerate(ECHO_SECTIONS)
        }

    def dumps(self, *, fmt: str = "yaml", header: Sequence[str] = ()) -> str:
        """The table as YAML (one line per section) or CSV text; ``header`` lines become comments (YAML only)."""
        if fmt == "csv":
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")
            writer.writerow(["section", *COARSE_VIEWS])
            for i, section in enumerate(ECHO_SECTIONS):
                writer.writerow([section, *(repr(float(w)) for w in self.matrix[i])])
            return buf.getvalue()
        if fmt != "yaml":
            raise ViewWeightsError(f"unknown format {fmt!r}; use 'yaml' or 'csv'")
        lines = [f"# {h}" if h else "#" for h in header]
        lines += [
            "# Section x view weights for view-informed study embeddings (rag.retrieve.weights).",
            "# Rows: the 15 report sections; a view left out of a row weighs 0; weights must be >= 0.",
            f"# Views: {', '.join(COARSE_VIEWS)}",
        ]
        for section, row in self.to_mapping().items():
            cells = ", ".join(f"{view}: {weight!r}" for view, weight in row.items())
            lines.append(f"{section}: {{{cells}}}")
        return "\n".join(lines) + "\n"

    def save(self, path: Path | str, *, header: Sequence[str] = ()) -> Path:
        """Write the table to ``path`` (YAML or CSV by suffix); returns the path."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in _YAML_SUFFIXES + _CSV_SUFFIXES:
            raise ViewWeightsError(f"{path}: unknown weight file type '{path.suffix}'; use .yaml, .yml or .csv")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.dumps(fmt="csv" if suffix in _CSV_SUFFIXES else "yaml", header=header), encoding="utf-8")
        return path

    # -- use --------------------------------------------------------------------------------------

    def columns_for(self, views: Sequence[str]) -> np.ndarray:
        """The table with its columns in the order of ``views`` (e.g. a model's view classes).

        Returns: (15, len(views)) float64.

        Raises:
            ViewWeightsError: ``views`` names a view the table does not know.
        """
        unknown = [v for v in views if v not in COARSE_VIEWS]
        if unknown:
            raise ViewWeightsError(
                f"the view classes {unknown} have no column in the weight table; allowed views: {list(COARSE_VIEWS)}"
            )
        return self.matrix[:, [COARSE_VIEWS.index(v) for v in views]]

    def row(self, section: str) -> np.ndarray:
        """The weights of one section. Returns: (11,) float64 in ``COARSE_VIEWS`` order."""
        if section not in ECHO_SECTIONS:
            hint = did_you_mean(section, ECHO_SECTIONS)
            raise ViewWeightsError(f"unknown section '{section}'{hint}; allowed sections: {list(ECHO_SECTIONS)}")
        return np.asarray(self.matrix[ECHO_SECTIONS.index(section)])

    @property
    def fingerprint(self) -> str:
        """A short digest of the values (12 hex digits), to record which table produced a result."""
        return hashlib.sha256(np.ascontiguousarray(self.matrix, dtype="<f8").tobytes()).hexdigest()[:12]

    def with_name(self, name: str) -> ViewWeights:
        return ViewWeights(self.matrix, name=name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ViewWeights) and np.array_equal(self.matrix, other.matrix)

    def __hash__(self) -> int:
        return hash(self.fingerprint)
