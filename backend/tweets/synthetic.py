"""A synthetic tweet stream: realistic X API v2 envelopes, fast, deterministic per seed.

Authors, Zipf-distributed hashtags, languages and retweet, reply and quote shares close to X's public stream, and
texts from sentiment-bearing phrases; everything but the timestamps follows from the seed. A tweet is one f-string
of JSON pieces escaped once up front, so the generator is not the producer's bottleneck: docs/design.md.
"""

from __future__ import annotations

import bisect
import json
import random
import time
from datetime import UTC, datetime
from typing import Any

# Shares of tweet languages, roughly those of X's public sample stream.
LANGUAGE_SHARES: dict[str, float] = {
    "en": 0.40,
    "ja": 0.14,
    "es": 0.09,
    "pt": 0.06,
    "ar": 0.05,
    "und": 0.05,
    "ko": 0.04,
    "fr": 0.04,
    "tr": 0.03,
    "in": 0.03,
    "de": 0.03,
    "th": 0.02,
    "it": 0.02,
}
# Shares of tweet kinds (the rest are original tweets).
RETWEET_SHARE = 0.33
REPLY_SHARE = 0.17
QUOTE_SHARE = 0.05

_POSITIVE = [
    "I love this",
    "this is great",
    "really good news",
    "so happy with it",
    "awesome work by the team",
    "best release so far",
    "amazing results",
    "very excited about",
    "thanks, it works perfectly",
    "what a nice surprise",
    "brilliant idea",
    "super helpful",
]
_NEGATIVE = [
    "I hate this",
    "this is terrible",
    "really bad news",
    "so sad about it",
    "awful experience again",
    "worst update ever",
    "disappointing results",
    "very angry about",
    "it failed again, broken",
    "what a horrible mess",
    "stupid mistake",
    "not good at all",
]
_NEUTRAL = [
    "just read about",
    "new post on",
    "a thread on",
    "notes from today on",
    "looking into",
    "some thoughts on",
    "live now:",
    "meeting about",
    "the docs for",
    "a question about",
]
_TOPICS = [
    "the new cluster",
    "Kafka topics",
    "stream processing",
    "the Spark job",
    "cloud costs",
    "the keynote",
    "our data pipeline",
    "the outage",
    "the release",
    "machine learning",
    "the football match",
    "the new phone",
    "the weather",
    "the election",
    "the concert",
]
_BOOSTERS = ["", "", "", "", "really ", "very ", "extremely ", "kind of ", "not "]
_ENDINGS = ["", "", "", "!", "!!", "?", " :)", " :(", " \U0001f600", " \U0001f622", "."]
# A few native phrases per language: X's stream is not all English (VADER scores them ~0).
_NATIVE: dict[str, list[str]] = {
    "ja": ["今日はいい天気ですね", "新しいリリースを試した", "会議中です", "ありがとうございます"],
    "es": ["qué buen día", "nueva versión disponible", "hablando de datos", "me encanta esto"],
    "pt": ["bom dia a todos", "nova versão lançada", "falando sobre dados", "que jogo incrível"],
    "ar": ["صباح الخير", "إصدار جديد", "شكرا لكم"],
    "ko": ["좋은 아침입니다", "새로운 버전", "감사합니다"],
    "fr": ["bonne journée à tous", "nouvelle version disponible", "on parle de données"],
    "tr": ["merhaba dünya", "yeni sürüm", "teşekkürler"],
    "in": ["selamat pagi semua", "versi baru sudah rilis", "terima kasih"],
    "de": ["guten Morgen zusammen", "neue Version verfügbar", "wir reden über Daten"],
    "th": ["สวัสดีตอนเช้า", "เวอร์ชันใหม่", "ขอบคุณครับ"],
    "it": ["buongiorno a tutti", "nuova versione disponibile", "parliamo di dati"],
    "und": ["\U0001f440", "\U0001f525\U0001f525", "+1", "..."],
}
_HASHTAG_WORDS = [
    "Azure", "Kafka", "Spark", "BigData", "AI", "DataEngineering", "Cloud", "Python", "DevOps",
    "MachineLearning", "Streaming", "News", "Music", "Football", "Gaming", "Crypto", "Tech",
    "Databricks", "OpenSource", "Security", "Weather", "Election", "Movies", "Travel", "Food",
]  # fmt: skip
_N_HASHTAGS = 2000  # the long tail: generated names after the well-known ones
_ZIPF_EXPONENT = 1.1
_HASHTAG_COUNT_SHARES = [0.45, 0.30, 0.15, 0.10]  # 0, 1, 2 or 3 hashtags in a tweet

# Where the ids of a seed begin: tweet-like 19-digit ids, a block of 10**12 per seed.
_ID_BASE = 1_800_000_000_000_000_000
_ID_BLOCK = 1_000_000_000_000

MALFORMED_KINDS = ("not_json", "truncated_json", "wrong_types", "missing_id", "invalid_utf8", "oversize")
OVERSIZE_BYTES = 1_000_000  # above the consumer's limit on one tweet, within Kafka's default 1 MB


def rfc3339(moment: datetime) -> str:
    """``moment`` in UTC as X writes times: ``2026-11-27T18:00:00.123Z`` (naive means UTC)."""
    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _json_str(text: str) -> str:
    """``text`` as a JSON string literal (quotes included), escaped once."""
    return json.dumps(text, ensure_ascii=False)


def _cumulative(weights: list[float]) -> list[float]:
    total, out = 0.0, []
    for weight in weights:
        total += weight
        out.append(total)
    return [c / total for c in out]


class SyntheticTweets:
    """An endless, seeded source of realistic tweets in the v2 envelope shape."""

    def __init__(self, seed: int = 0, authors: int = 3000) -> None:
        if authors < 1:
            raise ValueError("authors must be at least 1")
        self.seed = seed
        self._rng = random.Random(seed)
        self._next_id = _ID_BASE + (seed % 1_000_000) * _ID_BLOCK
        self._clock_second = -1
        self._clock_prefix = ""
        rng = self._rng

        # Authors: id, username and the JSON of their user object, escaped once.
        self._authors: list[tuple[str, str, str]] = []
        for index in range(authors):
            user_id = str(1_000_000 + seed * 10_000 + index * 7919)
            username = f"user_{index}_{rng.randrange(36**3):x}"
            followers = int(rng.paretovariate(1.2) * 50)
            user = {
                "id": user_id,
                "name": f"User {index}",
                "username": username,
                "created_at": f"20{rng.randrange(8, 26):02d}-0{rng.randrange(1, 10)}-1{rng.randrange(10)}T12:00:00Z",
                "verified": rng.random() < 0.02,
                "public_metrics": {
                    "followers_count": followers,
                    "following_count": rng.randrange(0, 2000),
                    "tweet_count": rng.randrange(1, 50_000),
                    "listed_count": rng.randrange(0, 50),
                },
            }
            self._authors.append((user_id, username, json.dumps(user, ensure_ascii=False, separators=(",", ":"))))

        # Hashtags, most popular first, with Zipf weights.
        names = _HASHTAG_WORDS + [f"topic{n}" for n in range(_N_HASHTAGS - len(_HASHTAG_WORDS))]
        self._hashtags = names
        self._hashtag_cumulative = _cumulative([1.0 / (rank**_ZIPF_EXPONENT) for rank in range(1, len(names) + 1)])
        self._languages = list(LANGUAGE_SHARES)
        self._language_cumulative = _cumulative(list(LANGUAGE_SHARES.values()))
        self._hashtag_count_cumulative = _cumulative(_HASHTAG_COUNT_SHARES)
        self.sent = 0

    # -- the fast path -------------------------------------------------------------------

    def _now_rfc3339(self) -> str:
        now = time.time()
        second = int(now)
        if second != self._clock_second:  # strftime once a second, not once a tweet
            self._clock_second = second
            self._clock_prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._clock_prefix}.{int((now - second) * 1000):03d}Z"

    def _pick(self, cumulative: list[float]) -> int:
        return bisect.bisect_right(cumulative, self._rng.random() * 0.999999999)

    def _text(self, lang: str) -> str:
        """A tweet text (not yet JSON-escaped) in ``lang``."""
        r = self._rng.random
        if lang == "en":
            mood = r()
            phrases = _POSITIVE if mood < 0.4 else _NEGATIVE if mood < 0.7 else _NEUTRAL
            phrase = phrases[int(r() * len(phrases))]
            booster = _BOOSTERS[int(r() * len(_BOOSTERS))]
            topic = _TOPICS[int(r() * len(_TOPICS))]
            ending = _ENDINGS[int(r() * len(_ENDINGS))]
            return f"{booster}{phrase} {topic}{ending}" if booster else f"{phrase} {topic}{ending}"
        natives = _NATIVE.get(lang, _NEUTRAL)
        return natives[int(r() * len(natives))]

    def tweet_json(self, created_at: str | None = None) -> tuple[str, str]:
        """The next tweet as (id, the envelope's JSON text). ``created_at``: RFC 3339, else now."""
        r = self._rng.random
        tweet_id = str(self._next_id)
        self._next_id += 1
        self.sent += 1
        author_id, _username, user_json = self._authors[int(r() * len(self._authors))]
        lang = self._languages[self._pick(self._language_cumulative)]
        text = self._text(lang)

        # Hashtags go at the end of the text; offsets are in characters, as X counts them.
        hashtags: list[tuple[int, str]] = []  # (start, tag)
        for _ in range(self._pick(self._hashtag_count_cumulative)):
            tag = self._hashtags[self._pick(self._hashtag_cumulative)]
            hashtags.append((len(text) + 1, tag))
            text = f"{text} #{tag}"

        kind = r()
        mentions = ""
        references = ""
        other_id = str(self._next_id - 2 - int(r() * 5000))
        if kind < RETWEET_SHARE + REPLY_SHARE:
            # Retweets and replies name the other author first: the hashtags move right.
            other_name = self._authors[int(r() * len(self._authors))][1]
            retweet = kind < RETWEET_SHARE
            prefix = f"RT @{other_name}: " if retweet else f"@{other_name} "
            text = prefix + text
            hashtags = [(start + len(prefix), tag) for start, tag in hashtags]
            start = 3 if retweet else 0
            mentions = f'"mentions":[{{"start":{start},"end":{start + 1 + len(other_name)},"username":"{other_name}"}}]'
            reference = "retweeted" if retweet else "replied_to"
            references = f',"referenced_tweets":[{{"type":"{reference}","id":"{other_id}"}}]'
        elif kind < RETWEET_SHARE + REPLY_SHARE + QUOTE_SHARE:
            text = f"{text} https://t.co/q{other_id[-8:]}"
            references = f',"referenced_tweets":[{{"type":"quoted","id":"{other_id}"}}]'

        entities = ""
        if hashtags or mentions:
            parts = []
            if hashtags:
                items = ",".join(f'{{"start":{s},"end":{s + 1 + len(t)},"tag":"{t}"}}' for s, t in hashtags)
                parts.append(f'"hashtags":[{items}]')
            if mentions:
                parts.append(mentions)
            entities = f',"entities":{{{",".join(parts)}}}'
        created = created_at or self._now_rfc3339()
        value = (
            f'{{"data":{{"id":"{tweet_id}","text":{_json_str(text)},"created_at":"{created}",'
            f'"author_id":"{author_id}","lang":"{lang}"{entities}{references},'
            f'"edit_history_tweet_ids":["{tweet_id}"]}},"includes":{{"users":[{user_json}]}}}}'
        )
        return tweet_id, value

    # -- conveniences for tests and other callers -----------------------------------------

    def tweet(self, created_at: datetime | None = None) -> dict[str, Any]:
        """The next tweet as a dict (slower than :meth:`tweet_json`; for tests)."""
        _id, value = self.tweet_json(rfc3339(created_at) if created_at is not None else None)
        return json.loads(value)

    def malformed(self) -> tuple[bytes | None, bytes, str]:
        """One deliberately broken message: (key, value, kind), for testing the consumer."""
        r = self._rng.random
        kind = MALFORMED_KINDS[int(r() * len(MALFORMED_KINDS))]
        tweet_id, value = self.tweet_json()
        key: bytes | None = tweet_id.encode()
        if kind == "not_json":
            body = f"tweet {tweet_id} <html>not json</html>".encode()
        elif kind == "truncated_json":
            body = value.encode()[: max(10, len(value) // 2)]
        elif kind == "wrong_types":
            body = json.dumps({"data": {"id": int(tweet_id), "text": ["not", "a", "string"], "lang": 7}}).encode()
        elif kind == "missing_id":
            key = None
            body = json.dumps({"data": {"text": "a tweet without an id"}, "includes": {}}).encode()
        elif kind == "invalid_utf8":
            body = b'{"data":{"id":"' + tweet_id.encode() + b'","text":"bad \xff\xfe bytes"}}'
        else:  # oversize: valid JSON, but far larger than any real tweet
            padding = "x" * (OVERSIZE_BYTES - 200)
            body = json.dumps({"data": {"id": tweet_id, "text": padding}}).encode()
        return key, body, kind
