"""The topic message contract (docs/design.md): key = tweet id, value = an X API v2 envelope.

``{"data": {...tweet...}, "includes": {"users": [...]}}`` whatever the source: an X API v1.1
status (an archive, an old search dump) is converted to that shape here. Pure functions,
no I/O: the producer and the tests share them.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

# No real tweet envelope comes near this (25 000 characters of text at most, plus the
# author): a larger value is refused by the consumer as oversize, never parsed.
MAX_MESSAGE_BYTES = 512 * 1024
REFERENCE_TYPES = ("retweeted", "quoted", "replied_to")
# created_at as RFC 3339 writes it (X: "2026-11-27T18:00:00.000Z"). One pattern that Python's
# re and Spark's (Java's) regular expressions read alike, so the producer, the tests and the
# consumer refuse the same values: datetime.fromisoformat and Spark's timestamp cast each
# accept other shapes too ("2026-11-27", "2026").
RFC3339_PATTERN = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})"
# Event times the windows can hold: from 1970 to the end of 9998 (a window's end, even a
# day long, stays a date Python and SQLite can write).
EVENT_TIME_MIN_MS = 0
EVENT_TIME_MAX_MS = 253_370_764_800_000  # 9999-01-01T00:00:00Z, excluded

_RFC3339 = re.compile(RFC3339_PATTERN)
_V1_TIME_FORMAT = "%a %b %d %H:%M:%S %z %Y"  # "Sat Jul 13 05:33:14 +0000 2019"


def encode_message(envelope: dict[str, Any]) -> tuple[bytes, bytes]:
    """The Kafka key (the tweet id, UTF-8) and value (compact JSON) of one envelope."""
    tweet_id = envelope["data"]["id"]
    value = json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))
    return str(tweet_id).encode(), value.encode()


def v1_time_to_rfc3339(text: str) -> str:
    """``Sat Jul 13 05:33:14 +0000 2019`` -> ``2019-07-13T05:33:14.000Z`` (v2's format, UTC)."""
    moment = datetime.strptime(text, _V1_TIME_FORMAT).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def is_v2_envelope(obj: Any) -> bool:
    return isinstance(obj, dict) and isinstance(obj.get("data"), dict) and isinstance(obj["data"].get("id"), str)


def is_v1_status(obj: Any) -> bool:
    """A v1.1 status: it has a numeric id with its string twin, or a v1 ``user`` object."""
    if not isinstance(obj, dict) or not isinstance(obj.get("text", obj.get("full_text")), str):
        return False
    return isinstance(obj.get("id_str"), str) or (isinstance(obj.get("id"), int) and isinstance(obj.get("user"), dict))


def _is_bare_v2_tweet(obj: Any) -> bool:
    """A v2 tweet object without its envelope (some dumps store ``data`` items one per line)."""
    return (
        isinstance(obj, dict)
        and isinstance(obj.get("id"), str)
        and isinstance(obj.get("text"), str)
        and "user" not in obj
        and "id_str" not in obj
    )


def with_full_text(tweet: dict[str, Any]) -> dict[str, Any]:
    """A long v2 Post with its whole text: X's ``text`` stops near 280 characters and ``note_tweet``
    holds the full text and its entities; those replace the cut ones (and ``note_tweet`` goes, so the
    text is not carried twice). Other Posts come back as they are."""
    note = tweet.get("note_tweet")
    if not isinstance(note, dict) or not isinstance(note.get("text"), str):
        return tweet
    full = {key: value for key, value in tweet.items() if key != "note_tweet"}
    full["text"] = note["text"]
    entities = tweet.get("entities") if isinstance(tweet.get("entities"), dict) else {}
    note_entities = note.get("entities") if isinstance(note.get("entities"), dict) else {}
    if entities or note_entities:
        full["entities"] = {**entities, **note_entities}  # the note's offsets are into its own text
    return full


def to_envelopes(obj: Any) -> list[dict[str, Any]]:
    """Every tweet in ``obj`` as a v2 envelope: a v2 envelope, a v2 page whose ``data`` is a
    list (recent search), a bare v2 tweet, or a v1.1 status. Anything else gives []."""
    if is_v2_envelope(obj):
        return [_narrow_includes(obj["data"], obj.get("includes"))]
    if isinstance(obj, dict) and isinstance(obj.get("data"), list):
        return [_narrow_includes(t, obj.get("includes")) for t in obj["data"] if _is_bare_v2_tweet(t)]
    if is_v1_status(obj):
        return [from_v1(obj)]
    if _is_bare_v2_tweet(obj):
        return [{"data": with_full_text(obj), "includes": {"users": []}}]
    return []


def to_envelope(obj: Any) -> dict[str, Any] | None:
    """The v2 envelope of one tweet (from v2 or v1.1), or None when ``obj`` is not one tweet."""
    envelopes = to_envelopes(obj)
    return envelopes[0] if len(envelopes) == 1 else None


def _narrow_includes(tweet: dict[str, Any], includes: Any) -> dict[str, Any]:
    """Keep only the tweet's author among ``includes.users`` (a page lists every author)."""
    users = includes.get("users", []) if isinstance(includes, dict) else []
    author_id = tweet.get("author_id")
    mine = [u for u in users if isinstance(u, dict) and u.get("id") == author_id] if author_id else []
    return {"data": with_full_text(tweet), "includes": {"users": mine}}


def from_v1(status: dict[str, Any]) -> dict[str, Any]:
    """Convert an X API v1.1 status to the v2 envelope shape.

    Mapped: id, text (the extended text when present), created_at, author_id, lang,
    entities (hashtags, mentions, urls with their offsets), referenced_tweets
    (retweeted, quoted, replied_to), public_metrics, conversation_id where v1.1 tells it,
    and the author into ``includes.users``.
    """
    extended = status.get("extended_tweet") if isinstance(status.get("extended_tweet"), dict) else {}
    text = extended.get("full_text") or status.get("full_text") or status.get("text") or ""
    entities_v1 = extended["entities"] if "entities" in extended else status.get("entities") or {}
    retweeted = status.get("retweeted_status") if isinstance(status.get("retweeted_status"), dict) else None

    tweet: dict[str, Any] = {"id": _id_str(status), "text": text}
    if isinstance(status.get("created_at"), str):
        tweet["created_at"] = v1_time_to_rfc3339(status["created_at"])
    user = status.get("user") if isinstance(status.get("user"), dict) else None
    if user is not None:
        tweet["author_id"] = _id_str(user)
    if isinstance(status.get("lang"), str) and status["lang"]:
        tweet["lang"] = status["lang"]

    entities = _entities_from_v1(entities_v1)
    if entities:
        tweet["entities"] = entities

    references = []
    if retweeted is not None:
        # As v2 gives a retweet: only [retweeted]. A v1.1 retweet of a quote tweet repeats the quoted
        # tweet's quoted_status_id_str and is_quote_status, but the quote is the retweeted tweet's.
        references.append({"type": "retweeted", "id": _id_str(retweeted)})
    else:
        if status.get("quoted_status_id_str"):
            references.append({"type": "quoted", "id": str(status["quoted_status_id_str"])})
        if status.get("in_reply_to_status_id_str"):
            references.append({"type": "replied_to", "id": str(status["in_reply_to_status_id_str"])})
    if references:
        tweet["referenced_tweets"] = references
    if status.get("in_reply_to_user_id_str"):
        tweet["in_reply_to_user_id"] = str(status["in_reply_to_user_id_str"])

    tweet["public_metrics"] = {
        "retweet_count": int(status.get("retweet_count") or 0),
        "reply_count": int(status.get("reply_count") or 0),
        "like_count": int(status.get("favorite_count") or 0),
        "quote_count": int(status.get("quote_count") or 0),
    }
    users = [_user_from_v1(user)] if user is not None else []
    return {"data": tweet, "includes": {"users": users}}


def _id_str(obj: dict[str, Any]) -> str:
    # v1.1 ids exceed 2**53: the string twin is exact where the number may not be.
    if isinstance(obj.get("id_str"), str):
        return obj["id_str"]
    return str(obj["id"])


def _entities_from_v1(entities: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    hashtags = [
        {"start": h["indices"][0], "end": h["indices"][1], "tag": h["text"]}
        for h in entities.get("hashtags") or []
        if isinstance(h, dict) and isinstance(h.get("text"), str) and _has_indices(h)
    ]
    if hashtags:
        out["hashtags"] = hashtags
    mentions = [
        {"start": m["indices"][0], "end": m["indices"][1], "username": m["screen_name"], "id": _id_str(m)}
        for m in entities.get("user_mentions") or []
        if isinstance(m, dict) and isinstance(m.get("screen_name"), str) and _has_indices(m)
    ]
    if mentions:
        out["mentions"] = mentions
    urls = [
        {
            "start": u["indices"][0],
            "end": u["indices"][1],
            "url": u.get("url"),
            "expanded_url": u.get("expanded_url"),
            "display_url": u.get("display_url"),
        }
        for u in (entities.get("urls") or []) + (entities.get("media") or [])
        if isinstance(u, dict) and _has_indices(u)
    ]
    if urls:
        out["urls"] = urls
    return out


def _has_indices(entity: dict[str, Any]) -> bool:
    indices = entity.get("indices")
    return isinstance(indices, list) and len(indices) == 2 and all(isinstance(i, int) for i in indices)


def _user_from_v1(user: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": _id_str(user),
        "name": user.get("name") or "",
        "username": user.get("screen_name") or "",
        "verified": bool(user.get("verified")),
        "public_metrics": {
            "followers_count": int(user.get("followers_count") or 0),
            "following_count": int(user.get("friends_count") or 0),
            "tweet_count": int(user.get("statuses_count") or 0),
            "listed_count": int(user.get("listed_count") or 0),
        },
    }
    if isinstance(user.get("created_at"), str):
        out["created_at"] = v1_time_to_rfc3339(user["created_at"])
    return out


def contract_problem(value: bytes) -> str | None:
    """Why ``value`` breaks the topic message contract, or None when it keeps it.

    The checks the consumer's explicit schema makes: JSON object, ``data.id`` a non-empty
    string, and the optional fields (text, created_at, author_id, lang, hashtags, mentions,
    referenced tweets) of the right types.
    """
    if len(value) > MAX_MESSAGE_BYTES:
        return f"oversize: {len(value)} bytes, more than {MAX_MESSAGE_BYTES}"
    try:
        obj = json.loads(value)
    except (UnicodeDecodeError, ValueError) as error:
        return f"not JSON: {error}"
    if not is_v2_envelope(obj) or not obj["data"]["id"]:
        return "no data.id string"
    tweet = obj["data"]
    for name in ("text", "created_at", "author_id", "lang"):
        if name in tweet and not isinstance(tweet[name], str):
            return f"data.{name} is not a string"
    if "created_at" in tweet:
        try:
            if not _RFC3339.fullmatch(tweet["created_at"]):
                raise ValueError("not the RFC 3339 shape")
            moment = datetime.fromisoformat(tweet["created_at"].replace("Z", "+00:00"))
        except ValueError:
            return "data.created_at is not RFC 3339"
        if not EVENT_TIME_MIN_MS <= moment.timestamp() * 1000 < EVENT_TIME_MAX_MS:
            return "data.created_at is out of range (1970 to 9998)"
    entities = tweet.get("entities", {})
    if not isinstance(entities, dict):
        return "data.entities is not an object"
    for kind, field in (("hashtags", "tag"), ("mentions", "username")):
        items = entities.get(kind, [])
        if not isinstance(items, list) or not all(isinstance(i, dict) and isinstance(i.get(field), str) for i in items):
            return f"data.entities.{kind} is malformed"
    references = tweet.get("referenced_tweets", [])
    if not isinstance(references, list) or not all(
        isinstance(r, dict) and r.get("type") in REFERENCE_TYPES for r in references
    ):
        return "data.referenced_tweets is malformed"
    return None
