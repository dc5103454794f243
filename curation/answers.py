"""The one answer rule: VQAv2 normalisation, yes/no mapping and answer types.

Every command that asks "is this answer yes, no or something else?" asks this
module: validate's balance warning, mix's balancing, export's answer types,
the curator's conflict check and eval's metrics. A label "Yes." or "Yeah" is
therefore "yes" everywhere, and a canonical label is exactly "yes" or "no".

The rules (punctuation, number words to digits, articles, contractions) are
those of the official evaluation script, which LAVIS ships as
``lavis.common.vqa_tools.vqa_eval.VQAEval``; they are restated here so that
scoring needs neither LAVIS nor torch.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

_CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've",
    "couldnt": "couldn't", "couldn'tve": "couldn't've", "couldnt've": "couldn't've",
    "didnt": "didn't", "doesnt": "doesn't", "dont": "don't", "hadnt": "hadn't",
    "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't", "havent": "haven't",
    "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's", "howd": "how'd",
    "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm",
    "Ive": "I've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've",
    "itll": "it'll", "let's": "let's", "maam": "ma'am", "mightnt": "mightn't",
    "mightnt've": "mightn't've", "mightn'tve": "mightn't've", "mightve": "might've",
    "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "notve": "not've",
    "oclock": "o'clock", "oughtnt": "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at",
    "'ow'sat": "'ow's'at", "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've",
    "she's": "she's", "shouldve": "should've", "shouldnt": "shouldn't",
    "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've", "somebody'd": "somebodyd",
    "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've",
    "somebodyll": "somebody'll", "somebodys": "somebody's", "someoned": "someone'd",
    "someoned've": "someone'd've", "someone'dve": "someone'd've", "someonell": "someone'll",
    "someones": "someone's", "somethingd": "something'd", "somethingd've": "something'd've",
    "something'dve": "something'd've", "somethingll": "something'll", "thats": "that's",
    "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've",
    "therere": "there're", "theres": "there's", "theyd": "they'd", "theyd've": "they'd've",
    "they'dve": "they'd've", "theyll": "they'll", "theyre": "they're", "theyve": "they've",
    "twas": "'twas", "wasnt": "wasn't", "wed've": "we'd've", "we'dve": "we'd've",
    "weve": "we've", "werent": "weren't", "whatll": "what'll", "whatre": "what're",
    "whats": "what's", "whatve": "what've", "whens": "when's", "whered": "where'd",
    "wheres": "where's", "whereve": "where've", "whod": "who'd", "whod've": "who'd've",
    "who'dve": "who'd've", "wholl": "who'll", "whos": "who's", "whove": "who've",
    "whyll": "why'll", "whyre": "why're", "whys": "why's", "wont": "won't",
    "wouldve": "would've", "wouldnt": "wouldn't", "wouldnt've": "wouldn't've",
    "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll",
    "y'allll": "y'all'll", "yall'd've": "y'all'd've", "y'alld've": "y'all'd've",
    "y'all'dve": "y'all'd've", "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've",
    "youll": "you'll", "youre": "you're", "youve": "you've",
}  # fmt: skip
_NUMBERS = {
    "none": "0",
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
}
_ARTICLES = {"a", "an", "the"}
_PUNCT = [
    ";",
    r"/",
    "[",
    "]",
    '"',
    "{",
    "}",
    "(",
    ")",
    "=",
    "+",
    "\\",
    "_",
    "-",
    ">",
    "<",
    "@",
    "`",
    ",",
    "?",
    "!",
]
_PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")
_COMMA_STRIP = re.compile(r"(\d)(,)(\d)")

YesNo = Literal["yes", "no", "other"]


def process_punctuation(text: str) -> str:
    out = text
    for p in _PUNCT:
        if (p + " " in text or " " + p in text) or _COMMA_STRIP.search(text) is not None:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    # the official script passes re.UNICODE (32) where sub() takes its count: at most 32
    # periods go, as there
    return _PERIOD_STRIP.sub("", out, count=re.UNICODE)


def process_digit_article(text: str) -> str:
    words = [_NUMBERS.get(w, w) for w in text.lower().split()]
    words = [_CONTRACTIONS.get(w, w) for w in words if w not in _ARTICLES]
    return " ".join(words)


def normalize_answer(text: str) -> str:
    """A predicted answer as the official VQAv2 evaluation compares it."""
    text = text.replace("\n", " ").replace("\t", " ").strip()
    return process_digit_article(process_punctuation(text))


def to_yes_no(text: str) -> YesNo:
    """Map free text to yes / no / other.

    "yes", "Yes.", "yes, someone is" count as yes; a caption such as "a man
    lying on the floor" is "other": neither right nor a hidden wrong answer.
    """
    words = normalize_answer(text).replace(".", " ").split()
    if not words:
        return "other"
    first = words[0]
    if first in ("yes", "yeah", "yep"):
        return "yes"
    if first in ("no", "nope"):
        return "no"
    return "other"


def yes_no(answers: str | Sequence[str]) -> YesNo:
    """yes / no / other for one answer, or for the first of a list of answers."""
    if not isinstance(answers, str):
        answers = answers[0] if answers else ""
    return to_yes_no(answers)


def canonical_label(answer: str) -> str | None:
    """ "yes"/"no" for a yes/no label written another way ("Yes.", "Yeah", " NO"), else None.

    Only a one-word answer counts: "no one" answers a "who" question and stays as it is.
    """
    if answer in ("yes", "no"):  # what LAVIS should be taught to generate
        return None
    words = normalize_answer(answer).replace(".", " ").split()
    if len(words) != 1:
        return None
    label = to_yes_no(words[0])
    return None if label == "other" else label


_NUMBER_WORDS = frozenset(_NUMBERS) - {"none"}


def answer_type_of(answers: Sequence[str]) -> str:
    """VQAv2's answer types: "yes/no", "number" or "other" (from the first answer)."""
    if not answers:
        return "other"
    if yes_no(answers) != "other":
        return "yes/no"
    first = answers[0].strip().lower()
    if first.replace(".", "", 1).isdigit() or first in _NUMBER_WORDS:
        return "number"
    return "other"
