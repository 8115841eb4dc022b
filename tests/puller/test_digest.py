"""Digest documents: exact counts, deduplicated reviews, the latest kind wins, cut to fit the limit."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from redis import Redis as SyncRedis

from tests.conftest import REDIS_URL
from workers.common.contract.entries import KINDS, Entry, decode, make_entry
from workers.puller.digest import RENDER, build_digests, tally


def entry(brand: str, review: str, kind: str = "added", t: int = 1_000) -> Entry:
    return make_entry(brand=brand, review=review, kind=kind, pushed_ms=t, occurred_ms=t)  # type: ignore[arg-type]


def build(entries: list[Entry], *, max_bytes: int = 4096, max_ids: int = 100) -> list[dict[str, object]]:
    docs = build_digests(
        digest_id="d1",
        stream="s",
        user="u1",
        entries=entries,
        window_end_ms=9_000,
        max_bytes=max_bytes,
        max_ids_per_brand=max_ids,
    )
    return [json.loads(doc.content) for doc in docs]


def test_entry_round_trips_through_its_encoding() -> None:
    original = entry("Brand1", "r-1", "deleted", 1234)
    assert decode(original.encode()) == original


def test_one_digest_with_exact_counts_per_brand_and_kind() -> None:
    [doc] = build([entry("B1", "r1"), entry("B1", "r2", "updated"), entry("B2", "r3", "deleted")])
    assert doc["digest_id"] == "d1"
    assert doc["user"] == "u1"
    assert doc["stream"] == "s"
    assert doc["total"] == 3
    assert doc["window"] == {"start": "1970-01-01T00:00:01.000Z", "end": "1970-01-01T00:00:09.000Z"}
    assert doc["brands"] == {
        "B1": {"added": 1, "updated": 1, "deleted": 0, "review_ids": ["r1", "r2"], "truncated": False},
        "B2": {"added": 0, "updated": 0, "deleted": 1, "review_ids": ["r3"], "truncated": False},
    }


def test_a_review_changed_twice_counts_once_with_its_latest_kind() -> None:
    [doc] = build([entry("B", "r1", "added", 1), entry("B", "r1", "updated", 5), entry("B", "r1", "deleted", 3)])
    assert doc["total"] == 1
    assert doc["brands"] == {"B": {"added": 0, "updated": 1, "deleted": 0, "review_ids": ["r1"], "truncated": False}}


def test_ids_are_cut_to_fit_while_counts_stay_exact() -> None:
    entries = [entry("B1", f"review-{i:05d}") for i in range(500)] + [entry("B2", f"x-{i}") for i in range(3)]
    [doc] = build(entries, max_bytes=1024)
    assert len(json.dumps(doc, separators=(",", ":"))) <= 1024
    brands = doc["brands"]
    assert isinstance(brands, dict)
    assert brands["B1"]["added"] == 500
    assert brands["B1"]["truncated"] is True
    assert 0 < len(brands["B1"]["review_ids"]) < 500
    assert brands["B1"]["review_ids"][-1] == "review-00499"
    assert brands["B2"]["added"] == 3
    assert doc["total"] == 503


def test_max_ids_per_brand_caps_the_list() -> None:
    [doc] = build([entry("B", f"r{i}") for i in range(10)], max_ids=4)
    brands = doc["brands"]
    assert isinstance(brands, dict)
    assert brands["B"]["review_ids"] == ["r6", "r7", "r8", "r9"]
    assert brands["B"]["truncated"] is True
    assert brands["B"]["added"] == 10


def test_too_many_brands_for_one_document_split_into_parts_with_derived_ids() -> None:
    entries = [entry(f"Brand-{i:04d}", f"r{i}") for i in range(300)]
    docs = build(entries, max_bytes=2048)
    assert len(docs) > 1
    assert [d["digest_id"] for d in docs] == [f"d1.{n}" for n in range(1, len(docs) + 1)]
    assert sum(int(d["total"]) for d in docs) == 300  # type: ignore[call-overload]
    seen = [b for d in docs for b in d["brands"]]  # type: ignore[attr-defined]
    assert sorted(seen) == sorted({e.brand for e in entries})
    assert all(len(json.dumps(d, separators=(",", ":"))) <= 2048 for d in docs)


def test_parts_are_the_same_when_built_again() -> None:
    entries = [entry(f"Brand-{i:04d}", f"r{i}") for i in range(300)]
    assert build(entries, max_bytes=2048) == build(list(entries), max_bytes=2048)


ids = st.text(alphabet="abcdefghij0123456789", min_size=1, max_size=12)
entries_strategy = st.lists(
    st.builds(
        lambda b, r, k, t: make_entry(brand=b, review=r, kind=k, pushed_ms=t, occurred_ms=t),
        st.sampled_from(["B1", "B2", "B3"]),
        ids,
        st.sampled_from(KINDS),
        st.integers(min_value=0, max_value=10_000),
    ),
    min_size=1,
    max_size=300,
)


@settings(max_examples=60, deadline=None)
@given(entries=entries_strategy, max_bytes=st.integers(min_value=600, max_value=8192))
def test_counts_are_exact_and_documents_fit_for_any_batch(entries: list[Entry], max_bytes: int) -> None:
    docs = build(entries, max_bytes=max_bytes)
    expected = {t.brand: t.counts for t in tally(entries)}
    got = {brand: {k: body[k] for k in KINDS} for d in docs for brand, body in d["brands"].items()}  # type: ignore[attr-defined]
    assert got == expected
    unique = {(e.brand, e.review) for e in entries}
    assert sum(int(d["total"]) for d in docs) == len(unique)  # type: ignore[call-overload]
    for d in docs:
        assert len(json.dumps(d, separators=(",", ":"))) <= max_bytes
        for body in d["brands"].values():  # type: ignore[attr-defined]
            assert len(set(body["review_ids"])) == len(body["review_ids"])


LUA_RENDER = (
    RENDER
    + """
local entries = {}
for line in string.gmatch(ARGV[4], '[^\\n]+') do entries[#entries + 1] = line end
local content, reviews, unique = render(ARGV[1], ARGV[2], ARGV[3], entries, tonumber(ARGV[5]), tonumber(ARGV[6]),
                                        tonumber(ARGV[7]))
if not content then return false end
return {content, reviews, unique}
"""
)
lua_ids = st.text(alphabet="aZ09._:@-", min_size=1, max_size=10)
lua_entries = st.lists(
    st.builds(
        lambda b, r, k, p, o: make_entry(brand=b, review=r, kind=k, pushed_ms=p, occurred_ms=o),
        st.sampled_from(["B1", "b1", "B-2", "B.2", "B10", "B2", "a"]),
        lua_ids,
        st.sampled_from(KINDS),
        st.integers(min_value=0, max_value=4_102_444_800_000),
        st.integers(min_value=0, max_value=20),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(
    entries=lua_entries,
    max_bytes=st.sampled_from([300, 1024, 1_000_000]),
    max_ids=st.integers(min_value=0, max_value=8),
    end_ms=st.integers(min_value=0, max_value=4_102_444_800_000),
)
def test_the_script_renders_the_same_bytes_as_python(
    entries: list[Entry], max_bytes: int, max_ids: int, end_ms: int
) -> None:
    """The claim script's digest (Lua) and the Python builder agree byte for byte whenever the script renders
    one; the script leaves only documents over the limit to Python."""
    client = SyncRedis.from_url(REDIS_URL, decode_responses=True)
    try:
        raw = "\n".join(e.encode() for e in entries)
        reply = client.eval(LUA_RENDER, 0, "d-1", "s.1", "u:1", raw, end_ms, max_bytes, max_ids)
    finally:
        client.close()
    docs = build_digests(
        digest_id="d-1",
        stream="s.1",
        user="u:1",
        entries=entries,
        window_end_ms=end_ms,
        max_bytes=max_bytes,
        max_ids_per_brand=max_ids,
    )
    if max_bytes == 1_000_000:
        assert reply is not None
    if reply is None:
        return
    content, reviews, unique = reply
    assert [(d.digest_id, d.content, d.reviews) for d in docs] == [("d-1", content.encode(), reviews)]
    assert unique == len({e.review for e in entries})
