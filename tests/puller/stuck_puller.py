"""A real puller process whose sink records the digest ids it is handed, then never returns (so the test can
`kill -9` it in the middle of a batch). Usage: python -m tests.puller.stuck_puller STREAM RECORD_FILE"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from workers.common.contract.keys import BusKeys
from workers.common.runtime.connections import connect_redis
from workers.puller.settings import PullerSettings
from workers.puller.sink import Digest
from workers.puller.worker import Puller


class HangingSink:
    def __init__(self, record: Path) -> None:
        self.record = record

    async def deliver(self, digests: Sequence[Digest]) -> None:
        with self.record.open("a") as out:
            out.writelines(f"{d.digest_id} {d.user}\n" for d in digests)
        await asyncio.Event().wait()

    async def close(self) -> None:
        return None


async def main(stream: str, record: Path) -> None:
    settings = PullerSettings()
    redis = await connect_redis(settings.redis_url)
    puller = Puller(redis, keys=BusKeys(stream), sink=HangingSink(record), settings=settings)
    await puller.run(asyncio.Event())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2])))
