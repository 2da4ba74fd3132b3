"""``draft_report``: a stored study or a folder of DICOMs in, a :class:`Report` with provenance out.

A :class:`Drafter` loads the encoder checkpoint, its embeddings, the case retriever, the neighbour
voter and the knowledge base once, then drafts any number of studies. A folder of DICOMs is
ingested (de-identified, stored) and embedded on the fly, then drafted like a stored study.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from rag.core.errors import RagError
from rag.draft.context import gather_context
from rag.generate.context import DraftContext, KBSearcher
from rag.generate.extractive import ExtractiveGenerator
from rag.generate.protocol import Generator
from rag.generate.report import Report

if TYPE_CHECKING:
    from rag.core.config import RagConfig
    from rag.encoders.model import EchoEncoder
    from rag.ingest.outcome import ItemOutcome
    from rag.retrieve import CaseRetriever, NeighbourVoter, ViewWeights
    from rag.store import Store

__all__ = ["Drafter", "DraftingError", "draft_report"]

log = logging.getLogger(__name__)

GeneratorName = Literal["extractive", "openai"]
WEIGHTS_FILE = "view-weights.yaml"


class DraftingError(RagError):
    """A draft cannot be made (no checkpoint, no embeddings, nothing ingested from a folder)."""


def default_checkpoint(home: Path) -> Path:
    """The workspace's trained encoder: ``<workspace>/checkpoints/last.pt``."""
    return home / "checkpoints" / "last.pt"


class Drafter:
    """Drafts reports from one workspace (store, encoder checkpoint, embeddings, KB).

    Args:
        config: the configuration (default: :func:`rag.core.config.load_config`).
        checkpoint: encoder checkpoint (default ``<workspace>/checkpoints/last.pt``).
        weights: the section x view table: "default", "uniform" or a file; default: the workspace's
            learned ``view-weights.yaml`` when present, else the default table.
        k: retrieved report sections per section.
        vote_k: neighbours per section in the measurement and finding votes.
        kb: knowledge base; default: the workspace's ``kb/`` folder when it holds one, else none.
        kb_k: knowledge passages per section.
        device: torch device for embedding new studies.
        library: the case library to open (default ``<workspace>/indexes/library``, written by
            ``rag index library`` or ``rag demo``).
    """

    def __init__(
        self,
        config: RagConfig | None = None,
        *,
        checkpoint: Path | None = None,
        weights: str | Path | None = None,
        k: int = 5,
        vote_k: int = 50,
        kb: KBSearcher | Literal["auto"] | None = "auto",
        kb_k: int = 2,
        device: str = "cpu",
        library: Path | None = None,
    ) -> None:
        from rag.core.config import load_config
        from rag.encoders.embed import embeddings_dir
        from rag.store import open_store

        self.config = config if config is not None else load_config()
        self.checkpoint = Path(checkpoint) if checkpoint is not None else default_checkpoint(self.config.home)
        if not self.checkpoint.is_file():
            raise DraftingError(
                f"no encoder checkpoint at '{self.checkpoint}': train one (`rag train --out "
                f"{self.checkpoint.parent}`) or pass --checkpoint"
            )
        self.k = k
        self.vote_k = vote_k
        self.kb_k = kb_k
        self.device = device
        self._model: EchoEncoder | None = None
        self._encoder_name: str | None = None
        self.store: Store = open_store(self.config.db_url)
        self.weights_spec = weights
        self.kb: KBSearcher | None = self._open_kb() if kb == "auto" else kb
        self._retriever: CaseRetriever | None = None
        self._voter: NeighbourVoter | None = None
        from rag.core.digest import file_sha256
        from rag.index.library import LIBRARY_DIR

        self.library_dir = Path(library) if library is not None else self.config.indexes_dir / LIBRARY_DIR
        self.sha256 = file_sha256(self.checkpoint)
        self._encoder_name = self._encoder_of_checkpoint()
        self.embeddings = embeddings_dir(self.config.home / "embeddings", self._encoder_name, self.sha256)

    def _encoder_of_checkpoint(self) -> str:
        """The checkpoint's encoder name: from the case library's manifest when it was built from this very
        checkpoint (no torch import), else from the checkpoint itself."""
        from rag.index.library import CaseLibrary

        if (self.library_dir / "manifest.json").is_file():
            manifest = CaseLibrary.read_manifest(self.library_dir)
            if manifest.checkpoint_sha256 == self.sha256:
                return manifest.encoder
        from rag.encoders.checkpoint import read_checkpoint

        return str(read_checkpoint(self.checkpoint)["spec"]["name"])

    # -- loading ----------------------------------------------------------------------------------

    def _open_kb(self) -> KBSearcher | None:
        folder = self.config.home / "kb"
        if not (folder / "manifest.json").is_file():
            return None
        from rag.kb import KnowledgeBase

        kb: KBSearcher = KnowledgeBase.open(folder)
        return kb

    @property
    def model(self) -> EchoEncoder:
        """The encoder (loaded on first use: only new studies need it)."""
        if self._model is None:
            from rag.encoders import load_checkpoint

            self._model, _ = load_checkpoint(self.checkpoint, device=self.device)
        return self._model

    def _weights(self) -> ViewWeights:
        from rag.retrieve import ViewWeights

        if self.weights_spec is not None:
            return ViewWeights.from_spec(self.weights_spec)
        learned = self.config.home / WEIGHTS_FILE
        return ViewWeights.load(learned) if learned.is_file() else ViewWeights.default()

    @property
    def retriever(self) -> CaseRetriever:
        """The retriever over the case library (opened, never rebuilt: ``rag index library`` builds it)."""
        if self._retriever is None:
            self._retriever = self._open_retriever()
        return self._retriever

    def _open_retriever(self) -> CaseRetriever:
        from rag.index.library import CaseLibrary
        from rag.retrieve import CaseRetriever

        if not (self.library_dir / "manifest.json").is_file():
            hint = (
                f"run `rag embed --checkpoint {self.checkpoint}`, then `rag index library`"
                if not (self.embeddings / "manifest.json").is_file()
                else "run `rag index library`"
            )
            raise DraftingError(f"no case library at '{self.library_dir}': {hint}")
        library = CaseLibrary.open(
            self.library_dir, encoder=self._encoder_name, checkpoint_sha256=self.sha256, store=self.store
        )
        return CaseRetriever(self.store, weights=self._weights(), library=library).warm_up()

    def reopen(self) -> None:
        """Open the case library afresh, after another process added studies to it; the retriever open
        now stays in use until the new one is ready, and stays if the new one cannot be opened.

        Raises:
            RagError: the library cannot be opened now (e.g. the store holds studies it does not yet).
        """
        retriever = self._open_retriever()
        self._retriever, self._voter = retriever, None

    @property
    def voter(self) -> NeighbourVoter:
        if self._voter is None:
            from rag.retrieve import NeighbourVoter, Thresholds, thresholds_path

            learned = self.config.home / WEIGHTS_FILE
            thresholds = None
            if self.weights_spec is None and thresholds_path(learned).is_file():
                thresholds = Thresholds.load(thresholds_path(learned))
            self._voter = NeighbourVoter(self.retriever, k=self.vote_k, thresholds=thresholds)
        return self._voter

    # -- drafting ---------------------------------------------------------------------------------

    def context(self, study_id: int, *, before_date: dt.date | None = None) -> DraftContext:
        """Everything retrieved for a stored study (cases, votes, KB passages, clips)."""
        return gather_context(
            self.retriever,
            self.voter,
            int(study_id),
            k=self.k,
            kb=self.kb,
            kb_k=self.kb_k,
            before_date=before_date,
            encoder=f"{self._encoder_name}@{self.sha256[:12]}",
        )

    def generator(self, name: GeneratorName = "extractive", *, base_url: str | None = None) -> Generator:
        """The named generator; ``openai`` talks to ``base_url`` (default: the configured ``llm.base_url``)."""
        if name == "extractive":
            return ExtractiveGenerator()
        if name == "openai":
            from rag.generate.openai import OpenAIGenerator, estimate_tokens, tokenizer_counter
            from rag.llm.client import ChatClient

            llm = self.config.llm
            client = ChatClient(base_url or llm.base_url, llm.model, api_key=llm.api_key, timeout=llm.timeout_s)
            counter = tokenizer_counter(self.config.home / llm.model_dir) or estimate_tokens
            return OpenAIGenerator(
                client,
                context_tokens=llm.context_tokens,
                max_tokens=llm.max_tokens,
                temperature=llm.temperature,
                count_tokens=counter,
            )
        raise DraftingError(f"unknown generator {name!r}; use 'extractive' or 'openai'")

    def draft(
        self,
        study: int | str | Path,
        *,
        generator: GeneratorName | Generator = "extractive",
        before_date: dt.date | None = None,
    ) -> Report:
        """Draft the report of a stored study ID, or of a folder of DICOMs (ingested and embedded first)."""
        study_id = self.resolve(study)
        gen = self.generator(generator) if isinstance(generator, str) else generator
        return gen.generate(self.context(study_id, before_date=before_date))

    def resolve(self, study: int | str | Path) -> int:
        """A stored study ID for ``study`` (an ID, or a folder/file of DICOMs to ingest and embed)."""
        if isinstance(study, int) or (isinstance(study, str) and study.isdigit()):
            study_id = int(study)
            self.retriever.catalog.study(study_id)  # raises UnknownStudyError with the reason
            return study_id
        return self._ingest(Path(study))

    def _ingest(self, path: Path) -> int:
        from rag.encoders.embed import embed_store
        from rag.ingest.pipeline import ingest

        if not path.exists():
            raise DraftingError(f"'{path}' is neither a stored study ID nor an existing folder of DICOMs")
        result = ingest([path], self.config, store=self.store)
        studies = self._studies_of(result.items)
        if not studies:
            reasons = "; ".join(f"{i.path}: {i.reason}" for i in result.items if i.reason)[:800]
            raise DraftingError(f"nothing in '{path}' could be ingested as an echo study ({reasons or 'no files'})")
        if len(studies) > 1:
            raise DraftingError(
                f"'{path}' holds {len(studies)} studies ({sorted(studies)}); draft one folder per study"
            )
        embed_store(self.store, self.config.media_dir, self.config.home / "embeddings", self.model, self.sha256)
        self._update_library()
        self._retriever = None  # reopen with the new study
        self._voter = None
        return studies[0]

    def _update_library(self) -> None:
        """Add what the store gained (the ingested study) to the case library, without a rebuild."""
        from rag.index.library import CaseLibrary

        if not (self.library_dir / "manifest.json").is_file():
            raise DraftingError(f"no case library at '{self.library_dir}': run `rag index library`")
        library = CaseLibrary.open(self.library_dir, encoder=self._encoder_name, checkpoint_sha256=self.sha256)
        library.update(self.store, self.embeddings)

    def _studies_of(self, items: Sequence[ItemOutcome]) -> list[int]:
        """The studies that ingested (or already stored, duplicate) clips and stills belong to."""
        from sqlalchemy import select

        from rag.store import Clip, Series, StillImage

        clips: set[int] = set()
        images: set[int] = set()
        for item in items:
            kind, _, row = (item.record or "").partition(":")
            if row.isdigit():
                (clips if kind == "clip" else images if kind == "image" else set()).add(int(row))
        with self.store.session() as s:
            found = set(
                s.scalars(select(Series.study_id).join(Clip, Clip.series_id == Series.id).where(Clip.id.in_(clips)))
            )
            found |= set(
                s.scalars(
                    select(Series.study_id)
                    .join(StillImage, StillImage.series_id == Series.id)
                    .where(StillImage.id.in_(images))
                )
            )
        return sorted(int(x) for x in found)


def draft_report(
    study: int | str | Path,
    *,
    config: RagConfig | None = None,
    generator: GeneratorName = "extractive",
    checkpoint: Path | None = None,
    k: int = 5,
    before_date: dt.date | None = None,
) -> Report:
    """Draft the report of ``study``: a stored study ID, or a folder of DICOMs ingested on the fly.

    Example::

        from rag import draft_report
        report = draft_report(42)
        print(report.text)
        report.measurement("lvef").value, report.measurement("lvef").neighbours[:3]

    Uses the workspace's trained encoder, its embeddings and, when present, its learned view weights
    and knowledge base. Build a :class:`Drafter` to draft many studies without reloading.
    """
    return Drafter(config, checkpoint=checkpoint, k=k).draft(study, generator=generator, before_date=before_date)
