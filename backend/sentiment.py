"""VADER compound sentiment for tweet texts (vaderSentiment's own scores).

``compound_scores(texts)`` scores a batch, ``compound_score(text)`` one text; ``None`` and ``""`` give 0.0.
"""

from __future__ import annotations

from collections.abc import Iterable

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

_analyzer: SentimentIntensityAnalyzer | None = None


def _get_analyzer() -> SentimentIntensityAnalyzer:
    # Created lazily: loading the lexicon takes a while and not every importer scores text.
    global _analyzer
    if _analyzer is None:
        _analyzer = SentimentIntensityAnalyzer()
    return _analyzer


def compound_score(text: str | None) -> float:
    """VADER's compound score of one text, in [-1, 1]; ``None`` or ``""`` gives 0.0."""
    if not text:
        return 0.0
    return float(_get_analyzer().polarity_scores(text)["compound"])


def compound_scores(texts: Iterable[str | None]) -> list[float]:
    """VADER's compound score of each text, in the same order."""
    return [compound_score(text) for text in texts]
