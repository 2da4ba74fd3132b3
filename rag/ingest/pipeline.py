"""``rag ingest``: walk sources, de-identify, decode in worker processes, store item by item.

Order of work:

1. discover files and classify them (DICOM, video, image, report, unknown);
2. read every DICOM header (no pixels) in this process, de-identify it and group instances by
   Study/Series Instance UID; duplicates of stored instances are settled here, before any decoding;
3. decode, mask, sample and encode new media in worker processes (or in-process for one worker);
4. write each item in its own transaction (file first, atomically; row second);
5. attach reports to their study (``StudyInstanceUID:`` line, or the one study of their folder) and
   scrub them (`rag.ingest.scrub.scrub_report_text`).

A failing item is reported with a one-line reason and the batch goes on.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import secrets
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from rag.core.clipfile import sweep_orphans, write_atomic
from rag.core.config import RagConfig
from rag.core.errors import DeidentificationError, IngestError, RagError
from rag.ingest.deid import Pseudonymizer, deidentify, header_to_json
from rag.ingest.discover import SourceFile, SourceKind, discover
from rag.ingest.outcome import IngestReport, ItemOutcome
from rag.ingest.prepare import (
    PreparedMedia,
    pixel_data_sha256,
    prepare_dicom,
    prepare_image,
    prepare_video,
    read_dicom,
    sha256_file,
)
from rag.ingest.reports import ReportLinker, ingest_report_file
from rag.ingest.writer import (
    MediaTarget,
    SeriesKey,
    StudyKey,
    existing_content,
    referenced_paths,
    remember_identifier_hashes,
    store_media,
)
from rag.store import Store, open_store

log = logging.getLogger(__name__)

KEY_FILE = ".pseudonym.key"


def resolve_key(cfg: RagConfig) -> bytes:
    """The pseudonymisation key: ``pseudonym_key``, the configured variable, or the workspace key file.

    Raises:
        DeidentificationError: no key is set and generating one is not allowed.
    """
    if cfg.pseudonym_key is not None:
        return cfg.pseudonym_key.get_secret_value().encode()
    env = os.environ.get(cfg.deid.key_env)
    if env:
        return env.encode()
    key_path = cfg.home / KEY_FILE
    if key_path.is_file():
        return key_path.read_bytes().strip()
    if not cfg.deid.allow_generated_key:
        raise DeidentificationError(
            f"No pseudonymisation key: set {cfg.deid.key_env} (or RAG_PSEUDONYM_KEY), or allow a generated "
            "workspace key with deid.allow_generated_key: true."
        )
    cfg.home.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode()
    write_atomic(key_path, key)
    key_path.chmod(0o600)
    log.info("created a pseudonymisation key file in the workspace; keep it to keep pseudonyms stable")
    return key


@dataclass
class _DicomPlan:
    """A DICOM instance whose header has been read and de-identified, awaiting decoding."""

    source: SourceFile
    target: MediaTarget


@dataclass
class _Context:
    cfg: RagConfig
    store: Store
    pz: Pseudonymizer
    report: IngestReport
    linker: ReportLinker = field(default_factory=ReportLinker)


def _outcome(src: SourceFile, status: Any, reason: str | None = None, record: str | None = None) -> ItemOutcome:
    return ItemOutcome(path=str(src.path), kind=str(src.kind), status=status, reason=reason, record=record)


def _plan_dicom(ctx: _Context, src: SourceFile) -> _DicomPlan | None:
    """Read and de-identify a DICOM header; settle duplicates. ``None`` when nothing is left to do."""
    header = read_dicom(src.path, headers_only=True)
    if "SOPInstanceUID" not in header:
        raise IngestError("the DICOM file has no SOP Instance UID (0008,0018); cannot identify the instance")
    deid = deidentify(header, ctx.pz, fallback_patient_key=f"folder:{src.path.parent.resolve()}")
    study = StudyKey(
        patient_pseudonym=deid.patient_pseudonym,
        uid_hash=deid.study_uid_hash,
        study_date=deid.study_date,
        modality=deid.modality,
        description=deid.study_description,
        identifier_hashes=deid.identifier_hashes,
    )
    ctx.linker.add_dicom(src.path, str(getattr(header, "StudyInstanceUID", "")), study)
    target = MediaTarget(
        study=study,
        series=SeriesKey(uid_hash=deid.series_uid_hash, modality=deid.modality, description=deid.series_description),
        instance_uid_hash=deid.sop_uid_hash,
        header=header_to_json(deid.dataset),
    )
    with ctx.store.session() as s:
        stored = existing_content(s, deid.sop_uid_hash)
    if stored is not None and pixel_data_sha256(read_dicom(src.path)) == stored.source_sha256:
        remember_identifier_hashes(ctx.store, study)
        ctx.report.add(_outcome(src, "duplicate", "instance already stored with the same pixels", record=stored.record))
        return None
    # New, or the same UID with other encoded bytes: decode, then compare decoded pixels when storing.
    return _DicomPlan(src, target)


def _plan_other(ctx: _Context, src: SourceFile) -> MediaTarget | None:
    """Target of a video or still: the folder's DICOM study if there is one, else a study per folder."""
    sha = sha256_file(src.path)
    instance = ctx.pz.uid(f"sha256:{sha}")
    with ctx.store.session() as s:
        stored = existing_content(s, instance)
    if stored is not None:
        ctx.report.add(_outcome(src, "duplicate", "file already stored (same content)", record=stored.record))
        return None
    study = ctx.linker.study_for_folder(src.path.parent, ctx.pz)
    series = SeriesKey(
        uid_hash=ctx.pz.uid(f"{study.uid_hash}:{src.kind}:{src.path.parent.resolve()}"),
        modality="US",
        description=f"{src.kind} export",
    )
    return MediaTarget(study=study, series=series, instance_uid_hash=instance, header=None)


Preparer = Callable[[Path, Any], PreparedMedia]
_PREPARERS: dict[SourceKind, Preparer] = {
    SourceKind.DICOM: prepare_dicom,
    SourceKind.VIDEO: prepare_video,
    SourceKind.IMAGE: prepare_image,
}


def _run_jobs(
    ctx: _Context, jobs: list[tuple[SourceFile, MediaTarget]], progress: Callable[[], None]
) -> Iterator[tuple[SourceFile, MediaTarget, PreparedMedia | BaseException]]:
    """Prepare media in-process or in a bounded pool of workers, yielding results as they finish."""
    ingest_cfg = ctx.cfg.ingest
    if ingest_cfg.workers <= 1 or len(jobs) <= 1:
        for src, target in jobs:
            try:
                yield src, target, _PREPARERS[src.kind](src.path, ingest_cfg)
            except Exception as e:  # one bad item must not end the batch; its error type is reported
                log.debug("item failed", exc_info=True)
                yield src, target, e
            progress()
        return
    pending: dict[Future[PreparedMedia], tuple[SourceFile, MediaTarget]] = {}
    todo = iter(jobs)
    with ProcessPoolExecutor(max_workers=ingest_cfg.workers) as pool:
        try:
            while True:
                while len(pending) < 2 * ingest_cfg.workers:
                    nxt = next(todo, None)
                    if nxt is None:
                        break
                    pending[pool.submit(_PREPARERS[nxt[0].kind], nxt[0].path, ingest_cfg)] = nxt
                if not pending:
                    break
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    src, target = pending.pop(fut)
                    exc = fut.exception()
                    yield src, target, exc if exc is not None else fut.result()
                    progress()
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text if isinstance(e, RagError) else f"{type(e).__name__}: {text}"


def ingest(
    paths: Iterable[str | Path],
    cfg: RagConfig,
    *,
    store: Store | None = None,
    progress: bool = False,
) -> IngestReport:
    """Ingest every file under ``paths`` into the store of ``cfg`` and return the report.

    The report is also written to ``<workspace>/ingest-reports/``. ``KeyboardInterrupt`` stops the run
    between items; what was committed stays, nothing half-written remains, and a re-run completes it.
    """
    from tqdm import tqdm

    own_store = store is None
    st = store or open_store(cfg.db_url)
    report = IngestReport()
    shift = (-cfg.deid.date_shift_max_days, -cfg.deid.date_shift_min_days)
    ctx = _Context(cfg=cfg, store=st, pz=Pseudonymizer(resolve_key(cfg), offset_range=shift), report=report)
    media_dir = cfg.media_dir
    try:
        report.swept_orphans = len(sweep_orphans(media_dir, referenced_paths(st)))
        sources = list(discover([Path(p) for p in paths], cfg.ingest.dicom_extensions))
        jobs: list[tuple[SourceFile, MediaTarget]] = []
        reports: list[SourceFile] = []
        others: list[SourceFile] = []
        for src in sources:
            if src.kind is SourceKind.UNKNOWN:
                why = "path does not exist" if not src.path.exists() else "not a DICOM, video, image or report file"
                report.add(_outcome(src, "skipped", why))
            elif src.kind is SourceKind.REPORT:
                reports.append(src)
            elif src.kind is SourceKind.DICOM:
                try:
                    plan = _plan_dicom(ctx, src)
                except Exception as e:  # reported per item; the batch goes on
                    report.add(_outcome(src, "skipped", _reason(e)))
                    continue
                if plan is not None:
                    jobs.append((plan.source, plan.target))
            else:
                others.append(src)
        for src in others:
            try:
                target = _plan_other(ctx, src)
            except Exception as e:  # reported per item; the batch goes on
                report.add(_outcome(src, "skipped", _reason(e)))
                continue
            if target is not None:
                jobs.append((src, target))
        bar = tqdm(total=len(jobs), desc="ingest", unit="item", disable=not progress)
        for src, target, result in _run_jobs(ctx, jobs, bar.update):
            if isinstance(result, BaseException):
                report.add(_outcome(src, "skipped", _reason(result)))
                continue
            _store_one(ctx, src, target, result)
        bar.close()
        for src in reports:
            try:
                report.add(ingest_report_file(src, st, ctx.pz, ctx.linker))
            except Exception as e:  # reported per item; the batch goes on
                report.add(_outcome(src, "skipped", _reason(e)))
    except KeyboardInterrupt:
        report.interrupted = True
        raise
    finally:
        report.finished_at = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
        try:
            written = report.write(cfg.reports_dir)
            log.info("ingestion report written: %s (%s)", written.name, report.summary())
        finally:
            if own_store:
                st.close()
    return report


def _store_one(ctx: _Context, src: SourceFile, target: MediaTarget, item: PreparedMedia) -> None:
    """Write one item; a duplicate inside the same batch is settled against what is now stored."""
    with ctx.store.session() as s:
        stored = existing_content(s, target.instance_uid_hash)
    if stored is not None:
        if stored.content_sha256 == item.content_sha256:
            ctx.report.add(
                _outcome(src, "duplicate", "instance already stored with the same pixels", record=stored.record)
            )
        else:
            ctx.report.add(
                _outcome(
                    src,
                    "skipped",
                    "SOP Instance UID already stored with different pixel data; kept the stored one "
                    "(check the source for a re-used UID)",
                )
            )
        return
    try:
        record = store_media(ctx.store, ctx.cfg.media_dir, target, item)
    except (SQLAlchemyError, OSError) as e:
        ctx.report.add(_outcome(src, "skipped", f"could not be stored: {_reason(e)}"))
        return
    ctx.report.add(_outcome(src, "ingested", record=record))
    log.debug("stored %s", record)


def content_key(data: bytes) -> str:
    """sha256 hex of ``data`` (used for report deduplication)."""
    return hashlib.sha256(data).hexdigest()
