"""Report scrubbing, layer 2: the patient's own identifying tokens, known only by their keyed hashes.

When a DICOM header is de-identified, its name parts and IDs (Patient's Name, Other Patient Names,
Patient's Birth Name, Patient's Mother's Birth Name; Patient ID, Other Patient IDs, Accession
Number, Study ID) are cut into tokens and each token is hashed with the workspace key
(`Pseudonymizer.token_hash`). The case store keeps these hashes per patient (``identifier_hashes``),
never the tokens. A report of that patient, in the same run or any later one, is cut into words the
same way; a word whose hash is among the patient's is replaced by ``XXXX``, wherever it stands
("Mr Smith tolerated the study").

Which tokens count (the same rule when storing and when matching):

- a name is split at ``^``, ``=``, spaces, commas and semicolons into parts; an ID is taken whole;
  each part or ID also gives its words (letters and digits, split at ``-``, ``'``, ``.``, ``/``), so
  "Smith-Jones" yields smith-jones, smith and jones;
- tokens are compared NFKC-normalised and case-folded;
- a token is kept only if it has at least 2 characters (3 for an ID and its words), at least one letter
  or digit, at least 4 digits when it is made of digits only (so a measurement such as 120 or 55 is
  never matched), and is not a common word: an English function word, a title or name particle
  (Mr, Dr, van, de ...), an echo abbreviation or clinical word (MR, AS, LV, long, wall, normal ...),
  or a word of the report section names. A patient named "Long" keeps "parasternal long axis"
  readable; the labelled fields (layer 1) still remove that name after "Patient Name:".
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from typing import Final

from rag.ingest.pseudonym import Pseudonymizer, normalize_token
from rag.vocab.sections import CXR_SECTIONS, ECHO_SECTIONS, FREE_TEXT

__all__ = ["COMMON_WORDS", "identifier_hashes", "identifier_tokens", "is_identifying_token", "scrub_identifiers"]

_REPLACEMENT: Final = "XXXX"
_MIN_TOKEN: Final = 2
_MIN_ID: Final = 3
_MIN_DIGITS: Final = 4

_FUNCTION_WORDS = """
a an and are as at be but by for from he her him his if in is it me my no nor not of on or our per she so
that the their them they this to up us via was we were who with yes you
"""
_TITLES_AND_PARTICLES = """
mr mrs ms miss mx dr prof sir dame jr sr ii iii iv md phd rn rdcs do dds
de del della der di du da la le los las van von den ter st bin al el
"""
_CLINICAL = """
lv rv la ra ao av mv tv pv pa mr ar tr pr as ms ps ts pi ai ef fs lvef rvef ivc svc asd vsd pfo pda
ecg ekg bp hr bsa bmi tte tee cw pw vti rvsp pasp tapse mapse lvot rvot ivs ivsd lvpw lvpwd lvid lvidd
lvids edv esv sv co ci gls dti cm mm mmhg bpm sec ml kg af afib nsr sr ct mri cxr ap pci cabg cad chf
hf htn dm copd ckd lbbb rbbb rwma nyha na tbd nos prn
patient patients pt name id mrn dob date age sex male female man woman echo study exam report removed xxxx
long short small large wall walls mild moderate severe trace normal abnormal heart valve valves left right
apex apical base basal root arch ring good fair poor free fine young old rate flow mass size function view
axis chamber chambers cardiac aortic mitral tricuspid pulmonic pulmonary pericardial septum septal
atrium atrial ventricle ventricular effusion regurgitation stenosis prolapse dilated dilation hypertrophy
thickness thick thin grade stage sinus rhythm doppler color colour systolic diastolic pressure gradient
peak mean lead ray chest lung lungs clear stable prior follow
"""


def _section_words() -> set[str]:
    words: set[str] = set()
    for name in (*ECHO_SECTIONS, *CXR_SECTIONS, FREE_TEXT):
        words.update(normalize_token(w) for w in re.findall(r"\w+", name))
    return words


COMMON_WORDS: Final[frozenset[str]] = frozenset(
    {normalize_token(w) for w in (_FUNCTION_WORDS + _TITLES_AND_PARTICLES + _CLINICAL).split()} | _section_words()
)
"""Words never stored or matched as identifying tokens (see the module docstring)."""

_PART_SPLIT: Final = re.compile(r"[\^=\s,;]+")
_WORD: Final = re.compile(r"[^\W_]+")
# In text: a compound of words joined by - ' ’ . / (an ID such as A-77/3, a name such as O'Brien).
_COMPOUND: Final = re.compile(r"[^\W_]+(?:[-'’./][^\W_]+)+")
_EDGE_PUNCT: Final = "-'’./#_"


def is_identifying_token(token: str, *, whole_id: bool = False) -> bool:
    """Whether ``token`` may be stored and matched as identifying (the rule of the module docstring)."""
    t = normalize_token(token).strip(_EDGE_PUNCT)
    if len(t) < (_MIN_ID if whole_id else _MIN_TOKEN) or not any(c.isalnum() for c in t):
        return False
    if t.isdigit() and len(t) < _MIN_DIGITS:
        return False
    return t not in COMMON_WORDS


def identifier_tokens(names: Iterable[str], ids: Iterable[str]) -> set[str]:
    """The normalised identifying tokens of a patient's names and IDs (kept by the rule above)."""
    tokens: set[str] = set()
    pieces: list[tuple[str, bool]] = []
    for name in names:
        pieces += [(p, False) for p in _PART_SPLIT.split(str(name))]
    for value in ids:
        pieces.append((str(value), True))
    for piece, whole_id in pieces:
        piece = normalize_token(piece).strip(_EDGE_PUNCT)
        if is_identifying_token(piece, whole_id=whole_id):
            tokens.add(piece)
        tokens.update(w for w in _WORD.findall(piece) if is_identifying_token(w, whole_id=whole_id))
    return tokens


def identifier_hashes(pz: Pseudonymizer, names: Iterable[str], ids: Iterable[str]) -> frozenset[str]:
    """The keyed hashes of `identifier_tokens` (what the case store keeps; never the tokens)."""
    return frozenset(pz.token_hash(t) for t in identifier_tokens(names, ids))


def scrub_identifiers(text: str, pz: Pseudonymizer, hashes: Collection[str], replacement: str = _REPLACEMENT) -> str:
    """``text`` with every word or compound whose keyed hash is in ``hashes`` replaced.

    Each candidate (a word of letters and digits, or words joined by ``-``, ``'``, ``.``, ``/``) that
    passes `is_identifying_token` is hashed once; matching spans are replaced, overlapping ones as one.
    """
    if not hashes or not text:
        return text
    known = set(hashes)
    verdicts: dict[str, bool] = {}

    def matches(candidate: str) -> bool:
        key = normalize_token(candidate)
        if key not in verdicts:
            verdicts[key] = is_identifying_token(key) and pz.token_hash(key) in known
        return verdicts[key]

    spans = [m.span() for pattern in (_COMPOUND, _WORD) for m in pattern.finditer(text) if matches(m.group(0))]
    if not spans:
        return text
    spans.sort()
    out: list[str] = []
    pos = 0
    for start, end in spans:
        if start < pos:  # inside (or overlapping) a span already replaced
            if end > pos:
                pos = end
            continue
        out += [text[pos:start], replacement]
        pos = end
    out.append(text[pos:])
    return "".join(out)
