"""Lua scripts sent several at a time, in one pipeline, on a single Redis node and on Redis Cluster alike.

A pipeline of script calls is one write and one read for all of them. redis-py's cluster pipeline refuses its
`evalsha` method, but routes a raw `EVALSHA` like any keyed command: each call goes to the node serving its
keys' slot (every script touches the keys of one slot, workers/common/contract/keys.py). A script is loaded
(on every master of a cluster) the first time a client sends it. A node that does not know it later (it
restarted, or a replica was just promoted) answers NOSCRIPT without running it: the script is loaded again and
only those calls are sent again; no call runs twice. The calls' writes wait for replicas as the client
asks (workers/common/runtime/replication.py).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, ResponseError

from workers.common.runtime.replication import execute_replicated

ScriptCall = tuple[AsyncScript, Sequence[Any], Sequence[Any]]
"""A registered script (`redis.register_script`), its keys and its arguments."""


_loaded: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
"""The scripts each client has loaded, by SHA-1."""


async def run_scripts(redis: aioredis.Redis, calls: Sequence[ScriptCall]) -> list[Any]:
    """The result of each call, in order; a call that failed in Redis gives its `ResponseError` as its result
    (the caller decides), a lost connection raises for all of them."""
    if not calls:
        return []
    await _load(redis, (script for script, _, _ in calls), again=False)
    results = await _send(redis, calls)
    missed = [index for index, result in enumerate(results) if isinstance(result, NoScriptError)]
    if missed:
        await _load(redis, (calls[index][0] for index in missed), again=True)
        for index, result in zip(missed, await _send(redis, [calls[index] for index in missed]), strict=True):
            results[index] = result
    return results


async def _send(redis: aioredis.Redis, calls: Sequence[ScriptCall]) -> list[Any]:
    async with redis.pipeline(transaction=False) as pipe:
        for script, keys, args in calls:
            pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
        written = [keys[0] for _, keys, _ in calls if keys]
        results = await execute_replicated(redis, pipe, keys=written, raise_on_error=False)
    for result in results:  # a cluster pipeline returns a lost node's connection error as that call's result
        if isinstance(result, BaseException) and not isinstance(result, ResponseError):
            raise result
    return results


async def _load(redis: aioredis.Redis, scripts: Iterable[AsyncScript], *, again: bool) -> None:
    known = _loaded.setdefault(redis, set())
    for script in {script.sha: script for script in scripts}.values():
        if again or script.sha not in known:
            await redis.script_load(script.script)
            known.add(script.sha)


async def run_scripts_or_raise(redis: aioredis.Redis, calls: Sequence[ScriptCall]) -> list[Any]:
    """`run_scripts`, raising the first call's Redis error instead of returning it."""
    results = await run_scripts(redis, calls)
    for result in results:
        if isinstance(result, ResponseError):
            raise result
    return results
