"""BERTScore of a report against its reference, from a local model folder (an optional metric).

Model-based report metrics need weights that no hub can deliver here, so this one takes a local
Hugging Face model folder (``config.json``, weights, tokenizer) and fails at once, saying what to pass,
without it. The rule (Zhang et al., 2020): contextual token embeddings of one layer (default the last),
special tokens dropped, unit-normalised; precision = mean over candidate tokens of the best cosine with
a reference token, recall the other way round, F1 their harmonic mean; no idf weighting, no baseline
rescaling. Scores depend on the model and layer, and every table names them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rag.eval.textmetrics import MetricUnavailable

__all__ = ["BERTScorer"]


class BERTScorer:
    """BERTScore with the model in ``model_dir`` (its ``layer``-th hidden layer; default the last)."""

    def __init__(self, model_dir: Path, *, layer: int | None = None) -> None:
        model_dir = Path(model_dir)
        if not (model_dir / "config.json").is_file():
            raise MetricUnavailable(
                f"BERTScore needs a local model folder with config.json, weights and tokenizer; '{model_dir}' is "
                "not one (no model hub is reachable: pass --bertscore-model DIR)"
            )
        import torch
        from transformers import AutoModel, AutoTokenizer

        try:
            self.tokenizer: Any = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
            self.model: Any = AutoModel.from_pretrained(str(model_dir), local_files_only=True)
        except (OSError, ValueError) as e:
            raise MetricUnavailable(f"BERTScore cannot load the model in '{model_dir}': {e}") from e
        self.model.eval()
        self.layer = layer
        self.name = f"bertscore:{model_dir.name}:layer={'last' if layer is None else layer}"
        self._torch = torch

    def _tokens(self, text: str) -> Any:
        torch = self._torch
        batch = self.tokenizer(text, return_tensors="pt", truncation=True, max_length=510)
        with torch.no_grad():
            out = self.model(**batch, output_hidden_states=True)
        states = out.hidden_states[-1 if self.layer is None else self.layer][0]
        special = torch.tensor(
            self.tokenizer.get_special_tokens_mask(batch["input_ids"][0], already_has_special_tokens=True)
        )
        states = states[special == 0]
        return torch.nn.functional.normalize(states, dim=-1)

    def score(self, reference: str, candidate: str) -> tuple[float, float, float]:
        """(precision, recall, F1); all 0 when either text has no token."""
        ref, cand = self._tokens(reference), self._tokens(candidate)
        if not len(ref) or not len(cand):
            return 0.0, 0.0, 0.0
        sim = cand @ ref.T
        p = float(sim.max(dim=1).values.mean())
        r = float(sim.max(dim=0).values.mean())
        return p, r, (2 * p * r / (p + r) if p + r > 0 else 0.0)
