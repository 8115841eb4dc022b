"""Lua scripts sent several at a time, in one pipeline, on a single Redis node and on Redis Cluster alike.

A pipeline of script calls is one write and one read for all of them. redis-py's cluster pipeline refuses its
`evalsha` method, but routes a raw `EVALSHA` like any keyed command: each call goes to the node serving its
keys' slot (every script touches the keys of one slot, workers/common/contract/keys.py). A node that does not
know a script (it restarted, or a replica was just promoted) answers NOSCRIPT without running it, so that call
alone is sent again through redis-py's `Script`, which loads the script first; no call runs twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, ResponseError

ScriptCall = tuple[AsyncScript, Sequence[Any], Sequence[Any]]
"""A registered script (`redis.register_script`), its keys and its arguments."""


async def run_scripts(redis: aioredis.Redis, calls: Sequence[ScriptCall]) -> list[Any]:
    """The result of each call, in order; a call that failed in Redis gives its `ResponseError` as its result
    (the caller decides), a lost connection raises for all of them."""
    if not calls:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for script, keys, args in calls:
            pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
        results: list[Any] = await pipe.execute(raise_on_error=False)
    for index, ((script, keys, args), result) in enumerate(zip(calls, results, strict=True)):
        if isinstance(result, NoScriptError):
            results[index] = await _alone(script, keys, args)
    return results


async def run_scripts_or_raise(redis: aioredis.Redis, calls: Sequence[ScriptCall]) -> list[Any]:
    """`run_scripts`, raising the first call's Redis error instead of returning it."""
    results = await run_scripts(redis, calls)
    for result in results:
        if isinstance(result, ResponseError):
            raise result
    return results


async def _alone(script: AsyncScript, keys: Sequence[Any], args: Sequence[Any]) -> Any:
    try:
        return await script(keys=keys, args=args)
    except ResponseError as exc:
        return exc
