"""``python -m bench sentiment``: backend.tweets.sentiment against vaderSentiment's own scorer, row by row.

Both score the same generated texts in the same process, alternating, ``--runs`` times each, on four
corpora: two word mixes ("tweets", tweet-like; "rules", dense in what VADER's rules look at) with ~20%
exact duplicates (like retweets) or none. Ours starts every run with an empty token cache. Prints µs per
text for both, the speedup (theirs / ours) and the largest absolute difference between the two scores
(it should be 0). A benchmark, not a test: nothing here asserts on speed. tests/unit/test_sentiment.py
uses the same text generator.
"""

from __future__ import annotations

import argparse
import random
import statistics
import string
import time
from dataclasses import dataclass

from vaderSentiment.vaderSentiment import BOOSTER_DICT, NEGATE, SPECIAL_CASES, SentimentIntensityAnalyzer

from backend.tweets.sentiment import clear_cache, compound_scores

# Words the rules look at besides the lexicon: negation helpers, "but", "least", idioms and stopwords.
_RULE_WORDS = [
    "no", "never", "without", "doubt", "least", "at least", "very least", "so", "this", "or", "nor",
    "but", "BUT", "But", "kind of", "sort of", "kind", "of", "just enough", "never so", "never this",
    "without a doubt", "no or", "not", "n't", "isn't", "wasn't", "NOT",
]  # fmt: skip
_IDIOMS = [*SPECIAL_CASES, "cut the mustard", "the shit", "THE SHIT", "the bomb", "bad ass", "yeah right"]
_STOPWORDS = [
    "the", "a", "an", "is", "was", "are", "I", "you", "we", "they", "it", "to", "of", "in", "on", "for", "with", "at",
    "my", "your", "this", "that", "and",
]  # fmt: skip
_COMMON = [
    "just", "get", "got", "going", "go", "today", "now", "new", "time", "day", "people", "know", "think", "see",
    "want", "one", "all", "what", "when", "how", "out", "up", "about", "more", "back", "still", "year", "last",
    "week", "night", "home", "work", "game", "show", "team", "city", "world", "news", "live", "watch", "video",
    "read", "thread", "check", "update", "vote", "house", "school", "music", "song", "movie", "phone", "app", "data",
    "via", "here", "there", "them", "me", "him", "her", "our", "their", "been", "being", "have", "has", "had",
    "will", "would", "could", "should", "can", "do", "does", "did", "make", "made", "say", "said",
]  # fmt: skip
_EMOTICONS = [":)", ":-(", ":(", ":D", ";)", ":P", "<3", ":/", ":'(", "xD", "XD", ":-)", "(:", "):", "=)", "^_^"]
_MULTI_EMOJI = ["☺️", "👍🏻", "❤️", "🇺🇸", "👨‍👩‍👧"]  # several code points: VADER never matches these
_NON_ENGLISH = [
    "c'est", "génial", "très", "mauvais", "muy", "bueno", "schön", "nicht", "хорошо", "плохо", "素晴らしい",
    "悪い", "رائع", "İstanbul", "ΣΟΦΙΑ", "straße", "naïve",
]  # fmt: skip
_PUNCT = ["!", "!!", "!!!", "!!!!!", "?", "??", "???", "????", "?!", ".", "...", ",", ";", ":", "-", '"', "'", "*"]
_ODD_SPACES = ["  ", "\t", "\n", " \u00a0 ", "\u3000"]  # str.split() splits on all of them


def _random_token(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.25:
        return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(1, 9)))
    if kind < 0.35:
        return "@" + "".join(rng.choice(string.ascii_letters + string.digits + "_") for _ in range(rng.randint(3, 12)))
    if kind < 0.45:
        return "#" + rng.choice(["love", "fail", "happy", "news", "Python", "sad", "win", "LOL", "tbt"])
    if kind < 0.55:
        return "https://t.co/" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(10))
    if kind < 0.62:
        return str(rng.randint(0, 100000))
    if kind < 0.66:
        return rng.choice(_NON_ENGLISH)
    return rng.choice(_COMMON)


@dataclass(frozen=True)
class Mix:
    """How a corpus kind draws its words: relative weight of each pool, and how often words are decorated."""

    weights: dict[str, float]
    upper: float  # share of words in ALL CAPS
    capitalized: float
    punctuated: float  # share of words with punctuation after them ("good!!!")
    glued_emoji: float  # share of words with an emoji right after them ("good💘")
    odd_spaces: float  # share of gaps that are not one plain space


MIXES = {
    # Packs VADER's rules together: for equality tests, where every rule and quirk must be exercised.
    "rules": Mix(
        weights={"lexicon": 28, "booster": 10, "negation": 8, "rule": 8, "idiom": 3, "emoji": 5, "emoticon": 3,
                 "stopword": 15, "other": 20},
        upper=0.12, capitalized=0.05, punctuated=0.15, glued_emoji=0.03, odd_spaces=0.25,
    ),
    # Closer to real tweets: mostly stopwords, common words, mentions, hashtags and links.
    "tweets": Mix(
        weights={"lexicon": 12, "booster": 2, "negation": 1.5, "rule": 1, "idiom": 0.2, "emoji": 1.5,
                 "emoticon": 0.5, "stopword": 30, "other": 51.3},
        upper=0.03, capitalized=0.08, punctuated=0.08, glued_emoji=0.005, odd_spaces=0.02,
    ),
}  # fmt: skip


class TextMaker:
    """Seeded random tweet-like texts of one ``Mix``; ``texts()`` adds exact duplicates (retweets)."""

    def __init__(self, seed: int, mix: Mix = MIXES["rules"]) -> None:
        self.rng = random.Random(seed)
        self.mix = mix
        analyzer = SentimentIntensityAnalyzer()
        self.single_emojis = sorted(emoji for emoji in analyzer.emojis if len(emoji) == 1)
        self.pools: dict[str, list[str]] = {
            "lexicon": sorted(analyzer.lexicon),
            "booster": sorted(BOOSTER_DICT),
            "negation": sorted(NEGATE),
            "rule": _RULE_WORDS,
            "idiom": _IDIOMS,
            # 1 in 10 emoji has several code points: VADER never replaces those.
            "emoji": self.single_emojis * 9 + _MULTI_EMOJI * (len(self.single_emojis) // len(_MULTI_EMOJI)),
            "emoticon": _EMOTICONS,
            "stopword": _STOPWORDS,
        }
        self.kinds = list(mix.weights)
        self.weights = list(mix.weights.values())

    def _word(self) -> str:
        rng = self.rng
        mix = self.mix
        kind = rng.choices(self.kinds, self.weights)[0]
        word = _random_token(rng) if kind == "other" else rng.choice(self.pools[kind])
        shape = rng.random()
        if shape < mix.upper:
            word = word.upper()
        elif shape < mix.upper + mix.capitalized:
            word = word.capitalize()
        if rng.random() < mix.punctuated:
            word = word + rng.choice(_PUNCT)
        if rng.random() < mix.punctuated / 4:
            word = rng.choice(_PUNCT) + word
        if rng.random() < mix.glued_emoji:
            word = word + rng.choice(self.single_emojis)
        return word

    def text(self) -> str:
        rng = self.rng
        shape = rng.random()
        if shape < 0.01:
            return rng.choice(["", " ", "\n\t ", "!!!", "???", ":)", ":-(", rng.choice(self.single_emojis)])
        count = rng.randint(1, 6) if shape < 0.2 else rng.randint(5, 30)
        parts = []
        for _ in range(count):
            parts.append(self._word())
            parts.append(rng.choice(_ODD_SPACES) if rng.random() < self.mix.odd_spaces else " ")
        text = "".join(parts)
        if rng.random() < 0.02:
            text = text.upper()  # all caps: no caps differential
        if rng.random() < 0.1:
            text = "RT @" + rng.choice(["nasa", "bbc", "user_1", "CNN"]) + ": " + text
        return text

    def texts(self, count: int, duplicate_share: float = 0.0) -> list[str]:
        texts: list[str] = []
        for _ in range(count):
            if texts and self.rng.random() < duplicate_share:
                texts.append(self.rng.choice(texts))
            else:
                texts.append(self.text())
        return texts


def _time_theirs(analyzer: SentimentIntensityAnalyzer, texts: list[str]) -> tuple[float, list[float]]:
    started = time.perf_counter()
    scores = [analyzer.polarity_scores(text)["compound"] for text in texts]
    return time.perf_counter() - started, scores


def _time_ours(texts: list[str]) -> tuple[float, list[float]]:
    clear_cache()  # each run starts cold, like a fresh worker: no token remembered from the previous run
    started = time.perf_counter()
    scores = compound_scores(texts)
    return time.perf_counter() - started, scores


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench sentiment", description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=50_000, help="texts per corpus (default 50000)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each scorer per corpus (default 3)")
    parser.add_argument("--seed", type=int, default=20240601, help="corpus RNG seed")
    args = parser.parse_args(argv)

    analyzer = SentimentIntensityAnalyzer()
    compound_scores(["warm up: load the tables"])  # table loading is a one-off, not per text
    corpora: dict[str, list[str]] = {}
    for mix_name in ("tweets", "rules"):
        maker = TextMaker(args.seed, MIXES[mix_name])
        for share in (0.2, 0.0):
            corpora[f"{mix_name}, {share:.0%} dup"] = maker.texts(args.texts, share)

    print(f"{args.texts} texts per corpus, {args.runs} runs of each scorer; µs per text as median (best)")
    print('"tweets": tweet-like word mix; "rules": dense in negations, boosters, idioms, caps, emoji')
    columns = f"{'corpus':17} {'distinct':>8} {'chars':>6} {'vader µs':>15} {'ours µs':>15} {'speedup':>8}"
    header = f"{columns} {'max |diff|':>10}"
    print(header)
    print("-" * len(header))
    for name, texts in corpora.items():
        theirs_times: list[float] = []
        ours_times: list[float] = []
        max_diff = 0.0
        for _ in range(args.runs):
            theirs_seconds, theirs = _time_theirs(analyzer, texts)
            ours_seconds, ours = _time_ours(texts)
            theirs_times.append(theirs_seconds)
            ours_times.append(ours_seconds)
            max_diff = max(max_diff, max(abs(a - b) for a, b in zip(theirs, ours, strict=True)))
        per_text = 1e6 / len(texts)
        theirs_median, ours_median = statistics.median(theirs_times), statistics.median(ours_times)
        theirs_cell = f"{theirs_median * per_text:.2f} ({min(theirs_times) * per_text:.2f})"
        ours_cell = f"{ours_median * per_text:.2f} ({min(ours_times) * per_text:.2f})"
        mean_length = statistics.fmean(len(text) for text in texts)
        print(
            f"{name:17} {len(set(texts)):>8} {mean_length:>6.1f} {theirs_cell:>15} {ours_cell:>15} "
            f"{theirs_median / ours_median:>7.2f}x {max_diff:>10.3g}"
        )
    return 0
