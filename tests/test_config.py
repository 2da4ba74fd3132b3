from __future__ import annotations

from pathlib import Path

import pytest

from rag.core.config import load_config
from rag.core.errors import ConfigError


def test_defaults_and_workspace_paths(workspace: Path) -> None:
    cfg = load_config()
    assert cfg.home == workspace
    assert cfg.ingest.frames == 16 and cfg.ingest.stride == 2 and cfg.ingest.size == 224
    assert cfg.db_url == f"sqlite:///{(workspace / 'rag.sqlite3').resolve()}"
    assert cfg.media_dir == workspace / "media"


def test_yaml_then_environment_precedence(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = workspace / "rag.yaml"
    f.write_text("ingest:\n  frames: 8\n  size: 112\n")
    monkeypatch.setenv("RAG_INGEST__SIZE", "64")
    cfg = load_config()
    assert cfg.ingest.frames == 8  # from the file
    assert cfg.ingest.size == 64  # the environment wins, without resetting the file's other keys


def test_unknown_key_names_path_and_allowed_keys(workspace: Path) -> None:
    f = workspace / "bad.yaml"
    f.write_text("ingest:\n  frams: 8\n")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    msg = str(e.value)
    assert "ingest.frams" in msg and "Did you mean 'frames'" in msg and "'stride'" in msg


def test_bad_value_names_allowed_values(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_INGEST__MASK", "sometimes")
    with pytest.raises(ConfigError) as e:
        load_config()
    assert "ingest.mask" in str(e.value) and "'regions'" in str(e.value) and "RAG_INGEST__MASK" in str(e.value)


def test_out_of_bounds_and_missing_file(workspace: Path) -> None:
    with pytest.raises(ConfigError, match=r"ingest\.frames"):
        load_config(ingest={"frames": 0})
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(workspace / "nope.yaml")
    (workspace / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(workspace / "list.yaml")


def test_secret_key_is_hidden(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_PSEUDONYM_KEY", "very-secret-value")
    cfg = load_config()
    assert "very-secret-value" not in repr(cfg)
    assert "very-secret-value" not in cfg.model_dump_json()


def test_shipped_default_yaml_matches_code_defaults(workspace: Path) -> None:
    from tests.conftest import REPO

    assert load_config(REPO / "configs" / "default.yaml").model_dump() == load_config().model_dump()
