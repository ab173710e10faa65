"""backend.tweets.sentiment must give vaderSentiment's own compound scores, float for float."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator

import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from backend.tweets import sentiment
from backend.tweets.sentiment import compound_score, compound_scores
from bench.sentiment import MIXES, TextMaker
from tests.support import TWEET_PAYLOADS

# The examples in vaderSentiment.py's __main__ block (the ones its README shows).
README_SENTENCES = [
    "VADER is smart, handsome, and funny.",
    "VADER is smart, handsome, and funny!",
    "VADER is very smart, handsome, and funny.",
    "VADER is VERY SMART, handsome, and FUNNY.",
    "VADER is VERY SMART, handsome, and FUNNY!!!",
    "VADER is VERY SMART, uber handsome, and FRIGGIN FUNNY!!!",
    "VADER is not smart, handsome, nor funny.",
    "The book was good.",
    "At least it isn't a horrible book.",
    "The book was only kind of good.",
    "The plot was good, but the characters are uncompelling and the dialog is not great.",
    "Today SUX!",
    "Today only kinda sux! But I'll get by, lol",
    "Make sure you :) or :D today!",
    "Catch utf-8 emoji such as 💘 and 💋 and 😁",
    "Not bad at all",
    "Sentiment analysis has never been good.",
    "Sentiment analysis has never been this good!",
    "Most automated sentiment analysis tools are shit.",
    "With VADER, sentiment analysis is the shit!",
    "Other sentiment analysis tools can be quite bad.",
    "On the other hand, VADER is quite bad ass",
    "VADER is such a badass!",
    "Without a doubt, excellent idea.",
    "Roger Dodger is one of the most compelling variations on this theme.",
    "Roger Dodger is at least compelling as a variation on the theme.",
    "Roger Dodger is one of the least compelling variations on this theme.",
    "Not such a badass after all.",
    "Without a doubt, an excellent idea.",
    "It was one of the worst movies I've seen, despite good reviews. Unbelievably bad acting!! Poor direction. "
    "VERY poor production. The movie was bad. Very bad movie. VERY BAD movie!",
    "It was one of the worst movies I've seen, despite good reviews.",
    "Unbelievably bad acting!!",
    "Poor direction.",
    "VERY poor production.",
    "The movie was bad.",
    "Very bad movie.",
    "VERY BAD movie!",
    *["balloons", "cake", "candles", "happy birthday", "friends", "laughing", "smiling", "party"],
    *["riot", "fire", "fight", "blood", "mob", "war", "police", "tear gas"],
    "I'm surprised to see just how amazingly helpful VADER is!",
    "Je suis surpris de voir comment VADER est incroyablement utile !",
    "Ich bin überrascht zu sehen, nur wie erstaunlich nützlich VADER!",
    "Me sorprende ver sólo cómo increíblemente útil VADER!",
    "Sono sorpreso di vedere solo come incredibilmente utile VADER è!",
    "Я удивлен увидеть, как раз как удивительно полезно ВЕЙДЕРА!",
    "私はちょうどどのように驚くほど役に立つベイダーを見て驚いています!",
    "أنا مندهش لرؤية فقط كيف مثير للدهشة فيدر فائدة!",
    "我很惊讶地看到VADER是如此有用!",
    "我很驚訝地看到VADER是如此有用!",
]

# Texts aimed at one rule each (and at its quirks: the comments say what VADER really does).
RULE_TEXTS: dict[str, list[str]] = {
    "negation": [
        "this is not good", "this isn't good at all", "it is not really that good", "not bad", "NOT BAD",
        "I don't think it is good", "it ain't great", "he never was a good man", "nothing good happens",
        "we saw it without good reason", "hardly good", "it wasnt good", "couldn't be better", "Isn't it lovely",
        "it's uh-uh good", "rarely good, seldom great, despite nice", "I can't, I won't, I love it",
        "Not good. Not bad. Not happy.", "not not not good", "neither good nor bad",
        # Words with "n't" that NEGATE does not list negate too.
        "it mayn't be good", "that couldn't've been good", "he wouldn't've liked it", "you DIDN'T care",
    ],
    "no": [
        "no good", "no", "No.", "no no no", "there is no problem", "no love or hate", "no money or nor fun",
        "no friends or good times", "I said NO good ideas here",  # "NO" has valence 0 yet gets the caps bump
        "no!", "no way it is good", "good no", "no , good",
    ],
    "but": [
        "good but bad", "bad but good", "it was great but", "but it was great", "nice nice but nice nice",
        "The food was good, but the service was terrible and slow", "good BUT bad", "good but bad but good",
        "ty but fyi",  # ty (1.6) halves to 0.8 = fyi, so fyi's lookup finds ty's slot: VADER halves it twice
        "fyi but ty", "ok ok but ok ok", "lol lol but lol", "but", "but but but good",
    ],
    "boosters": [
        "very good", "VERY good", "very GOOD", "extremely bad", "slightly good", "barely bad", "so good",
        "really really really good", "the most amazing day", "it is so very incredibly good", "kinda good",
        "sorta bad", "kind-of good", "kindof nice", "somewhat really good", "totally FUCKING AWESOME", "uber",
        "very", "it's very, very bad", "we were really not very happy", "Super EXTREMELY SLIGHTLY good",
    ],
    "caps": [
        "GOOD", "GOOD day", "this is GOOD", "THIS IS GOOD", "this is GOOD!!!", "I HATE mondays",
        "HATE HATE hate", "I am SO HAPPY", "A b C", "OK", "ok", "Ok!!", "UGH", "NOT GOOD at ALL",
    ],
    "exclamation": [
        "good!", "good!!", "good!!!", "good!!!!", "good!!!!!!!!!!", "bad!!!", "!!!", "good ! ! ! ! !",
        "meh!!!", "a!b!c good",
    ],
    "question": [
        "good?", "good??", "good???", "good????", "good?????????", "bad??", "??", "good ? ? ?", "good?!?!",
        "is it good or bad???",
    ],
    "kind of": [
        "The book was only kind of good.", "kind of", "it was kind of bad", "kind", "so kind", "kind of kind",
        "a kind person", "KIND OF good", "kind of, good", "it was sort of good", "just enough good",
        "this is kind of the best thing", "what kind of good idea",
    ],
    "least": [
        "least good", "the least good film", "at least good", "very least good", "at the least good",
        "Roger Dodger is one of the least compelling variations on this theme.", "LEAST good", "least, good",
        "this is the least", "least",
    ],
    "never so this": [
        "never so good", "never this good", "never good", "it was never so very good", "we saw this good film",
        "we all saw this good film",  # "this" right before a word scales it by 1.25 (VADER's and/or precedence)
        "I have so good", "and so it was so good", "without doubt good", "without a doubt good",
        "without any doubt good", "I was without doubt, good",
    ],
    "idioms": [
        "the shit", "this movie is the shit", "this movie is the bomb", "bad ass", "what a bad ass car",
        "my new car is bad ass", "yeah right", "oh sure yeah right", "what a kiss of death", "my car is to die for",
        "oh this is to die for", "a beating heart", "I felt my beating heart", "we wait at the bus stop",
        "we wait at the bus stop happily", "cut the mustard", "hand to mouth", "this movie is THE SHIT",
        "I am in the red", "on the ball", "under the weather", "upper hand",
    ],
    "emoji": [
        "💘", "💘💋😁", "love 💘", "love💘", "💘love", "💘 love", "good 🔛",  # "🔛" reads "ON! arrow": one more "!"
        "😁😁😁 so happy", "😡 angry", "😢😢", "I 💔 you", "👍🏻 ok", "☺️ smile", "☹ frown", "🇺🇸 yay", "a © b ®",
        "😁!", "😁?? 😁??", "  😁  ", "\t😁\n", "x😁y😁z",
    ],
    "emoticons": [
        ":)", ":-(", ":(", ":D", ":P", "<3", "</3", ":'(", ";)", "):", "(:", ":-)", "=)", "xD", "XD", "^_^",
        "good :)", "bad :(", ":) :) :)", "I am happy :-)", "so sad :'( :'(", ":-))", ":)!!!", "((:",
    ],
    "urls mentions hashtags": [
        "https://t.co/abcDEF123 good", "check https://example.com/great-stuff", "@happy_user hello",
        "@sad hi", "#love #hate", "#LOVE it", "RT @nasa: what a great launch! https://t.co/xyz #space",
        "http://good.com", "www.bad.com/love", "email me at good@bad.com", "@user @user2 @user3 lol",
    ],
    "non-english": [
        "C'est génial !", "très bien", "Das ist nicht gut", "muy bueno", "очень хорошо", "ΣΟΦΙΑ ΚΑΛΑ",
        "İstanbul güzel", "straße", "素晴らしい", "최고", "naïve", "café au lait", "LOL Ñandú", "ǅemal good",
    ],
    "punctuation tokens": [
        "ok!", "...good...", "'good'", '"good"', "(good)", "--good--", "g!", "!!good!!", "good,bad", "good.bad",
        ".", "-", "a", "I'm good", "i'm", "ok.", "no.", "x", ":", ";-;", "<3<3", "..:)..",
    ],
    "whitespace": [" ", "  ", "\n", "\t\n ", "\u3000", "\u00a0", "good\u00a0bad", "\u2003good\u2003", " good "],
}  # fmt: skip


def _long_text() -> str:
    # About 6 000 words, with every rule firing over and over ("but" many times: only the first counts).
    return "I really love this but not the bad parts, it is SO good!!! never this good :) 💘 kind of ok " * 300


@pytest.fixture(scope="module")
def vader() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()


def _assert_same_as_vader(vader: SentimentIntensityAnalyzer, texts: list[str]) -> None:
    ours = compound_scores(texts)
    assert len(ours) == len(texts)
    differ = [
        (text, score, vader.polarity_scores(text)["compound"])
        for text, score in zip(texts, ours, strict=True)
        if score != vader.polarity_scores(text)["compound"]
    ]
    assert differ == [], f"{len(differ)} of {len(texts)} differ from VADER, e.g. (text, ours, VADER): {differ[:5]}"


def test_readme_examples(vader: SentimentIntensityAnalyzer) -> None:
    _assert_same_as_vader(vader, README_SENTENCES)
    for text in README_SENTENCES:
        assert compound_score(text) == vader.polarity_scores(text)["compound"], text


@pytest.mark.parametrize("rule", RULE_TEXTS)
def test_rule_texts(vader: SentimentIntensityAnalyzer, rule: str) -> None:
    texts = RULE_TEXTS[rule]
    _assert_same_as_vader(vader, texts)
    # Each rule's texts together, as one text, so that rules interact across them.
    _assert_same_as_vader(vader, [" ".join(texts), "\n".join(texts)])


def test_very_long_text(vader: SentimentIntensityAnalyzer) -> None:
    text = _long_text()
    _assert_same_as_vader(vader, [text, text.upper(), text.replace(" but ", " and ")])


@pytest.mark.parametrize("mix", ["rules", "tweets"])
def test_generated_corpus(vader: SentimentIntensityAnalyzer, mix: str) -> None:
    texts = TextMaker(seed=1729, mix=MIXES[mix]).texts(12_000, duplicate_share=0.1)
    assert len(set(texts)) > 10_000
    _assert_same_as_vader(vader, texts)


def test_odd_unicode(vader: SentimentIntensityAnalyzer) -> None:
    # Characters whose case mapping or splitting is unusual, glued together at random.
    rng = random.Random(99)
    emojis = sorted(emoji for emoji in vader.emojis if len(emoji) == 1)
    pieces = [
        " ", "\u00a0", "\u2028", "\x1c", "\u200b", "\u200d", "\ufe0f", "İ", "İyi", "Σ", "ΑΣ.", "ς", "ß", "ﬁne",
        "\ud800", "'", "n't", "N'T", "!", "?", ".", ",", "the", "so", "this", "no", "or", "but", "least", "kind", "of",
        "good", "BAD", ":)", "🔛", "☺", "\U0001f3fb", "\U0001fae0",
    ]  # fmt: skip
    texts = []
    for _ in range(5_000):
        parts = [rng.choice(emojis) if rng.random() < 0.1 else rng.choice(pieces) for _ in range(rng.randint(0, 25))]
        text = rng.choice([" ", "", "  "]).join(parts)
        texts.append(text.upper() if rng.random() < 0.2 else text)
    _assert_same_as_vader(vader, texts)


def test_generated_corpus_with_a_tiny_word_cache(vader: SentimentIntensityAnalyzer, monkeypatch) -> None:
    # The token cache is cleared whenever it fills; scores must not depend on what it holds.
    monkeypatch.setattr(sentiment, "_WORD_CACHE_SIZE", 7)
    monkeypatch.setattr(sentiment, "_word_cache", {})
    texts = TextMaker(seed=7, mix=MIXES["rules"]).texts(2_000)
    _assert_same_as_vader(vader, texts)
    assert 0 < len(sentiment._word_cache) <= 7
    sentiment.clear_cache()
    assert sentiment._word_cache == {}
    _assert_same_as_vader(vader, texts[:100])


def _real_texts() -> Iterator[str]:
    with (TWEET_PAYLOADS / "v1_statuses.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                status = json.loads(line)
                for item in (status, status.get("retweeted_status"), status.get("quoted_status")):
                    if item:
                        yield item.get("full_text") or item["text"]
    with (TWEET_PAYLOADS / "v2_tweets.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                envelope = json.loads(line)
                yield envelope["data"]["text"]
                for tweet in envelope.get("includes", {}).get("tweets", []):
                    yield tweet["text"]


def test_real_tweets(vader: SentimentIntensityAnalyzer) -> None:
    texts = list(_real_texts())
    assert len(texts) >= 73 + 112
    _assert_same_as_vader(vader, texts)


def test_none_and_empty_give_zero() -> None:
    assert compound_score(None) == 0.0
    assert compound_score("") == 0.0
    assert compound_score("   \n") == 0.0
    assert compound_scores([None, "", " "]) == [0.0, 0.0, 0.0]
    assert compound_scores([]) == []


def test_order_and_duplicates(vader: SentimentIntensityAnalyzer) -> None:
    texts = ["good", None, "bad", "good", "", "VERY good!!!", "bad", "meh", "good"]
    expected = [vader.polarity_scores(text)["compound"] if text else 0.0 for text in texts]
    assert compound_scores(texts) == expected
    assert compound_scores(iter(texts)) == expected  # any iterable, read once
    assert compound_scores(reversed(texts)) == expected[::-1]
    assert [compound_score(text) for text in texts] == expected
    assert expected[0] > 0 > expected[2]  # the fixture itself is not all zeros


def test_each_distinct_text_is_scored_once(monkeypatch) -> None:
    scored: list[str] = []
    real_compound = sentiment._compound

    def counting_compound(text: str, tables: sentiment._Tables) -> float:
        scored.append(text)
        return real_compound(text, tables)

    monkeypatch.setattr(sentiment, "_compound", counting_compound)
    texts = ["RT @a: great news", "bad", "RT @a: great news", None, "bad", "", "RT @a: great news", "ok"]
    scores = compound_scores(texts)
    assert sorted(scored) == sorted(["RT @a: great news", "bad", "ok"])
    assert scores[0] == scores[2] == scores[6] and scores[1] == scores[4]
