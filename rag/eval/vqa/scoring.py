"""Scorers of free and yes/no answers: the official rules reproduced, and the corrected ones.

VQA-RAD is scored as MedEvalKit scores it (``utils/VQA_RAD/VQA_RAD.py`` ``cal_metrics`` with
``utils/utils.py`` ``parse_response``, ``judge_judgement``, ``judge_open_end_vqa`` and
``calculate_f1``, DAMO-NLP-SG/MedEvalKit, 2025):

- the response is reduced to the content of its last ``\\boxed{...}``, else of ``<answer>...</answer>``,
  lower-cased and stripped, then cut after the last answer marker ("answer:", "answer is", ...);
- an item is *closed* when its reference is ``yes`` or ``no``; it is right when the response (dots and
  newlines removed) contains ``yes`` or ``no`` but not both, and contains the reference: substrings,
  so "nodule" reads as "no" and "not seen" as "no" (defect 1);
- any other item is *open*: right on exact string equality with the reference (no normalisation;
  the space an answer marker leaves counts); token-set precision, recall and F1, which the script
  files under each other's names: "precision" holds F1, "recall" precision, "f1" recall (defect 2);
- open accuracy is divided by the open count twice (defect 3).

``official`` reproduces all three; ``corrected`` (the default) reads closed and open from the suite's
own ``answer_type``, matches yes/no as whole words, compares normalised text (lower case, punctuation
to spaces, spaces collapsed), names precision/recall/F1 right and divides once.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass, field

from rag.eval.vqa.items import VQAItem

__all__ = [
    "SCORINGS",
    "ItemScore",
    "boxed_content",
    "can_infer",
    "normalise",
    "official_parse",
    "score_choice",
    "score_item",
    "score_slake",
    "score_vqa_rad",
    "slake_normalise",
    "smmile_normalise",
    "temmed_pair_reading",
    "temmed_reading",
]

SCORINGS = ("corrected", "official")

_MARKERS = (
    "**answer**:",
    "**answer**",
    "*answer*:",
    "**answer:**",
    "answer is",
    "answer:",
    "答案:",
    "final answer",
    "final answer is",
)  # MedEvalKit parse_response, applied in this order, each keeping what follows its last occurrence


@dataclass(frozen=True)
class ItemScore:
    """One item's score: which part it counts in and whether it is right (plus token overlap for open)."""

    part: str  # "closed" or "open"
    correct: bool
    precision: float = 0.0
    recall: float = 0.0
    f1: float = 0.0
    text: dict[str, float] = field(default_factory=dict)  # report metrics (BLEU-1, ROUGE-L, METEOR)


def boxed_content(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (braces balanced), or None."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed")
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j].strip()
    return None


def _between(text: str, tag: str) -> str:
    """MedEvalKit ``extract(text, tag)``: every ``<tag>...</tag>`` joined by spaces, else the text."""
    parts, start = [], text.find(f"<{tag}>")
    while start != -1:
        end = text.find(f"</{tag}>", start + len(tag) + 2)
        if end == -1:
            break
        parts.append(text[start + len(tag) + 2 : end])
        start = text.find(f"<{tag}>", end + len(tag) + 3)
    joined = " ".join(parts).strip()
    return joined if joined else text


def official_parse(response: str) -> str:
    """The response as MedEvalKit reads it (``cal_metrics`` then ``parse_response``)."""
    boxed = boxed_content(response)
    if boxed is not None:
        response = boxed
    elif "<answer>" in response:
        response = _between(response, "answer")
    response = response.lower().strip()
    if "boxed" in response:
        inner = boxed_content(response)
        response = inner if inner is not None else "None"
    elif "<answer>" in response:
        response = _between(response, "answer")
    for marker in _MARKERS:
        if marker in response:
            response = response.split(marker)[-1]
    return response


_PUNCT = re.compile(f"[{re.escape(string.punctuation)}]")


def normalise(text: str) -> str:
    """Lower case, punctuation to spaces, spaces collapsed."""
    return " ".join(_PUNCT.sub(" ", text.lower()).split())


def _overlap(prediction: str, reference: str) -> tuple[float, float, float]:
    """Token-set precision, recall, F1 (0 when either side is empty)."""
    p, r = set(prediction.split()), set(reference.split())
    if not p or not r:
        return 0.0, 0.0, 0.0
    common = len(p & r)
    if common == 0:
        return 0.0, 0.0, 0.0
    precision, recall = common / len(p), common / len(r)
    return precision, recall, 2 * precision * recall / (precision + recall)


def score_vqa_rad(reference: str, response: str, answer_type: str, scoring: str = "corrected") -> ItemScore:
    """Score one VQA-RAD (or PathVQA: MedEvalKit's ``utils/PATH_VQA`` applies the same rule) answer; see
    the module docstring for both rules."""
    if scoring not in SCORINGS:
        raise ValueError(f"unknown scoring {scoring!r}; use one of {', '.join(SCORINGS)}")
    gold = reference.lower().strip()
    if scoring == "official":
        parsed = official_parse(response or "")
        if gold in ("yes", "no"):
            flat = parsed.replace("\n", "").replace(".", "")
            return ItemScore("closed", (("yes" in flat) ^ ("no" in flat)) and gold in flat)
        precision, recall, f1 = _overlap(parsed.lower(), gold)
        # calculate_f1 returns (f1, precision, recall); cal_metrics unpacks it as (precision, recall, f1)
        return ItemScore("open", parsed == gold, precision=f1, recall=precision, f1=recall)
    said = normalise(_corrected_parse(response or ""))
    want = normalise(gold)
    part = "closed" if answer_type == "closed" else "open"
    if want in ("yes", "no"):
        words = set(said.split())
        stated = {w for w in ("yes", "no") if w in words}
        return ItemScore(part, stated == {want})
    precision, recall, f1 = _overlap(said, want)
    return ItemScore(part, said == want, precision=precision, recall=recall, f1=f1)


def _corrected_parse(response: str) -> str:
    boxed = boxed_content(response)
    if boxed is not None:
        return boxed
    text = _between(response, "answer") if "<answer>" in response else response
    low = text.lower()
    for marker in _MARKERS:
        if marker in low:
            low = low.split(marker)[-1]
    return low


# --------------------------------------------------------------------------------------------------
# SLAKE (lmms-eval's normalize_answer) and multiple choice (VLMEvalKit's can_infer)
# --------------------------------------------------------------------------------------------------

# lmms-eval lmms_eval/tasks/slake/utils.py: EN_YES / EN_NO / ZH_YES / ZH_NO and ZH_PUNCTUATION
_YES = {"yes", "yeah", "yep", "true", "是", "是的", "有", "包含", "可以", "能", "会", "正常"}
_NO = {"no", "nope", "false", "否", "不是", "没有", "无", "不包含", "不能", "不会", "不可以", "不正常", "异常"}
_ZH_PUNCT = "！？｡。＂＃＄％＆＇（）＊＋，－／：；＜＝＞＠［＼］＾＿｀｛｜｝～、，。；：《》？【】（）"
_SLAKE_PUNCT = str.maketrans(dict.fromkeys(string.punctuation + _ZH_PUNCT, " "))


def slake_normalise(text: str) -> str:
    """SLAKE answers as lmms-eval's ``normalize_answer`` compares them: stripped and lower-cased,
    parenthesised text (ASCII and full-width) removed, ASCII and Chinese punctuation to spaces, spaces
    collapsed, then the whole answer "x ray" read as "xray", and a whole answer that is a yes / no
    synonym read as yes / no ("no effusion" stays as it is)."""
    low = text.strip().lower()
    low = re.sub(r"\([^)]*\)", " ", low)
    low = re.sub(r"（[^）]*）", " ", low)
    low = " ".join(low.translate(_SLAKE_PUNCT).split())
    if low in ("x ray", "xray"):
        return "xray"
    if low in _YES:
        return "yes"
    if low in _NO:
        return "no"
    return low


def score_slake(reference: str, response: str, answer_type: str, scoring: str = "corrected") -> ItemScore:
    """Exact match after :func:`slake_normalise`. ``official`` compares the raw response, as lmms-eval
    does; ``corrected`` first takes the content of a final ``\\boxed{}`` or ``<answer>`` tag and cuts after
    an answer marker ("The answer is: lung." reads as "lung"), and never counts an empty answer right."""
    part = "closed" if answer_type == "closed" else "open"
    if scoring == "official":
        return ItemScore(part, slake_normalise(response or "") == slake_normalise(reference))
    said = slake_normalise(_corrected_parse(response or ""))
    return ItemScore(part, said != "" and said == slake_normalise(reference))


_REFUSALS = (
    "Sorry, I can't help with images of people yet.",
    "I can't process this file.",
    "I'm sorry, but without the image provided",
    "Cannot determine the answer",
)


def can_infer_option(answer: str, letters: Sequence[str]) -> str | None:
    """VLMEvalKit ``can_infer_option`` (vlmeval/utils/matching_util.py): the single option letter that
    stands as a word once ``.()[],:;!*#{}`` are spaces; "Z" for a known refusal or a lone "Z"; None when
    there are several, none, or the letter is "A" in an answer of more than 3 words (an article)."""
    if "Failed to obtain answer via API" in answer:
        return None
    if any(err in answer for err in _REFUSALS):
        return "Z"
    mod = answer
    for c in ".()[],:;!*#{}":
        mod = mod.replace(c, " ")
    splits = [x.strip() for x in mod.split()]
    found = [c for c in letters if c in splits]
    if len(found) == 1:
        if "A" in splits and len(splits) > 3:
            return None
        return found[0]
    if not found and sum(1 for c in ("Z", "") if c in splits) == 1:
        return "Z"
    return None


def can_infer_text(answer: str, options: dict[str, str]) -> str | None:
    """VLMEvalKit ``can_infer_text``: the single option whose text (lower case) is inside the answer."""
    low = answer.lower()
    found = [letter for letter, text in options.items() if str(text).lower() in low]
    return found[0] if len(found) == 1 else None


def can_infer(answer: str, options: dict[str, str]) -> str | None:
    """VLMEvalKit ``can_infer``: the option letter, else the option text, else None."""
    answer = str(answer)
    return can_infer_option(answer, list(options)) or can_infer_text(answer, options)


def score_choice(reference: str, response: str, options: dict[str, str]) -> ItemScore:
    """Multiple choice (GMAI-MMBench, MedBookVQA): right when :func:`can_infer` gives the reference letter."""
    return ItemScore("closed", can_infer(response or "", options) == reference.strip().upper())


def temmed_reading(response: str, scoring: str = "corrected") -> str | None:
    """The yes/no a TemMed-Bench answer gives, or None.

    ``official`` (``Eval/metrics/VQA_eval.ipynb``): yes when the answer's first 3 characters are "Yes",
    "yes" or "YES", else no when its first 2 are "No", "no" or "NO"; anything else stops the notebook
    with ValueError (here: None, counted wrong). So "Nothing has changed" and "Not sure" read as no.
    ``corrected``: the one of yes/no that stands as a whole word, else None.
    """
    if scoring == "official":
        if response[:3] in ("Yes", "yes", "YES"):
            return "yes"
        if response[:2] in ("No", "no", "NO"):
            return "no"
        return None
    words = set(normalise(response).split())
    stated = [w for w in ("yes", "no") if w in words]
    return stated[0] if len(stated) == 1 else None


def score_temmed(reference: str, response: str, scoring: str = "corrected") -> ItemScore:
    """TemMed-Bench change VQA: right when :func:`temmed_reading` gives the reference."""
    return ItemScore("closed", temmed_reading(response or "", scoring) == reference.strip().lower())


_PAIR_OFFICIAL = tuple(
    (letter.upper(), tuple(f"my answer is {form}" for form in (letter, f"**{letter}**", f"**{letter}.**")))
    for letter in "abcd"
)
_PAIR_CORRECTED = re.compile(r"my answer is\W{0,4}([a-d])\b")


def temmed_pair_reading(response: str, scoring: str = "corrected") -> str | None:
    """The option letter a TemMed-Bench image-pair selection answer gives, or None.

    ``official`` (``Eval/metrics/Task3_acc_openEnd_final.ipynb``): the lower-cased answer is searched
    for "my answer is a", "my answer is **a**" or "my answer is **a.**", then the same for b, c and d;
    the first letter found wins, as substrings, so "my answer is about B" reads as A; anything else
    stops the notebook (here: None, counted wrong).
    ``corrected``: the letter standing alone after the last "my answer is" (markdown and brackets
    allowed), else VLMEvalKit's ``can_infer`` over the letters.
    """
    said = (response or "").lower()
    if scoring == "official":
        for letter, forms in _PAIR_OFFICIAL:
            if any(form in said for form in forms):
                return letter
        return None
    found = _PAIR_CORRECTED.findall(said)
    if found:
        return str(found[-1]).upper()
    return can_infer_option(response or "", ["A", "B", "C"])


def smmile_normalise(text: str) -> str:
    """SMMILE's open-answer comparison: lower case, ASCII punctuation deleted, spaces collapsed."""
    return " ".join(text.lower().translate(str.maketrans("", "", string.punctuation)).split())


def score_item(suite: str, item: VQAItem, response: str, scoring: str = "corrected") -> ItemScore:
    """Score one answer by its suite's rule."""
    if scoring not in SCORINGS:
        raise ValueError(f"unknown scoring {scoring!r}; use one of {', '.join(SCORINGS)}")
    if item.answer_type == "report":
        from rag.eval.textmetrics import report_scores

        return ItemScore("report", False, text=report_scores(item.answer, response or ""))
    if suite == "temmed-pairs":
        return ItemScore("closed", temmed_pair_reading(response or "", scoring) == item.answer.strip().upper())
    if item.options:
        return score_choice(item.answer, response, item.options)
    if suite == "slake":
        return score_slake(item.answer, response, item.answer_type, scoring)
    if suite == "temmed":
        return score_temmed(item.answer, response, scoring)
    if suite == "smmile":
        return ItemScore("open", smmile_normalise(response or "") == smmile_normalise(item.answer))
    return score_vqa_rad(item.answer, response, item.answer_type, scoring)
