"""VADER compound sentiment for tweet texts: vaderSentiment 3.3.2's own scores, float for float, computed faster.

``compound_scores(texts)`` scores a batch (each distinct text once, results in input order), ``compound_score(text)``
one text (``None`` and ``""`` give 0.0); ``clear_cache()`` forgets the tokens remembered between calls. How it is
faster, and the quirks of vaderSentiment it reproduces on purpose: docs/design.md, "Sentiment".
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import compress, pairwise

from vaderSentiment.vaderSentiment import (
    BOOSTER_DICT,
    C_INCR,
    N_SCALAR,
    NEGATE,
    SPECIAL_CASES,
    SentimentIntensityAnalyzer,
)

_PUNCTUATION = string.punctuation
_NEGATE = frozenset(NEGATE)
_SO_THIS = ("so", "this")
_OR_NOR = ("or", "nor")


@dataclass(frozen=True)
class _Tables:
    lexicon: dict[str, float]
    emojis: dict[str, str]  # single code point emoji -> description
    # Every emoji above, plus all characters beyond the BMP: a class listing the astral emoji one by one is
    # tested range by range and was 10 times slower. _replace_emojis skips the matches that are not emoji.
    emoji_candidates: re.Pattern[str]
    special_cases: dict[tuple[str, ...], float]  # SPECIAL_CASES keyed by their words
    booster_ngrams: dict[tuple[str, ...], float]  # multi-word BOOSTER_DICT entries keyed by their words
    idiom_words: frozenset[str]  # every word of those two tables
    idiom_pairs: frozenset[tuple[str, str]]  # every two neighbouring words of those two tables
    # Words that change a lexicon word's valence from up to 3 words before it, idioms aside: negations,
    # "no", "least" and boosters (among them "so"). Words containing "n't" negate as well, and "this" counts
    # right before the word.
    modifiers: frozenset[str]
    least_in_lexicon: bool
    ascii_emoji: bool  # False in vaderSentiment 3.3.2: then ASCII text cannot hold an emoji


_tables: _Tables | None = None


def _get_tables() -> _Tables:
    # Built lazily from a real analyzer: loading the lexicon takes ~50 ms and not every importer scores text.
    global _tables
    if _tables is None:
        analyzer = SentimentIntensityAnalyzer()
        emojis = {char: description for char, description in analyzer.emojis.items() if len(char) == 1}
        special_cases = {tuple(key.split(" ")): float(value) for key, value in SPECIAL_CASES.items()}
        booster_ngrams = {tuple(key.split(" ")): value for key, value in BOOSTER_DICT.items() if " " in key}
        idioms = (*special_cases, *booster_ngrams)
        boosters = (word for word in BOOSTER_DICT if " " not in word)
        _tables = _Tables(
            lexicon=analyzer.lexicon,
            emojis=emojis,
            emoji_candidates=re.compile(
                "["
                + "".join(re.escape(char) for char in sorted(emojis) if ord(char) <= 0xFFFF)
                + "\U00010000-\U0010ffff]"
            ),
            special_cases=special_cases,
            booster_ngrams=booster_ngrams,
            idiom_words=frozenset(word for idiom in idioms for word in idiom),
            idiom_pairs=frozenset(pair for idiom in idioms for pair in pairwise(idiom)),
            modifiers=frozenset((*NEGATE, "no", "least", *boosters)),
            least_in_lexicon="least" in analyzer.lexicon,
            ascii_emoji=any(char.isascii() for char in emojis),
        )
    return _tables


def compound_score(text: str | None) -> float:
    """VADER's compound score of one text, in [-1, 1]; ``None`` or ``""`` gives 0.0."""
    if not text:
        return 0.0
    return _compound(text, _get_tables())


def compound_scores(texts: Iterable[str | None]) -> list[float]:
    """VADER's compound score of each text, in the same order; each distinct text is scored once."""
    tables = _get_tables()
    seen: dict[str, float] = {}  # retweets repeat their text
    scores: list[float] = []
    for text in texts:
        if not text:
            scores.append(0.0)
            continue
        score = seen.get(text)
        if score is None:
            score = seen[text] = _compound(text, tables)
        scores.append(score)
    return scores


def clear_cache() -> None:
    """Forget the tokens seen so far (a benchmark's cold start); scores never depend on the cache."""
    _word_cache.clear()


def _replace_emojis(text: str, tables: _Tables) -> str:
    # Same output as polarity_scores' loop over every character: a space goes before a description unless
    # the text starts there or the previous character is a space; nothing goes after it.
    emojis = tables.emojis
    parts: list[str] = []
    last = 0
    for match in tables.emoji_candidates.finditer(text):
        at = match.start()
        description = emojis.get(text[at])
        if description is None:
            continue
        parts.append(text[last:at])
        if at > 0 and text[at - 1] != " ":
            parts.append(" ")
        parts.append(description)
        last = at + 1
    if not parts:
        return text
    parts.append(text[last:])
    return "".join(parts)


# Token -> its lower-cased SentiText word. Tweets reuse a small vocabulary, so most tokens are looked up
# rather than stripped and lower-cased again; cleared when full (a few MB) so a stream cannot grow it forever.
_WORD_CACHE_SIZE = 100_000
_word_cache: dict[str, str] = {}


def _lower_word(token: str) -> str:
    # SentiText keeps the token as is when stripping punctuation leaves 2 characters or fewer (emoticons).
    stripped = token.strip(_PUNCTUATION)
    word = token if len(stripped) <= 2 else stripped
    lower = word.lower()
    if lower == token:
        lower = token  # the same string: one object in the cache, and its hash is already computed
    if len(_word_cache) >= _WORD_CACHE_SIZE:
        _word_cache.clear()
    _word_cache[token] = lower
    return lower


def _compound(text: str, tables: _Tables) -> float:
    # str.isascii() takes no time (CPython records it), and ASCII text holds no emoji: most tweets skip the search.
    if (tables.ascii_emoji or not text.isascii()) and tables.emoji_candidates.search(text) is not None:
        text = _replace_emojis(text, tables)
    # polarity_scores strips the text before splitting; split() ignores the ends anyway.
    tokens = text.split()
    if not tokens:
        return 0.0

    lexicon = tables.lexicon
    cache = _word_cache
    lowers = [cache.get(token) or _lower_word(token) for token in tokens]
    # Positions of lexicon words (every other word's valence is 0); compress() loops in C.
    hits = list(compress(range(len(lowers)), map(lexicon.__contains__, lowers)))
    if not hits:
        return 0.0

    count = len(tokens)
    # Stripping only removes ASCII punctuation, which has no case, so a token is ALL CAPS exactly when its
    # word is: the tokens stand in for SentiText's words wherever VADER calls isupper().
    caps = sum(map(str.isupper, tokens))
    is_cap_diff = 0 < caps < count  # some, but not all, words are ALL CAPS
    modifiers = tables.modifiers
    # Whether any word contains "n't" (no word can without an apostrophe; the joining space cannot be part of it).
    has_nt = "'" in text and "n't" in " ".join(lowers)
    idiom_starts = _idiom_starts(lowers, tables)
    positions: list[int] = []
    valences: list[float] = []
    for i in hits:
        lower = lowers[i]
        # Boosters and "kind" in "kind of" count as 0 even when they are lexicon words.
        if lower in BOOSTER_DICT or (lower == "kind" and i < count - 1 and lowers[i + 1] == "of"):
            continue
        positions.append(i)
        # VADER checks idioms for a word with 3 words before it; each n-gram it looks up starts at i-3 .. i.
        idiom_near = i >= 3 and bool(idiom_starts) and not idiom_starts.isdisjoint(range(i - 3, i + 1))
        before = lowers[max(i - 3, 0) : i]
        if (
            lower != "no"
            and modifiers.isdisjoint(before)
            and (i == 0 or lowers[i - 1] != "this")
            and not (has_nt and "n't" in " ".join(before))
            and not idiom_near
        ):
            # Most words: no rule can fire (every rule needs one of these words within 3 before it, or an
            # idiom around it), so the valence is the lexicon's, plus the ALL-CAPS bump.
            valence = lexicon[lower]
            if is_cap_diff and tokens[i].isupper():
                valence = valence + C_INCR if valence > 0 else valence - C_INCR
            valences.append(valence)
        else:
            valences.append(_valence(i, tokens, lowers, is_cap_diff, idiom_near, tables))

    if "but" in lowers:
        _but_check(lowers.index("but"), positions, valences)

    # Zero valences add nothing, so summing only the lexicon words gives the same float as VADER's sum.
    sum_s = float(sum(valences))
    amplifier = _punctuation_emphasis(text)
    if sum_s > 0:
        sum_s += amplifier
    elif sum_s < 0:
        sum_s -= amplifier
    compound = sum_s / math.sqrt((sum_s * sum_s) + 15)
    if compound < -1.0:
        compound = -1.0
    elif compound > 1.0:
        compound = 1.0
    return round(compound, 4)


def _negated(lower: str) -> bool:
    # vaderSentiment.negated() of a single lower-cased word.
    return lower in _NEGATE or "n't" in lower


def _valence(
    i: int, tokens: Sequence[str], lowers: Sequence[str], is_cap_diff: bool, idiom_near: bool, tables: _Tables
) -> float:
    """The valence of the lexicon word at ``i``: SentimentIntensityAnalyzer.sentiment_valence.

    ``idiom_near`` is False when no idiom can start at i-3 .. i, so _special_idioms_check would change nothing.
    """
    lexicon = tables.lexicon
    count = len(lowers)
    lower = lowers[i]
    valence = lexicon[lower]

    # "no" before another lexicon word negates it instead of counting itself.
    if lower == "no" and i != count - 1 and lowers[i + 1] in lexicon:
        valence = 0.0
    if (
        (i > 0 and lowers[i - 1] == "no")
        or (i > 1 and lowers[i - 2] == "no")
        or (i > 2 and lowers[i - 3] == "no" and lowers[i - 1] in _OR_NOR)
    ):
        valence = lexicon[lower] * N_SCALAR

    if is_cap_diff and tokens[i].isupper():
        valence = valence + C_INCR if valence > 0 else valence - C_INCR

    for start_i in range(3):
        before = i - (start_i + 1)
        if before < 0 or lowers[before] in lexicon:
            continue
        # scalar_inc_dec: a booster or dampener up to 3 words before, fading with distance.
        scalar = 0.0
        booster = BOOSTER_DICT.get(lowers[before])
        if booster is not None:
            scalar = booster
            if valence < 0:
                scalar *= -1
            if is_cap_diff and tokens[before].isupper():
                if valence > 0:
                    scalar += C_INCR
                else:
                    scalar -= C_INCR
            if start_i == 1:
                scalar = scalar * 0.95
            elif start_i == 2:
                scalar = scalar * 0.9
        valence = valence + scalar
        valence = _negation_check(valence, lowers, start_i, i)
        if start_i == 2 and idiom_near:
            valence = _special_idioms_check(valence, lowers, i, tables)

    # _least_check: "least" before the word negates it, except in "at least" and "very least".
    if (
        i > 0
        and lowers[i - 1] == "least"
        and not tables.least_in_lexicon
        and (i == 1 or (lowers[i - 2] != "at" and lowers[i - 2] != "very"))
    ):
        valence = valence * N_SCALAR
    return valence


def _negation_check(valence: float, lowers: Sequence[str], start_i: int, i: int) -> float:
    """SentimentIntensityAnalyzer._negation_check, including its precedence quirk at ``start_i == 2``."""
    if start_i == 0:
        if _negated(lowers[i - 1]):
            valence = valence * N_SCALAR
    elif start_i == 1:
        if lowers[i - 2] == "never" and lowers[i - 1] in _SO_THIS:
            valence = valence * 1.25
        elif lowers[i - 2] == "without" and lowers[i - 1] == "doubt":
            pass
        elif _negated(lowers[i - 2]):
            valence = valence * N_SCALAR
    else:
        # VADER's `a and b or c`: the second clause alone ("so"/"this" right before) is enough.
        if (lowers[i - 3] == "never" and lowers[i - 2] in _SO_THIS) or lowers[i - 1] in _SO_THIS:
            valence = valence * 1.25
        elif lowers[i - 3] == "without" and (lowers[i - 2] == "doubt" or lowers[i - 1] == "doubt"):
            pass
        elif _negated(lowers[i - 3]):
            valence = valence * N_SCALAR
    return valence


def _idiom_starts(lowers: Sequence[str], tables: _Tables) -> set[int]:
    """Positions where two neighbouring words are two neighbouring words of some idiom (usually none).

    An n-gram of _special_idioms_check can only match an idiom if its first two words are such a pair.
    """
    # Both tests loop in C and settle most texts.
    if tables.idiom_words.isdisjoint(lowers) or tables.idiom_pairs.isdisjoint(pairwise(lowers)):
        return set()
    return {at for at, pair in enumerate(pairwise(lowers)) if pair in tables.idiom_pairs}


def _special_idioms_check(valence: float, lowers: Sequence[str], i: int, tables: _Tables) -> float:
    """SentimentIntensityAnalyzer._special_idioms_check with word tuples instead of joined strings."""
    special_cases = tables.special_cases
    zero, one, two, three = lowers[i], lowers[i - 1], lowers[i - 2], lowers[i - 3]
    for sequence in ((one, zero), (two, one, zero), (two, one), (three, two, one), (three, two)):
        if sequence in special_cases:
            valence = special_cases[sequence]
            break
    count = len(lowers)
    if count - 1 > i:
        value = special_cases.get((zero, lowers[i + 1]))
        if value is not None:
            valence = value
    if count - 1 > i + 1:
        value = special_cases.get((zero, lowers[i + 1], lowers[i + 2]))
        if value is not None:
            valence = value
    for n_gram in ((three, two, one), (three, two), (two, one)):
        booster = tables.booster_ngrams.get(n_gram)
        if booster is not None:
            valence = valence + booster
    return valence


def _but_check(but_at: int, positions: list[int], valences: list[float]) -> None:
    """SentimentIntensityAnalyzer._but_check on the non-zero valences, in place.

    VADER finds each valence's slot with ``list.index`` (its first equal value, which may already have
    been scaled), so repeated values scale the wrong slot; this keeps that. Zero valences are left out:
    scaling a zero changes nothing, and a zero never equals a non-zero valence being looked up.
    """
    for valence in list(valences):
        if valence == 0:
            continue
        slot = valences.index(valence)
        if positions[slot] < but_at:
            valences[slot] = valence * 0.5
        elif positions[slot] > but_at:
            valences[slot] = valence * 1.5


def _punctuation_emphasis(text: str) -> float:
    # Up to 4 "!" add 0.292 each; 2 or 3 "?" add 0.18 each, more add 0.96.
    ep_count = text.count("!")
    if ep_count > 4:
        ep_count = 4
    qm_count = text.count("?")
    qm_amplifier: float = 0
    if qm_count > 1:
        qm_amplifier = qm_count * 0.18 if qm_count <= 3 else 0.96
    return ep_count * 0.292 + qm_amplifier
