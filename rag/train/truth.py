"""The ground truth of a simulated archive, matched to the studies and clips stored from it."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from rag.core.errors import RagError
from rag.store import Store, Study

__all__ = ["stored_truth"]


def stored_truth(store: Store, archive: Path, pseudonym_key: bytes) -> dict[int, dict[str, str]]:
    """Stored study ID -> its row of ``truth/studies.csv``, matched through the keyed hash of the Study UID.

    Args:
        pseudonym_key: the key the archive was ingested with (``rag.ingest.pipeline.resolve_key``).

    Returns an empty mapping when no stored study comes from the archive (another archive or key).

    Raises:
        RagError: ``archive`` is not a simulated archive (no ``truth/studies.csv`` and ``truth/clips.csv``).
    """
    missing = [n for n in ("studies.csv", "clips.csv") if not (Path(archive) / "truth" / n).is_file()]
    if missing:
        raise RagError(
            f"'{archive}' is not a simulated archive: truth/{', truth/'.join(missing)} missing; pass the folder "
            "that `rag simulate --out` wrote"
        )
    from rag.ingest.deid import Pseudonymizer
    from rag.simulate.archive import read_truth

    _, rows = read_truth(Path(archive))
    pz = Pseudonymizer(pseudonym_key)
    by_hash = {pz.uid(row["study_uid"]): row for row in rows}
    with store.session() as s:
        stored = s.execute(select(Study.id, Study.uid_hash)).all()
    return {int(sid): dict(by_hash[h]) for sid, h in stored if h in by_hash}
