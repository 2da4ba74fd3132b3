"""Learning the section x view weight table from an archive.

Objective (chosen for being smooth in the weights): for a training study ``q`` and section ``s``,
the study's section embedding ``e_q(s)`` retrieves among the report sections named ``s`` of other
training patients; the objective is the expected cosine between the text retrieved and ``q``'s own
section text, with retrieval made soft by a softmax over candidates::

    f_q(s) = Σ_j softmax_j(e_q(s) · c_j / τ) · (c_j · t_q(s))

It is a smooth stand-in for "the top-1 retrieved report section says what the study's own report
says". Sections are independent (row ``s`` only changes ``e(s)``), so each row is fitted on its own
by projected gradient ascent (Adam steps, then weights clipped at 0 and the row rescaled to a
maximum of 1: only ratios within a row matter). The iterate with the best objective on held-out
patients is kept.

Reported on the held-out studies, before and after: the soft objective, the top-1 cosine (cosine of
the top-1 retrieved text to the study's own section text) and the grade agreement (the top-1
retrieved section states the same grade as the study's own section, over the findings of
:data:`rag.retrieve.voting.PHENOTYPES` read in that section).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from rag.core.errors import RetrievalError
from rag.retrieve.retriever import CaseRetriever
from rag.retrieve.weights import ViewWeights
from rag.vocab.sections import ECHO_SECTIONS
from rag.vocab.views import COARSE_VIEWS

__all__ = ["FitResult", "SectionFit", "fit_view_weights", "split_patients"]

log = logging.getLogger(__name__)

_EPS = 1e-12


def split_patients(study_patient: Mapping[int, int], fractions: Sequence[float], *, seed: int = 0) -> list[list[int]]:
    """Split studies into groups by patient (all of a patient's studies in one group).

    Args:
        study_patient: study ID -> patient ID.
        fractions: the share of patients of each group but the last, which gets the rest; groups
            come in the order given (``(0.25,)`` gives a 25 % group, then a 75 % one).
        seed: shuffling seed.

    Returns: one sorted list of study IDs per group (``len(fractions) + 1`` groups).
    """
    if any(f < 0 for f in fractions) or sum(fractions) > 1:
        raise RetrievalError(f"fractions {list(fractions)} must be >= 0 and sum to at most 1")
    patients = np.array(sorted(set(study_patient.values())), dtype=np.int64)
    rng = np.random.default_rng(seed)
    rng.shuffle(patients)
    bounds = np.floor(np.cumsum(fractions) * len(patients) + 0.5).astype(int)
    groups = np.split(patients, bounds)
    member = {int(p): g for g, chunk in enumerate(groups) for p in chunk}
    out: list[list[int]] = [[] for _ in groups]
    for study, patient in study_patient.items():
        out[member[int(patient)]].append(int(study))
    return [sorted(g) for g in out]


@dataclass(frozen=True)
class SectionFit:
    """Before/after numbers of one section's row (held-out numbers are NaN without held-out queries)."""

    section: str
    n_train: int
    n_val: int
    train_before: float
    train_after: float
    val_before: float
    val_after: float
    val_top1_cosine_before: float
    val_top1_cosine_after: float
    val_grade_agreement_before: float
    val_grade_agreement_after: float
    steps: int


@dataclass(frozen=True)
class FitResult:
    """The learned table, the starting one, and per-section numbers."""

    weights: ViewWeights
    start: ViewWeights
    sections: dict[str, SectionFit]
    n_train_studies: int
    n_val_studies: int
    temperature: float
    hard: bool
    history: dict[str, list[float]] = field(default_factory=dict)

    def _mean(self, attr: str) -> float:
        values = [getattr(f, attr) for f in self.sections.values()]
        finite = [v for v in values if np.isfinite(v)]
        return float(np.mean(finite)) if finite else float("nan")

    def summary(self) -> dict[str, float]:
        """Means over sections of the per-section numbers."""
        keys = (
            "train_before",
            "train_after",
            "val_before",
            "val_after",
            "val_top1_cosine_before",
            "val_top1_cosine_after",
            "val_grade_agreement_before",
            "val_grade_agreement_after",
        )
        return {k: self._mean(k) for k in keys}

    def lines(self) -> list[str]:
        """A readable summary (also written as comments at the top of the weight file)."""
        s = self.summary()
        out = [
            f"Learned from {self.n_train_studies} training studies, checked on {self.n_val_studies} held-out "
            f"studies (other patients); start: {self.start.name}; soft objective, tau={self.temperature:g}"
            f"{', hard views' if self.hard else ''}.",
            f"held-out soft objective {s['val_before']:.4f} -> {s['val_after']:.4f}; top-1 cosine "
            f"{s['val_top1_cosine_before']:.4f} -> {s['val_top1_cosine_after']:.4f}; grade agreement "
            f"{s['val_grade_agreement_before']:.3f} -> {s['val_grade_agreement_after']:.3f}",
        ]
        return out

    def table(self) -> str:
        """Per-section numbers as fixed-width text."""
        head = f"{'section':40s} {'train':>5s} {'val':>4s} {'val obj':>17s} {'top-1 cos':>17s} {'grade agr':>13s}"
        rows = [head]
        for f in self.sections.values():
            rows.append(
                f"{f.section:40s} {f.n_train:5d} {f.n_val:4d} {f.val_before:8.4f}>{f.val_after:<8.4f} "
                f"{f.val_top1_cosine_before:8.4f}>{f.val_top1_cosine_after:<8.4f} "
                f"{f.val_grade_agreement_before:6.3f}>{f.val_grade_agreement_after:<6.3f}"
            )
        return "\n".join(rows)


@dataclass
class _SectionData:
    """Queries (studies with clips and an own text of the section) and candidates of one section."""

    q_studies: np.ndarray  # (Q,)
    q_sections: np.ndarray  # (Q,) the query's own report section ID
    targets: np.ndarray  # (Q, D) own section text vectors
    clips: np.ndarray  # (N, D)
    probs: np.ndarray  # (N, V)
    starts: np.ndarray  # (Q,) first clip row of each query
    clip_query: np.ndarray  # (N,) query row of each clip
    cand_ids: np.ndarray  # (C,)
    cand_vectors: np.ndarray  # (C, D)
    blocked: np.ndarray  # (Q, C) bool: same patient
    gain: np.ndarray  # (Q, C) cosine between candidate and own text

    @property
    def size(self) -> int:
        return len(self.q_studies)


def _section_data(
    retriever: CaseRetriever, section: str, queries: Iterable[int], candidates: Iterable[int], hard: bool
) -> _SectionData | None:
    index = retriever.report_sections
    studies = retriever.studies
    catalog = retriever.catalog
    code = ECHO_SECTIONS.index(section)
    in_section = index.section_codes == code
    own: dict[int, int] = {}
    for row in np.nonzero(in_section)[0]:
        own.setdefault(int(index.study_ids[row]), int(row))
    q_list = [s for s in sorted(set(queries)) if s in own and s in studies]
    cand_set = np.array(sorted(set(candidates)), dtype=np.int64)
    cand_rows = np.nonzero(in_section & np.isin(index.study_ids, cand_set))[0]
    if not q_list or not len(cand_rows):
        return None
    xs, ps, starts, clip_query = [], [], [], []
    n = 0
    for qi, s in enumerate(q_list):
        _, x, p = studies.clips_of(s)
        xs.append(x)
        ps.append(p)
        starts.append(n)
        clip_query.append(np.full(len(x), qi))
        n += len(x)
    probs = np.concatenate(ps).astype(np.float64)
    if hard:
        onehot = np.zeros_like(probs)
        onehot[np.arange(len(probs)), probs.argmax(axis=1)] = 1.0
        probs = onehot
    if tuple(studies.views) != COARSE_VIEWS:  # columns in the weight table's order, absent views weigh nothing
        ordered = np.zeros((len(probs), len(COARSE_VIEWS)))
        for j, view in enumerate(studies.views):
            ordered[:, COARSE_VIEWS.index(view)] = probs[:, j]
        probs = ordered
    targets = index.vectors[[own[s] for s in q_list]].astype(np.float64)
    cand_vectors = index.vectors[cand_rows].astype(np.float64)
    q_patient = np.array([catalog.studies[s].patient_id for s in q_list])
    return _SectionData(
        q_studies=np.array(q_list, dtype=np.int64),
        q_sections=index.ids[[own[s] for s in q_list]],
        targets=targets,
        clips=np.concatenate(xs).astype(np.float64),
        probs=probs,
        starts=np.array(starts, dtype=np.int64),
        clip_query=np.concatenate(clip_query).astype(np.int64),
        cand_ids=index.ids[cand_rows],
        cand_vectors=cand_vectors,
        blocked=q_patient[:, None] == index.patient_ids[cand_rows][None, :],
        gain=targets @ cand_vectors.T,
    )


def _embed(data: _SectionData, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(unnormalised U (Q, D), norms (Q,), usable (Q,) bool) of the queries under row ``w``."""
    a = data.probs @ w
    u = np.add.reduceat(data.clips * a[:, None], data.starts, axis=0)
    norms = np.linalg.norm(u, axis=1)
    usable = (norms > _EPS) & ~data.blocked.all(axis=1)
    return u, norms, usable


def _soft_objective(data: _SectionData, w: np.ndarray, tau: float) -> tuple[float, np.ndarray]:
    """The mean soft objective over usable queries and its gradient with respect to ``w``."""
    u, norms, ok = _embed(data, w)
    if not ok.any():
        return float("nan"), np.zeros_like(w)
    e = u[ok] / norms[ok, None]
    logits = (e @ data.cand_vectors.T) / tau
    logits[data.blocked[ok]] = -np.inf
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    gain = data.gain[ok]
    f = (p * gain).sum(axis=1)
    q = len(f)
    d_logits = p * (gain - f[:, None]) / q
    d_e = (d_logits @ data.cand_vectors) / tau
    d_u = (d_e - e * (e * d_e).sum(axis=1, keepdims=True)) / norms[ok, None]
    full = np.zeros_like(u)
    full[ok] = d_u
    d_a = (data.clips * full[data.clip_query]).sum(axis=1)
    return float(f.mean()), data.probs.T @ d_a


def _hard_metrics(
    data: _SectionData, w: np.ndarray, grades: Mapping[int, Mapping[str, int]], findings: Sequence[str]
) -> tuple[float, float]:
    """(mean top-1 cosine, grade agreement) over usable queries (NaN when none)."""
    u, norms, ok = _embed(data, w)
    if not ok.any():
        return float("nan"), float("nan")
    e = u[ok] / norms[ok, None]
    sims = e @ data.cand_vectors.T
    sims[data.blocked[ok]] = -np.inf
    top = sims.argmax(axis=1)
    cosine = float(data.gain[ok][np.arange(len(top)), top].mean())
    if not findings:
        return cosine, float("nan")
    agree = [
        grades[int(data.cand_ids[t])][f] == grades[int(own)][f]
        for t, own in zip(top, data.q_sections[ok], strict=True)
        for f in findings
    ]
    return cosine, float(np.mean(agree))


def _project(w: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    w = np.clip(w, 0.0, None)
    top = w.max()
    return w / top if top > 0 else fallback


@dataclass
class _Row:
    """Fitting one section's row."""

    section: str
    start: np.ndarray
    train: _SectionData | None
    val: _SectionData | None
    grades: Mapping[int, Mapping[str, int]]
    findings: Sequence[str]
    tau: float

    def _val_objective(self, w: np.ndarray) -> float:
        return _soft_objective(self.val, w, self.tau)[0] if self.val is not None else float("nan")

    def _val_hard(self, w: np.ndarray) -> tuple[float, float]:
        if self.val is None:
            return float("nan"), float("nan")
        return _hard_metrics(self.val, w, self.grades, self.findings)

    def fit(self, steps: int, lr: float, eval_every: int) -> tuple[np.ndarray, SectionFit, list[float]]:
        """Projected Adam ascent; returns (best row, numbers, training objective per step)."""
        w0 = self.start.copy()
        n_val = 0 if self.val is None else self.val.size
        if self.train is None or w0.max() <= 0:
            nan = float("nan")
            n_train = 0 if self.train is None else self.train.size
            cos, agree = self._val_hard(w0) if w0.max() > 0 else (nan, nan)
            before = self._val_objective(w0) if w0.max() > 0 else nan
            fit = SectionFit(self.section, n_train, n_val, nan, nan, before, before, cos, cos, agree, agree, 0)
            return w0, fit, []
        w0 = _project(w0, w0)
        w, best_w, best_val = w0.copy(), w0.copy(), self._val_objective(w0)
        m, v = np.zeros_like(w), np.zeros_like(w)
        trace: list[float] = []
        for step in range(1, steps + 1):
            obj, grad = _soft_objective(self.train, w, self.tau)
            trace.append(obj)
            m = 0.9 * m + 0.1 * grad
            v = 0.999 * v + 0.001 * grad**2
            w = _project(w + lr * (m / (1 - 0.9**step)) / (np.sqrt(v / (1 - 0.999**step)) + 1e-8), w)
            if step % eval_every == 0 or step == steps:
                score = self._val_objective(w) if self.val is not None else obj
                # keep the start unless an iterate does better on held-out patients
                if np.isfinite(score) and (not np.isfinite(best_val) or score > best_val):
                    best_val, best_w = score, w.copy()
        cos_b, agree_b = self._val_hard(w0)
        cos_a, agree_a = self._val_hard(best_w)
        fit = SectionFit(
            section=self.section,
            n_train=self.train.size,
            n_val=n_val,
            train_before=_soft_objective(self.train, w0, self.tau)[0],
            train_after=_soft_objective(self.train, best_w, self.tau)[0],
            val_before=self._val_objective(w0),
            val_after=self._val_objective(best_w),
            val_top1_cosine_before=cos_b,
            val_top1_cosine_after=cos_a,
            val_grade_agreement_before=agree_b,
            val_grade_agreement_after=agree_a,
            steps=steps,
        )
        return best_w, fit, trace


def fit_view_weights(
    retriever: CaseRetriever,
    *,
    train_studies: Iterable[int] | None = None,
    val_studies: Iterable[int] | None = None,
    val_fraction: float = 0.25,
    seed: int = 0,
    start: ViewWeights | None = None,
    steps: int = 150,
    lr: float = 0.05,
    temperature: float = 0.05,
    hard: bool | None = None,
    eval_every: int = 5,
    progress: Callable[[str], None] | None = None,
) -> FitResult:
    """Learn the section x view table that makes each study's section embedding retrieve its own kind of text.

    Args:
        retriever: gives the stored vectors, the catalog and (with ``hard``) how clips are weighted.
        train_studies / val_studies: explicit splits (study IDs); default: patients split by
            ``val_fraction`` with ``seed``. Held-out queries retrieve among the sections of all other
            patients (of the retriever's candidate studies when it is restricted).
        start: the starting table (default: the retriever's).
        steps: Adam steps per section.
        lr: Adam step size (weights live in [0, 1]).
        temperature: softmax temperature of the soft retrieval.
        hard: weight clips by their most probable view only (default: as the retriever does).
        eval_every: how often (steps) the held-out objective is checked to keep the best iterate.
        progress: called with one line per section.

    Returns: the learned table (named "learned") with before/after numbers.

    Raises:
        RetrievalError: no study has both clips and report sections.
    """
    from rag.retrieve.voting import NeighbourVoter
    from rag.vocab.findings import PHENOTYPES

    hard = retriever.hard_views if hard is None else hard
    start = start if start is not None else retriever.weights
    catalog = retriever.catalog
    restricted = retriever.candidate_studies
    all_studies = list(catalog.studies) if restricted is None else [int(x) for x in restricted]
    usable = [s for s in all_studies if s in retriever.studies]
    if not usable:
        raise RetrievalError("no stored study has embedded clips; ingest and `rag embed` an archive first")
    if train_studies is None or val_studies is None:
        patient_of = {s: catalog.studies[s].patient_id for s in usable}
        held_out, training = split_patients(patient_of, (val_fraction,), seed=seed)
        train_studies = training if train_studies is None else train_studies
        val_studies = held_out if val_studies is None else val_studies
    train_list = sorted(set(train_studies))
    val_list = sorted(set(val_studies))
    overlap = {catalog.studies[s].patient_id for s in train_list} & {catalog.studies[s].patient_id for s in val_list}
    if overlap:
        raise RetrievalError(f"{len(overlap)} patients have studies in both the training and held-out splits")
    voter = NeighbourVoter(retriever)
    matrix = start.matrix.copy()
    fits: dict[str, SectionFit] = {}
    history: dict[str, list[float]] = {}
    for si, section in enumerate(ECHO_SECTIONS):
        train_data = _section_data(retriever, section, train_list, train_list, hard)
        val_data = _section_data(retriever, section, val_list, all_studies, hard) if val_list else None
        findings = [p.name for p in PHENOTYPES.values() if p.kind == "finding" and p.section == section]
        grades: dict[int, dict[str, int]] = {}
        if val_data is not None and findings:
            ids = np.concatenate([val_data.cand_ids, val_data.q_sections])
            per = {f: voter.section_grades(ids, PHENOTYPES[f]) for f in findings}
            grades = {int(i): {f: per[f][int(i)] for f in findings} for i in ids}
        row = _Row(section, start.matrix[si], train_data, val_data, grades, findings, temperature)
        matrix[si], fits[section], history[section] = row.fit(steps, lr, eval_every)
        if progress is not None:
            f = fits[section]
            progress(f"{section}: held-out objective {f.val_before:.4f} -> {f.val_after:.4f} ({f.n_train} training)")
    return FitResult(
        weights=ViewWeights(matrix, name="learned"),
        start=start,
        sections=fits,
        n_train_studies=len(train_list),
        n_val_studies=len(val_list),
        temperature=temperature,
        hard=hard,
        history=history,
    )
