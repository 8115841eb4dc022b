"""Hash tags in producer ids (docs/design.md section 5): Redis Cluster's rule, and the home shard they give."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from workers.common.contract.keys import StoreKeys, hash_tag, shard_of, tagged

IDS = st.text(alphabet="abcXYZ019._:@-", min_size=1, max_size=40)


def test_the_tag_is_between_the_first_open_brace_and_the_next_close_brace() -> None:
    assert hash_tag("{u1}d-42") == "u1"
    assert hash_tag("d-{u1}-{u2}") == "u1"
    assert hash_tag("{}{u1}") is None, "an empty first tag means no tag, as in Redis Cluster"
    assert hash_tag("}{u1") is None
    assert hash_tag("{u1") is None
    assert hash_tag("d-42") is None


@given(user=IDS, rest=IDS, producer=IDS, shards=st.integers(1, 1024))
def test_a_tagged_producer_id_lives_in_its_users_shard(user: str, rest: str, producer: str, shards: int) -> None:
    pnid = tagged(user, rest, limit=128)
    keys = StoreKeys("s", shard_count=shards)
    assert pnid == f"{{{user}}}{rest}"
    assert keys.home_of(producer, pnid) == keys.shard_of(user)


@given(rest=IDS, producer=IDS, shards=st.integers(1, 1024))
def test_an_id_that_would_not_fit_stays_untagged(rest: str, producer: str, shards: int) -> None:
    user = "u" * 128
    assert tagged(user, rest, limit=128) == rest
    assert StoreKeys("s", shard_count=shards).home_of(producer, rest) == shard_of(f"{producer}/{rest}", shards)
