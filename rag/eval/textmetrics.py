"""Report-text metrics scored as TemMed-Bench scores them: BLEU-1, ROUGE-L and METEOR, per sample.

The rule (TemMed-Bench ``Eval/metrics/ReportGeneration_eval.ipynb``, Levi-ZJY/TemMed-Bench, 2025):

- both texts stripped and lower-cased; an empty answer (or an empty reference) makes the answer ``" "``;
- tokens by NLTK ``word_tokenize`` (Punkt sentences, then the Treebank-style word tokenizer);
- BLEU: ``sentence_bleu([reference], candidate, weights=(1, 0, 0, 0), smoothing_function=method1)``;
- ROUGE-L: ``rouge_score`` ``RougeScorer(["rougeL"], use_stemmer=True)`` F-measure of the space-joined
  tokens (reference first);
- METEOR: NLTK ``meteor_score([reference], candidate)`` (alpha 0.9, beta 3, gamma 0.5, WordNet synonyms);
- each averaged over samples and multiplied by 100.

Offline: NLTK's English Punkt model (``punkt_tab``) is used when NLTK finds it; without it the
sentences come from an untrained Punkt splitter (every full stop that ends a word ends a sentence),
and :func:`tokenizer_name` says so, so a table can state it. WordNet comes from ``RAG_WORDNET`` (an NLTK
``wordnet`` folder), else NLTK's own ``corpora/wordnet``, else Debian's ``wordnet-base``
(``/usr/share/wordnet``), copied once into ``~/.cache/rag/wordnet-3.0`` with the ``lexnames`` table
Debian leaves out. Without any, :func:`meteor` raises :class:`MetricUnavailable` saying what to install.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = [
    "REPORT_METRICS",
    "MetricUnavailable",
    "bleu1",
    "meteor",
    "report_scores",
    "rouge_l",
    "tokenize",
    "tokenizer_name",
    "wordnet_dir",
]

REPORT_METRICS = ("bleu1", "rouge_l", "meteor")
DEBIAN_WORDNET = Path("/usr/share/wordnet")

# WordNet 3.0's lexicographer files (wndb(5WN) lexnames): number, name, syntactic category
_LEXNAMES = [
    "adj.all",
    "adj.pert",
    "adv.all",
    "noun.Tops",
    "noun.act",
    "noun.animal",
    "noun.artifact",
    "noun.attribute",
    "noun.body",
    "noun.cognition",
    "noun.communication",
    "noun.event",
    "noun.feeling",
    "noun.food",
    "noun.group",
    "noun.location",
    "noun.motive",
    "noun.object",
    "noun.person",
    "noun.phenomenon",
    "noun.plant",
    "noun.possession",
    "noun.process",
    "noun.quantity",
    "noun.relation",
    "noun.shape",
    "noun.state",
    "noun.substance",
    "noun.time",
    "verb.body",
    "verb.change",
    "verb.cognition",
    "verb.communication",
    "verb.competition",
    "verb.consumption",
    "verb.contact",
    "verb.creation",
    "verb.emotion",
    "verb.motion",
    "verb.perception",
    "verb.possession",
    "verb.social",
    "verb.stative",
    "verb.weather",
    "adj.ppl",
]
_CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}
_WORDNET_FILES = [f"{k}.{p}" for k in ("data", "index") for p in ("adj", "adv", "noun", "verb")] + [
    f"{p}.exc" for p in ("adj", "adv", "noun", "verb")
]
_lock = threading.Lock()


class MetricUnavailable(RuntimeError):
    """A metric's offline resource is missing; the message says what to install."""


@lru_cache(maxsize=1)
def _punkt() -> tuple[str, Any]:
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    try:
        from nltk.tokenize import PunktTokenizer

        return "nltk word_tokenize (punkt_tab english)", PunktTokenizer("english")
    except (LookupError, ImportError, OSError, ValueError):
        return "untrained Punkt + NLTK word tokenizer (punkt_tab not installed)", PunktSentenceTokenizer()


@lru_cache(maxsize=1)
def _words() -> Any:
    from nltk.tokenize import NLTKWordTokenizer

    return NLTKWordTokenizer()


def tokenizer_name() -> str:
    """Which sentence splitter the tokens come from (the official one or the offline stand-in)."""
    return str(_punkt()[0])


def tokenize(text: str) -> list[str]:
    """NLTK ``word_tokenize``: Punkt sentences, each split by NLTK's Treebank-style word tokenizer."""
    words = _words()
    return [token for sentence in _punkt()[1].tokenize(text) for token in words.tokenize(sentence)]


def bleu1(reference: Sequence[str], candidate: Sequence[str]) -> float:
    """Sentence BLEU with weights (1, 0, 0, 0) and smoothing method 1 (TemMed-Bench's "BLEU")."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    smoothing = SmoothingFunction().method1
    return float(sentence_bleu([list(reference)], list(candidate), weights=(1, 0, 0, 0), smoothing_function=smoothing))


@lru_cache(maxsize=1)
def _rouge() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l(reference: Sequence[str], candidate: Sequence[str]) -> float:
    """ROUGE-L F-measure with Porter stemming, of the space-joined tokens."""
    return float(_rouge().score(" ".join(reference), " ".join(candidate))["rougeL"].fmeasure)


def wordnet_dir() -> Path:
    """A WordNet 3.0 folder NLTK can read (see the module docstring for where it is looked for)."""
    override = os.environ.get("RAG_WORDNET")
    if override:
        path = Path(override).expanduser()
        if not (path / "lexnames").is_file():
            raise MetricUnavailable(f"RAG_WORDNET={override} is not a WordNet folder (no lexnames file in it)")
        return path
    try:
        import nltk

        return Path(str(nltk.data.find("corpora/wordnet")))
    except LookupError:
        pass
    if not all((DEBIAN_WORDNET / f).is_file() for f in _WORDNET_FILES):
        raise MetricUnavailable(
            "METEOR needs WordNet 3.0 and none was found: install Debian's wordnet-base "
            "(apt-get install wordnet-base), or point RAG_WORDNET at an NLTK wordnet folder"
        )
    xdg = os.environ.get("XDG_CACHE_HOME")
    target = (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "rag" / "wordnet-3.0"
    with _lock:
        if not (target / "lexnames").is_file():
            partial = target.with_name(target.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            for name in _WORDNET_FILES:  # NLTK refuses links out of its root: plain copies
                shutil.copyfile(DEBIAN_WORDNET / name, partial / name)
            lines = [f"{i:02d}\t{name}\t{_CATEGORY[name.split('.')[0]]}" for i, name in enumerate(_LEXNAMES)]
            (partial / "lexnames").write_text("\n".join(lines) + "\n", encoding="utf-8")
            shutil.rmtree(target, ignore_errors=True)
            partial.rename(target)
    return target


@lru_cache(maxsize=1)
def _wordnet() -> Any:
    import warnings

    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    root = wordnet_dir()
    if str(root) not in nltk.data.path:
        nltk.data.path.append(str(root))

    class _WordNet30(WordNetCorpusReader):  # type: ignore[misc]
        def map_wn(self, version: str = "wordnet") -> None:
            return None  # this is WordNet 3.0 itself: nothing to map (and no second copy to map from)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "multilingual functions are not available": English only
        return _WordNet30(str(root), None)


def meteor(reference: Sequence[str], candidate: Sequence[str]) -> float:
    """NLTK METEOR of one candidate against one reference (default parameters, WordNet 3.0)."""
    from nltk.translate.meteor_score import meteor_score

    return float(meteor_score([list(reference)], list(candidate), wordnet=_wordnet()))


def report_scores(reference: str, answer: str) -> dict[str, float]:
    """BLEU-1, ROUGE-L and METEOR of one answer (fractions; TemMed-Bench reports their means x100)."""
    label, said = reference.strip().lower(), answer.strip().lower()
    if not said or not label:
        said = " "
    ref, cand = tokenize(label), tokenize(said)
    return {"bleu1": bleu1(ref, cand), "rouge_l": rouge_l(ref, cand), "meteor": meteor(ref, cand)}
