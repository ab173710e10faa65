import json
from collections import Counter
from datetime import UTC, datetime

from backend.tweets.contract import contract_problem
from backend.tweets.synthetic import LANGUAGE_SHARES, MALFORMED_KINDS, OVERSIZE_BYTES, SyntheticTweets, rfc3339


def sample(seed: int, n: int) -> list[dict]:
    generator = SyntheticTweets(seed=seed)
    return [json.loads(generator.tweet_json()[1]) for _ in range(n)]


def test_every_tweet_keeps_the_contract_and_ids_are_unique():
    generator = SyntheticTweets(seed=3)
    ids = []
    for _ in range(5000):
        tweet_id, value = generator.tweet_json()
        assert contract_problem(value.encode()) is None, value
        assert json.loads(value)["data"]["id"] == tweet_id
        ids.append(tweet_id)
    assert len(set(ids)) == 5000


def test_same_seed_same_tweets_apart_from_times():
    stamp = "2026-01-01T00:00:00.000Z"
    first = SyntheticTweets(seed=11)
    second = SyntheticTweets(seed=11)
    assert [first.tweet_json(stamp) for _ in range(200)] == [second.tweet_json(stamp) for _ in range(200)]
    other = SyntheticTweets(seed=12)
    assert other.tweet_json(stamp)[0] != SyntheticTweets(seed=11).tweet_json(stamp)[0]


def test_created_at_is_now_in_utc_or_the_given_time():
    before = datetime.now(UTC)
    created = SyntheticTweets(seed=1).tweet()["data"]["created_at"]
    moment = datetime.fromisoformat(created.replace("Z", "+00:00"))
    assert abs((moment - before).total_seconds()) < 5
    assert created.endswith("Z") and len(created) == len("2026-11-27T18:00:00.123Z")
    given = datetime(2026, 3, 4, 5, 6, 7, 890_000, tzinfo=UTC)
    assert SyntheticTweets(seed=1).tweet(created_at=given)["data"]["created_at"] == "2026-03-04T05:06:07.890Z"
    assert rfc3339(datetime(2026, 3, 4, 5, 6, 7)) == "2026-03-04T05:06:07.000Z"


def test_entity_offsets_point_at_the_text():
    for envelope in sample(seed=4, n=3000):
        tweet = envelope["data"]
        for hashtag in tweet.get("entities", {}).get("hashtags", []):
            assert tweet["text"][hashtag["start"] : hashtag["end"]] == "#" + hashtag["tag"]
        for mention in tweet.get("entities", {}).get("mentions", []):
            assert tweet["text"][mention["start"] : mention["end"]] == "@" + mention["username"]
        assert [u["id"] for u in envelope["includes"]["users"]] == [tweet["author_id"]]


def test_the_stream_looks_like_x():
    tweets = [e["data"] for e in sample(seed=5, n=20_000)]
    languages = Counter(t["lang"] for t in tweets)
    for lang, share in LANGUAGE_SHARES.items():
        assert abs(languages[lang] / len(tweets) - share) < 0.02, (lang, languages[lang])
    kinds = Counter(r["type"] for t in tweets for r in t.get("referenced_tweets", []))
    assert 0.28 < kinds["retweeted"] / len(tweets) < 0.38
    assert 0.12 < kinds["replied_to"] / len(tweets) < 0.22
    assert 0.03 < kinds["quoted"] / len(tweets) < 0.07
    authors = Counter(t["author_id"] for t in tweets)
    assert 2000 < len(authors) <= 3000
    hashtags = Counter(h["tag"] for t in tweets for h in t.get("entities", {}).get("hashtags", []))
    ranked = [count for _tag, count in hashtags.most_common()]
    # Zipf: the top hashtag is far more common than the tenth, and there is a long tail.
    assert ranked[0] > 5 * ranked[9]
    assert len(hashtags) > 300


def test_texts_carry_sentiment_both_ways():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    scores = [analyzer.polarity_scores(e["data"]["text"])["compound"] for e in sample(seed=6, n=2000)]
    assert sum(s > 0.3 for s in scores) > 200
    assert sum(s < -0.3 for s in scores) > 200
    assert sum(s == 0 for s in scores) > 200


def test_malformed_values_break_the_contract_each_in_its_own_way():
    generator = SyntheticTweets(seed=7)
    seen = Counter()
    for _ in range(300):
        key, value, kind = generator.malformed()
        seen[kind] += 1
        assert contract_problem(value) is not None, kind
        if kind == "oversize":
            assert OVERSIZE_BYTES - 1000 < len(value) <= OVERSIZE_BYTES
        if kind == "missing_id":
            assert key is None
    assert set(seen) == set(MALFORMED_KINDS)
