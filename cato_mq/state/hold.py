"""A worker's hold on LLM nodes: set while its cato+ gate could admit none.

When the gate (``workers.gate``) refuses an LLM node for want of room, the node goes back to
the head of its queue, and the worker ``close``s its hold: a key with a short expiry that
the transport's pop script reads (``state.transport``). While it is set, that worker's pops
pass over LLM nodes and take nodes of other steps, so a refused node waits in Redis, where
a sibling with room may take it, and no thread of this worker waits for room. ``open``
clears the key when an admitted node leaves, and rings a doorbell only this consumer waits
on, so that it looks at the LLM nodes again at once.
"""

from __future__ import annotations

import redis

from cato_mq.state import keys, tags
from cato_mq.state.publish import BELL_TTL_S

#: Seconds a refusal holds LLM nodes back at most (``LlmHold``): needs change as deadlines
#: near, so the worker looks at the head LLM node again this often without any room event.
HOLD_S = 0.1


class LlmHold:
    """This process's consumer's hold on LLM nodes (see the module doc): ``close`` when its
    cato+ gate refuses a node for want of room, ``open`` when room comes. One per process
    (``llm_hold``), named with a process-unique prefix; a process that never closes it (a
    client, beat) pays one EXISTS per pop."""

    def __init__(self, consumer: str) -> None:
        self.key = keys.llm_hold(consumer)
        self.bell = keys.bell(f"llm-hold:{consumer}")  # only this consumer waits on it

    def close(self, client: redis.Redis) -> None:  # type: ignore[type-arg]
        client.set(self.key, 1, px=int(HOLD_S * 1000))

    def open(self, client: redis.Redis) -> None:  # type: ignore[type-arg]
        pipe = client.pipeline(transaction=False)
        pipe.delete(self.key)  # first: the pop the ring wakes must see the hold gone
        pipe.lpush(self.bell, "1")
        pipe.expire(self.bell, BELL_TTL_S)
        pipe.execute()


llm_hold = LlmHold(tags.unique())
