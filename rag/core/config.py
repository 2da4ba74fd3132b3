"""Configuration: strict pydantic models loaded from YAML and overridden by ``RAG_*`` variables.

Precedence, highest first: keyword arguments, ``RAG_*`` environment variables (nested keys joined
with ``__``, e.g. ``RAG_INGEST__FRAMES=32``), the YAML file (``RAG_CONFIG`` or ``--config``), then
the defaults below. Every model forbids unknown keys; a bad key or value raises
:class:`rag.core.errors.ConfigError` naming the key path and what is allowed.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from rag.core.errors import ConfigError
from rag.core.lookup import did_you_mean
from rag.core.validation import error_location


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class IngestConfig(_Strict):
    """How sources become stored clips."""

    frames: int = Field(16, ge=1, le=256, description="Frames kept per clip.")
    stride: int = Field(2, ge=1, le=16, description="Step between kept frames, in frames at target_fps.")
    target_fps: float = Field(
        30.0, gt=0, le=1000, description="Frame rate that `stride` refers to; sampling is by time."
    )
    size: int = Field(224, ge=16, le=1024, description="Side of the square stored clip, in pixels.")
    mask: Literal["auto", "regions", "pixels", "none"] = Field(
        "auto",
        description="Sector masking: DICOM ultrasound regions when present else pixels (auto), "
        "or force one method, or none.",
    )
    max_frames: int = Field(2000, ge=1, description="Refuse sources with more frames than this.")
    max_pixels_per_frame: int = Field(
        4096 * 4096, ge=1, description="Refuse frames larger than this many pixels (header check)."
    )
    workers: int = Field(1, ge=1, le=256, description="Decoding processes; 1 decodes in-process.")
    dicom_extensions: list[str] = Field(
        default_factory=lambda: [".dcm", ".dicom", ""],
        description="File name endings tried as DICOM ('' = files without an extension).",
    )


class DeidConfig(_Strict):
    """De-identification on ingest."""

    key_env: str = Field("RAG_PSEUDONYM_KEY", description="Environment variable holding the pseudonymisation key.")
    allow_generated_key: bool = Field(
        True,
        description="When the key variable is unset, create a random key in the workspace "
        "(`.pseudonym.key`, mode 0600) instead of failing.",
    )
    date_shift_min_days: int = Field(30, ge=1, le=3650)
    date_shift_max_days: int = Field(365, ge=1, le=3650)

    @model_validator(mode="after")
    def _range(self) -> DeidConfig:
        if self.date_shift_min_days > self.date_shift_max_days:
            raise ValueError(
                f"date_shift_min_days ({self.date_shift_min_days}) must not exceed "
                f"date_shift_max_days ({self.date_shift_max_days})"
            )
        return self


class LLMConfig(_Strict):
    """The report generator: an OpenAI-compatible chat server (vLLM) and how it is started and asked."""

    base_url: str = Field(
        "http://127.0.0.1:8000/v1", description="OpenAI-compatible API root the client talks to (ends in /v1)."
    )
    model: str = Field(
        "smollm2-135m-instruct",
        min_length=1,
        description="Model name sent with each request; `rag llm serve` serves the model under this name.",
    )
    api_key: SecretStr | None = Field(None, description="Bearer token for the server, if it wants one (never logged).")
    timeout_s: float = Field(120.0, gt=0, le=3600, description="Seconds to wait for one answer of the server.")
    max_tokens: int = Field(768, ge=1, le=32768, description="Most tokens generated for one answer.")
    context_tokens: int = Field(
        1536, ge=64, le=131072, description="Prompt budget in tokens; the server holds context_tokens + max_tokens."
    )
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="Sampling temperature; 0 is greedy (repeatable).")
    venv: str = Field(
        ".venv-vllm",
        min_length=1,
        description="Virtual environment holding vLLM (made by services/vllm/setup.sh); a relative path is "
        "looked up from the current directory, then the workspace.",
    )
    model_dir: str = Field(
        "models/smollm2-135m-instruct",
        min_length=1,
        description="Folder `rag llm prepare` writes and `rag llm serve` serves; relative to the workspace.",
    )
    port: int = Field(8000, ge=1, le=65535, description="Port `rag llm serve` listens on (127.0.0.1).")
    tensor_parallel_size: int = Field(1, ge=1, le=64, description="GPUs one model instance is split over (vLLM).")
    data_parallel_size: int = Field(1, ge=1, le=64, description="Model replicas the server balances requests over.")
    prefix_caching: bool | None = Field(
        None,
        description="Reuse the KV cache of a shared prompt prefix (the drafts' system prompt and schema); "
        "None leaves vLLM's default for the device.",
    )
    max_num_seqs: int | None = Field(
        None, ge=1, le=4096, description="Requests the server batches at once (None: vLLM's default)."
    )


class RagConfig(BaseSettings):
    """Top-level configuration (``RAG_*`` environment variables)."""

    model_config = SettingsConfigDict(
        env_prefix="RAG_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    home: Path = Field(
        default_factory=Path.cwd,
        description="Workspace folder: database, stored clips, indexes/ and ingestion reports.",
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the case store; default: SQLite file in the workspace."
    )
    pseudonym_key: SecretStr | None = Field(None, description="Pseudonymisation key (never logged).")
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    deid: DeidConfig = Field(default_factory=DeidConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _FileSource(settings_cls))

    # Paths derived from the workspace -------------------------------------------------------
    @property
    def db_url(self) -> str:
        """The store URL: ``database_url`` or the workspace's SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'rag.sqlite3').resolve()}"

    @property
    def media_dir(self) -> Path:
        """Folder of the stored (preprocessed, de-identified) clips and stills."""
        return self.home / "media"

    @property
    def indexes_dir(self) -> Path:
        return self.home / "indexes"

    @property
    def reports_dir(self) -> Path:
        """Folder of ingestion reports (one JSON file per run)."""
        return self.home / "ingest-reports"


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names allowed at ``loc`` (the parent of a rejected extra key)."""
    current: type[BaseModel] = model
    for part in loc[:-1]:
        field = current.model_fields.get(str(part))
        ann = field.annotation if field else None
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            current = ann
        else:
            return []
    return sorted(current.model_fields)


def _format_errors(err: ValidationError, source: str) -> str:
    lines = [f"Invalid configuration ({source}):"]
    for e in err.errors():
        path = error_location(tuple(e["loc"]))
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            allowed = _allowed_keys(RagConfig, tuple(e["loc"]))
            msg = f"unknown key.{did_you_mean(str(e['loc'][-1]), allowed)} Allowed keys here: {allowed}"
        else:
            msg = f"{msg} (got {e.get('input')!r})"
        env = "RAG_" + "__".join(str(p).upper() for p in e["loc"])
        lines.append(f"  {path}: {msg} [environment variable: {env}]")
    return "\n".join(lines)


def load_config(path: str | Path | None = None, **overrides: Any) -> RagConfig:
    """Load the configuration.

    Args:
        path: a YAML file; default ``$RAG_CONFIG`` if set, else ``<workspace>/rag.yaml`` if it exists,
            else defaults only.
        overrides: top-level keys that win over everything else.

    Raises:
        ConfigError: a file is missing or malformed, or a key or value is invalid.
    """
    file_data: dict[str, Any] = {}
    chosen = path or os.environ.get("RAG_CONFIG")
    if chosen is None:
        home = Path(os.environ.get("RAG_HOME") or Path.cwd())
        candidate = home / "rag.yaml"
        chosen = candidate if candidate.is_file() else None
    source = str(chosen) if chosen else "defaults"
    if chosen is not None:
        p = Path(chosen)
        if not p.is_file():
            raise ConfigError(f"Configuration file '{p}' does not exist. Pass an existing YAML file.")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            raise ConfigError(f"Configuration file '{p}' is not valid YAML: {e}") from e
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"Configuration file '{p}' must hold a mapping at the top level.")
        file_data = loaded
    token = _FILE_DATA.set(file_data)
    try:
        return RagConfig(**overrides)
    except ValidationError as e:
        raise ConfigError(_format_errors(e, source + " + RAG_* environment")) from e
    finally:
        _FILE_DATA.reset(token)


_FILE_DATA: ContextVar[dict[str, Any]] = ContextVar("rag_config_file_data", default={})  # noqa: B039


class _FileSource(PydanticBaseSettingsSource):
    """The YAML file's values, below the environment in precedence (deep-merged by pydantic-settings)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return _FILE_DATA.get().get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_FILE_DATA.get())
