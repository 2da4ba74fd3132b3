"""The HTTP service: similar cases, drafts and comparisons for clinicians, over the workspace's case library.

``create_app(config)`` builds the FastAPI app (OpenAPI at ``/docs`` and ``/openapi.json``); ``rag-api``
serves it (``services/api/main.py``). Every route but ``/health``, ``/ready`` and ``/metrics`` needs an
API key with the route's scope (``rag keys create``); every request that reads or changes a case
appends audit rows (key, case, action, status, time) the service cannot edit. Errors are JSON
``{"error": reason}`` and never carry a stack trace.

(No ``from __future__ import annotations`` here: FastAPI reads the route signatures, whose key
dependencies are local to :func:`create_app`, at run time.)
"""

import datetime as dt
import logging
import shutil
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Header, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response

from rag.core.config import RagConfig, load_config
from rag.core.errors import RagError, UnknownStudyError
from rag.store.access import KeyInfo, audit
from services.api.metrics import Metrics
from services.api.previews import Previews
from services.api.security import ApiError, KeyCache, RateLimiter, secret_of
from services.api.uploads import save_upload

__all__ = ["create_app"]

log = logging.getLogger(__name__)
WEB = Path(__file__).resolve().parents[1] / "web"


class Workspace:
    """The opened workspace: drafter (case library, votes), comparer and previews, loaded once."""

    def __init__(self, config: RagConfig) -> None:
        import os

        from rag.store import open_store

        # Requests run in parallel threads: one OpenMP thread per FAISS search (RAG_API_FAISS_THREADS)
        # instead of every search spinning up all cores against the others.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        import faiss

        faiss.omp_set_num_threads(int(os.environ.get("RAG_API_FAISS_THREADS", "1")))
        self.config = config
        self.store = open_store(config.db_url)
        self._lock = threading.Lock()
        self._ingesting = threading.Lock()
        self._reopening = threading.Lock()
        self._drafter: Any = None
        self._comparer: Any = None
        self._library_seen: tuple[int, int, int] | None = None  # the manifest the open library was read from
        self._retry_at = 0.0
        self.previews = Previews(config.media_dir, config.home / "cache" / "previews")

    @property
    def drafter(self) -> Any:
        with self._lock:
            if self._drafter is None:
                from rag.draft.drafter import Drafter

                drafter = Drafter(self.config)
                self._library_seen = self._library_stamp()
                drafter.retriever  # noqa: B018  (open the library now, not on the first query)
                self._drafter = drafter
                return drafter
            drafter = self._drafter
        self._follow_library(drafter)
        return drafter

    def _library_stamp(self) -> tuple[int, int, int] | None:
        """Which manifest the case library folder holds now (None while it is being updated)."""
        from rag.index.library import LIBRARY_DIR

        try:
            st = (self.config.indexes_dir / LIBRARY_DIR / "manifest.json").stat()
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def _follow_library(self, drafter: Any) -> None:
        """Reopen the case library when another worker process added a study to it (an upload there), so
        every worker serves it from the first request after the upload's answer. Requests wait for the
        reopening; while the library is being rewritten the one open is served."""
        stamp = self._library_stamp()
        if stamp is None or stamp == self._library_seen:
            return
        with self._reopening:
            if stamp == self._library_seen or time.monotonic() < self._retry_at:
                return
            try:
                drafter.reopen()
            except RagError as e:  # e.g. another upload has stored rows the library does not hold yet
                log.warning("the case library changed but does not open yet (%s); retrying in 1 s", e)
                self._retry_at = time.monotonic() + 1.0
                return
            self._library_seen = stamp
            log.info("case library reopened after a change by another process")

    def ingest(self, folder: Path) -> int:
        """Ingest, embed and add a study folder to the case library; its study ID. One ingestion at a time
        across the threads and the worker processes of the service (a lock file beside the library)."""
        import fcntl

        self.config.indexes_dir.mkdir(parents=True, exist_ok=True)
        with self._ingesting, (self.config.indexes_dir / ".library.lock").open("a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                drafter = self.drafter
                study_id = int(drafter.resolve(folder))
                with self._reopening:
                    self._library_seen = self._library_stamp()  # this process has reopened it already
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
        return study_id

    @property
    def comparer(self) -> Any:
        drafter = self.drafter
        with self._lock:
            if self._comparer is None:
                from rag.compare.comparer import Comparer

                self._comparer = Comparer(drafter)
            return self._comparer

    def ready(self) -> tuple[bool, str]:
        from rag.index.library import LIBRARY_DIR

        library = self.config.indexes_dir / LIBRARY_DIR / "manifest.json"
        if not library.is_file():
            return False, "no case library: run `rag index library` (or `rag demo`)"
        try:
            _ = self.drafter
        except RagError as e:
            return False, str(e)
        return True, "ready"


def create_app(
    config: RagConfig | None = None,
    *,
    max_upload_bytes: int = 256 * 2**20,
    rate: float = 50.0,
    burst: float = 100.0,
    key_ttl: float = 2.0,
    pacs_url: str | None = None,
) -> FastAPI:
    """The service over ``config``'s workspace (default: the loaded configuration).

    Args:
        max_upload_bytes: the largest upload accepted (413 beyond).
        rate / burst: requests a second per key on average / at most at once (429 beyond).
        key_ttl: seconds a verified key is trusted before the store is asked again (a revoked key is
            refused at most this long after revocation).
        pacs_url: a PACS's DICOMweb root the page may search and fetch from (default ``$RAG_PACS_URL``).
    """
    import os

    cfg = config if config is not None else load_config()
    pacs = pacs_url or os.environ.get("RAG_PACS_URL")
    ws = Workspace(cfg)
    keys = KeyCache(ws.store, ttl=key_ttl)
    limiter = RateLimiter(rate=rate, burst=burst)
    metrics = Metrics()
    app = FastAPI(
        title="echo-rag",
        version="1",
        description="Similar prior cases, drafts and comparisons with the prior study, with provenance.",
    )
    app.state.workspace = ws
    app.state.metrics = metrics

    @app.exception_handler(ApiError)
    async def api_error(_: Request, e: ApiError) -> JSONResponse:
        return JSONResponse({"error": e.reason}, status_code=e.status, headers=e.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, e: RequestValidationError) -> JSONResponse:
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x not in ("query", "path", "body"))
        return JSONResponse({"error": f"{where or 'request'}: {first.get('msg', 'invalid')}"}, status_code=422)

    @app.exception_handler(UnknownStudyError)
    async def unknown(_: Request, e: UnknownStudyError) -> JSONResponse:
        return JSONResponse({"error": "no such study in the case store"}, status_code=404)

    @app.exception_handler(RagError)
    async def rag_error(_: Request, e: RagError) -> JSONResponse:
        return JSONResponse({"error": str(e).split("\n")[0][:300]}, status_code=422)

    @app.exception_handler(Exception)
    async def crash(_: Request, e: Exception) -> JSONResponse:
        log.exception("unhandled error")  # the trace goes to the log, never to the caller
        return JSONResponse({"error": "internal error; the service log has the details"}, status_code=500)

    @app.middleware("http")
    async def observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        t0 = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        metrics.observe(request.method, path, response.status_code, time.perf_counter() - t0)
        return response

    def key(scope: str) -> Callable[..., KeyInfo]:
        def check(
            authorization: Annotated[str | None, Header()] = None,
            x_api_key: Annotated[str | None, Header()] = None,
        ) -> KeyInfo:
            info = keys.check(secret_of(authorization, x_api_key), scope)
            limiter.take(info.name)
            return info

        return check

    Reader = Annotated[KeyInfo, Depends(key("read"))]
    Uploader = Annotated[KeyInfo, Depends(key("upload"))]
    Admin = Annotated[KeyInfo, Depends(key("admin"))]

    def stored(study_id: int) -> int:
        ws.drafter.retriever.catalog.study(study_id)  # UnknownStudyError -> 404
        return study_id

    # -- open ---------------------------------------------------------------------------------------

    @app.get("/health", tags=["service"])
    def health() -> dict[str, str]:
        """The process answers."""
        return {"status": "ok"}

    @app.get("/ready", tags=["service"])
    def ready() -> JSONResponse:
        """The case library opens (503 with the reason when it does not)."""
        ok, why = ws.ready()
        return JSONResponse({"status": "ready" if ok else "not ready", "reason": why}, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["service"], response_class=PlainTextResponse)
    def prometheus() -> str:
        """Prometheus metrics: requests by route and status, latency histograms (no case data)."""
        return metrics.text()

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(WEB / "index.html")

    @app.get("/app.js", include_in_schema=False)
    def script() -> FileResponse:
        return FileResponse(WEB / "app.js", media_type="text/javascript")

    # -- cases --------------------------------------------------------------------------------------

    @app.get("/cases/{study_id}", tags=["cases"])
    def case(study_id: int, who: Reader) -> dict[str, Any]:
        """A case: date, views, clips (each with its looping preview URL) and its report."""
        from rag.draft.context import clip_summaries
        from rag.draft.studies import ground_truth_text

        stored(study_id)
        info = ws.drafter.retriever.catalog.study(study_id)
        clips = [
            {"clip_id": c.clip_id, "view": c.view, "preview": f"/clips/{c.clip_id}/preview.gif"}
            for c in clip_summaries(ws.drafter.retriever, study_id)
        ]
        audit(ws.store, who.name, "read case", [study_id])
        return {
            "study_id": study_id,
            "study_date": info.study_date.isoformat() if info.study_date else None,
            "views": sorted(ws.drafter.retriever.study_views(study_id)),
            "clips": clips,
            "report": ground_truth_text(ws.store, study_id),
        }

    @app.get("/cases/{study_id}/similar", tags=["cases"])
    def similar(
        study_id: int,
        who: Reader,
        k: Annotated[int, Query(ge=1, le=100)] = 10,
        view: Annotated[list[str] | None, Query()] = None,
        after: dt.date | None = None,
        before: dt.date | None = None,
        finding: Annotated[list[str] | None, Query()] = None,
    ) -> dict[str, Any]:
        """The most similar cases of other patients, with filters: views held, date range, findings present."""
        from rag.retrieve.similar import similar_studies

        stored(study_id)
        found = similar_studies(
            ws.drafter.retriever,
            study_id,
            k,
            views=view,
            after=after,
            before=before,
            findings=finding or (),
            voter=ws.drafter.voter,
        )
        audit(ws.store, who.name, "similar cases", [study_id, *(c.study_id for c in found)])
        return {
            "study_id": study_id,
            "cases": [
                {
                    "study_id": c.study_id,
                    "similarity": round(c.similarity, 4),
                    "study_date": c.study_date.isoformat() if c.study_date else None,
                    "views": list(c.views),
                    "sections": {s: round(v, 4) for s, v in c.sections.items()},
                }
                for c in found
            ],
        }

    @app.get("/similar", tags=["cases"])
    def similar_text(
        who: Reader, q: Annotated[str, Query(min_length=2, max_length=500)], k: int = 10
    ) -> dict[str, Any]:
        """Cases whose report sections are nearest a text query (the encoder's text tower)."""
        import torch

        from rag.retrieve.similar import similar_to_text

        with torch.no_grad():
            vector = ws.drafter.model.encode_text([q])[0].cpu().numpy()
        found = similar_to_text(ws.drafter.retriever, vector, max(1, min(k, 100)))
        audit(ws.store, who.name, "similar by text", [sid for sid, _, _ in found])
        return {"query": q, "cases": [{"study_id": s, "similarity": round(v, 4), "section": n} for s, v, n in found]}

    @app.get("/cases/{study_id}/finding-stats", tags=["cases"])
    def finding_stats(study_id: int, who: Reader) -> dict[str, Any]:
        """How many of the nearest neighbours (in each finding's own section) have each finding."""
        from rag.retrieve.similar import finding_counts

        stored(study_id)
        counts = finding_counts(ws.drafter.voter, study_id)
        audit(ws.store, who.name, "neighbour findings", [study_id])
        return {"study_id": study_id, "findings": counts}

    @app.post("/cases/{study_id}/draft", tags=["cases"])
    def draft(study_id: int, who: Reader) -> Any:
        """The drafted report, every sentence with the cases and passages behind it."""
        stored(study_id)
        report = ws.drafter.draft(study_id)
        audit(ws.store, who.name, "draft", [study_id, *(n.study_id for n in report.neighbours)])
        return JSONResponse(content=report.model_dump(mode="json"))

    @app.get("/cases/{study_id}/compare", tags=["cases"])
    def compare(study_id: int, who: Reader, prior: int | None = None) -> Any:
        """The comparison with the patient's prior study (or ``prior``); "no prior" is not an error."""
        stored(study_id)
        if prior is not None:
            stored(prior)
        result = ws.comparer.compare(study_id, prior)
        read = [study_id, *([result.prior_study_id] if result.prior_study_id else [])]
        audit(ws.store, who.name, "compare", read)
        return JSONResponse(content=result.model_dump(mode="json"))

    @app.get("/clips/{clip_id}/preview.gif", tags=["cases"], response_class=Response)
    def preview(clip_id: int, who: Reader) -> Response:
        """A clip as a looping GIF (encoded once, then served from the cache)."""
        from sqlalchemy import select

        from rag.store import Clip, Series

        with ws.store.session() as s:
            row = s.execute(
                select(Clip.path, Series.study_id).join(Series, Clip.series_id == Series.id).where(Clip.id == clip_id)
            ).first()
        if row is None:
            raise ApiError(404, "no such clip")
        try:
            data = ws.previews.get(clip_id, str(row[0]))
        except (FileNotFoundError, ValueError, RagError) as e:
            raise ApiError(404, f"the clip's file cannot be shown: {type(e).__name__}") from e
        audit(ws.store, who.name, "clip preview", [int(row[1])])
        return Response(data, media_type="image/gif", headers={"Cache-Control": "private, max-age=3600"})

    # -- uploads ------------------------------------------------------------------------------------

    @app.post("/studies", tags=["ingest"], status_code=201)
    async def upload(who: Uploader, files: Annotated[list[UploadFile], File()]) -> dict[str, Any]:
        """Ingest an uploaded study (DICOM files, an MP4/AVI, PNG/JPEG stills): de-identified, embedded
        and added to the case library; returns its study ID."""
        read = []
        total = 0
        for f in files:
            data = await f.read(max_upload_bytes + 1 - total)
            total += len(data)
            if total > max_upload_bytes:
                raise ApiError(413, f"upload is over the limit of {max_upload_bytes} bytes")
            read.append((f.filename or "", data))
        folder = save_upload(read, ws.config.home / "uploads", max_bytes=max_upload_bytes)
        try:
            study_id = ws.ingest(folder)
        except RagError as e:
            audit(ws.store, who.name, "upload refused", [], status=422)
            raise ApiError(422, f"nothing stored: {str(e).splitlines()[0][:300]}") from e
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        audit(ws.store, who.name, "upload", [study_id], status=201)
        return {"study_id": study_id}

    # -- the PACS -----------------------------------------------------------------------------------

    def pacs_root() -> str:
        if not pacs:
            raise ApiError(404, "no PACS is configured (start the service with RAG_PACS_URL=<DICOMweb root>)")
        return pacs

    @app.get("/pacs/studies", tags=["pacs"])
    def pacs_search(who: Reader, patient: str | None = None, date: str | None = None) -> dict[str, Any]:
        """Studies on the configured PACS (QIDO-RS), by patient ID and study date (YYYYMMDD[-YYYYMMDD])."""
        from rag.ingest.dicomweb import DicomWebError, search_studies

        try:
            found = search_studies(pacs_root(), patient=patient, date=date)
        except DicomWebError as e:
            raise ApiError(502, str(e)) from e
        audit(ws.store, who.name, "pacs search", [])
        return {"studies": [s.__dict__ | {"modalities": list(s.modalities)} for s in found]}

    @app.post("/pacs/studies/{study_uid}", tags=["pacs"], status_code=201)
    def pacs_fetch(study_uid: str, who: Uploader) -> dict[str, Any]:
        """Fetch a study from the PACS (WADO-RS), ingest and embed it; returns its study ID."""
        import uuid

        from rag.ingest.dicomweb import DicomWebError, fetch_study

        folder = ws.config.home / "uploads" / f"dicomweb-{uuid.uuid4().hex}"
        try:
            fetch_study(pacs_root(), study_uid, folder)
            study_id = ws.ingest(folder)
        except DicomWebError as e:
            raise ApiError(502, str(e)) from e
        except RagError as e:
            raise ApiError(422, f"nothing stored: {str(e).splitlines()[0][:300]}") from e
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        audit(ws.store, who.name, "pacs fetch", [study_id], status=201)
        return {"study_id": study_id}

    # -- admin --------------------------------------------------------------------------------------

    @app.get("/audit", tags=["admin"])
    def audit_log(who: Admin, study_id: int | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Any:
        """The latest audit rows (admin scope)."""
        from sqlalchemy import select

        from rag.store import AuditEntry

        with ws.store.session() as s:
            q = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
            if study_id is not None:
                q = q.where(AuditEntry.study_id == study_id)
            rows = [
                {"key": r.key_name, "study_id": r.study_id, "action": r.action, "status": r.status, "at": str(r.at)}
                for r in s.scalars(q)
            ]
        return {"entries": rows}

    return app
