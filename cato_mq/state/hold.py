"""A worker's hold on LLM nodes: set while its cato+ gate could admit none of a kind.

When the gate (``workers.gate``) refuses an LLM node for want of room, the node goes back to
the head of its queue, and the worker ``close``s its hold: a key with a short expiry that
the transport's pop script reads (``state.transport``). While it is set, that worker's pops
pass over the LLM nodes it holds back and take other nodes, so a refused node waits in
Redis, where a sibling with room may take it, and no thread of this worker waits for room.
``open`` clears the key when an admitted node leaves, and rings a doorbell only this
consumer waits on, so that it looks at the LLM nodes again at once.

The hold has two reaches. The gate asks less of a node whose first token decides its SLA
(``policy.admission.choose``), so a refused E2E node says little about them: its hold
(``E2E``) passes over the other LLM nodes only, and a completion behind it still reaches
the engine. A refused first-token node holds back every LLM node (``EVERY``). The pop script
tells them apart by the task id's ``keys.FIRST_TOKEN_TAG``.
"""

from __future__ import annotations

import redis

from cato_mq.state import keys, tags
from cato_mq.state.publish import BELL_TTL_S

#: Seconds a refusal holds LLM nodes back at most (``LlmHold``): needs change as deadlines
#: near, so the worker looks at the head LLM node again this often without any room event.
HOLD_S = 0.1
#: The hold key's values: what the pop passes over (any other value reads as ``E2E``).
E2E, EVERY = "e2e", "every"


class LlmHold:
    """This process's consumer's hold on LLM nodes (see the module doc): ``close`` when its
    cato+ gate refuses a node for want of room, ``open`` when room comes. One per process
    (``llm_hold``), named with a process-unique prefix; a process that never closes it (a
    client, beat) pays one EXISTS per pop."""

    def __init__(self, consumer: str) -> None:
        self.key = keys.llm_hold(consumer)
        self.bell = keys.bell(f"llm-hold:{consumer}")  # only this consumer waits on it

    def close(self, client: redis.Redis, every: bool) -> None:  # type: ignore[type-arg]
        """``every``: the refused node's first token decides its SLA (see the module doc)."""
        client.set(self.key, EVERY if every else E2E, px=int(HOLD_S * 1000))

    def open(self, client: redis.Redis) -> None:  # type: ignore[type-arg]
        pipe = client.pipeline(transaction=False)
        pipe.delete(self.key)  # first: the pop the ring wakes must see the hold gone
        pipe.lpush(self.bell, "1")
        pipe.expire(self.bell, BELL_TTL_S)
        pipe.execute()


llm_hold = LlmHold(tags.unique())
