"""cato-mq's broker transport: kombu's Redis transport without its pop window, without
dying on poison, and without crashing when the connection drops with nodes in flight.

``app.celery_config`` names it as ``broker_transport``; clients, workers, beat and the
provisioner all use it. What it changes, and why:

* **Atomic pop.** kombu pops with ``BRPOP`` and only then records the message in its
  ``unacked`` hash; a worker killed or frozen in between lost the message. Here one
  script takes the next message from the consumer's lists in service order (by priority
  step, then in the consumer's queue order, as ``BRPOP`` had it) and records it as
  unacked in the same step, under a delivery tag we choose. A tier queue has a list for
  each of its own steps only, and its bare name (``keys.served_lists``): a pool's pop names
  13 lists, not 40 (one per step of every tier). Publish, restore and pop all map a
  priority onto those lists, and the bare name takes what a publisher of kombu's defaults
  sends, so no message waits in a list nobody polls. It also counts the delivery
  (``keys.attempt``): that number travels to the task in the ``cato_attempt`` header and
  fences the node's outcome (``state.ledger``).
* **Doorbells.** A script cannot block, so a consumer whose pop found nothing waits with
  ``BLPOP`` on its queues' doorbells (``keys.bell``), which every publish rings in the
  same script that pushes the message. The pop is sent right behind the ``BLPOP`` on the
  same connection, so Redis runs it the moment the wait ends (with Redis's clock for the
  unacked index): one round trip per idle pickup, where kombu's ``BRPOP`` plus its unacked
  write took two. The pop
  that finds everything empty clears the doorbells, so stale rings cost nothing, and a
  message that came without a ring (an older publisher, a restore) is found within
  ``brpop_timeout``.
* **Held-back LLM nodes.** A worker whose cato+ gate has just refused a node for want of
  room sets its process's hold key (``state.hold``, a short expiry); while it is set, the pop
  passes over LLM nodes among the first ``admission.WINDOW`` messages in service order (over
  all lists; an LLM node is known by its raw header, before any decode), and takes the
  first node of another step (retrieval, validation) instead, or an LLM node whose first
  token decides its SLA when the refused one's did not (``hold.E2E``): the refused node
  waits at the head of its queue for a sibling, or for this worker once an admitted
  request leaves (``hold.LlmHold.open`` clears the key and rings the consumer's own doorbell).
  A pop that passed over LLM nodes only leaves the doorbells rung, and its consumer
  looks again after ``HOLD_S`` at most.
* **Poison.** Whatever is not a well-formed node message is buried in the dead letters
  (``state.dead``) and, where its request can be named, fails that request; the worker
  goes on. Undecodable and oversize items are buried by the pop script itself; the rest
  by ``envelope.screen`` or by whatever Celery raises while taking the message.
* **Lost connections.** kombu put every delivered-but-unacked message back in its queue
  when the connection closed, although the nodes were still running (they ran twice), and
  an ack of such a message after the reconnect raised ``AttributeError`` ('NoneType' has
  no 'hostname') and ended the worker. Here nothing is restored at close: the unacked
  records live in Redis, the node acks when it ends, and the sweeper (``restore_visible``)
  restores a dead worker's messages after the visibility timeout. A closed channel's acks
  go through a pool built from the parameters it was created with.
* **Out of memory.** The pop, ack and bury scripts may run at ``maxmemory``
  (``state.scripts``), so a full Redis still drains; publishing is refused whole. kombu's
  pipelines run without ``MULTI``: a full Redis refuses every command queued in a
  transaction, even a read, and one refused ack used to restart the consumer, whose
  restart (declaring its queues) was refused again, for as long as Redis stayed full.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Collection
from queue import Empty
from time import monotonic, time
from typing import Any

import redis
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads

from cato_mq.policy import admission
from cato_mq.state import dead, keys, scripts, tags
from cato_mq.state.envelope import screened
from cato_mq.state.hold import EVERY, HOLD_S, llm_hold
from cato_mq.state.ledger import Failed, Ledger
from cato_mq.state.publish import BELL_CAP, BELL_TTL_S, EPOCH_TTL_S, PUT, BacklogFull, current_bound, set_epoch

log = logging.getLogger("cato_mq.transport")

#: Header that carries a delivery's attempt number (its fencing token) to the task.
ATTEMPT_HEADER = "cato_attempt"
#: Header asking the publish to put the message at the head of its list, the next one
#: popped, instead of behind the queued ones: a node cato+'s gate hands back (``workers.gate``).
HEAD_HEADER = "cato_head"
#: Header set on a node whose request was cancelled before the node was popped.
CANCELLED_HEADER = "cato_cancelled"
#: Default size limit of one message at the worker (``CATO_MAX_MESSAGE_BYTES``).
DEFAULT_MAX_MESSAGE_BYTES = 8 << 20
#: A full Redis's refusal (redis-py has it; the types-redis stubs do not know it yet).
OutOfMemoryError: type[redis.ResponseError] = getattr(redis.exceptions, "OutOfMemoryError", redis.ResponseError)
#: Errors of the connection, not of the message: the message stays unacked and comes back.
NOT_POISON: tuple[type[BaseException], ...] = (redis.ConnectionError, redis.TimeoutError, OSError)

#: Bytes of an oversize message kept in its dead letter.
OVERSIZE_KEPT = 4096
_POP = dead.BURY_FUNCTION + """
-- KEYS: unacked, unacked index, dead, dead counts, the n lists in service order, the hold
-- key, the bells
-- ARGV: tag, now ('': Redis's clock), max bytes, attempt prefix, attempt ttl, n, then per list:
-- queue, tracked, then the cancel marker prefix, then the number of nodes looked at while held
local n = tonumber(ARGV[6])
local now = ARGV[2]
if now == '' then
  local t = redis.call('TIME')
  now = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
end
-- held: pass over LLM nodes among the first `budget` nodes in service order, over all
-- lists (not per list: a pop then copies at most that many messages into Lua); those
-- whose first token decides their SLA (the id's tag) only if the hold reaches every one
local hold = redis.call('GET', KEYS[5 + n])
local held, every = hold ~= false, hold == '{EVERY}'
local budget = 0
if held then budget = tonumber(ARGV[8 + 2 * n]) end
local passed = false
-- An LLM node known by its raw header, without decoding the whole message: kombu escapes
-- every quote inside a string (the body is base64 besides), so a raw '"id": "' is a key of
-- the envelope. A plain find runs in C; a pattern scan of the body would cost more than
-- the decode it saves. Anything else falls through to the decode.
local function raw_llm(item)
  local at = string.find(item, '"id": "', 1, true)
  if at == nil then return false end
  if string.find(item, '^{NODE}llm"', at + 7) then return true end
  return every and string.find(item, '^{NODE}llm{TAG_PATTERN}"', at + 7) ~= nil
end
local tagged = '-llm{TAG}'
local function held_llm(id)
  return string.sub(id, -4) == '-llm' or (every and string.sub(id, -#tagged) == tagged)
end
for i = 1, n do
  local list, queue, tracked = KEYS[4 + i], ARGV[5 + 2 * i], ARGV[6 + 2 * i]
  local items
  if held and tracked ~= '0' then
    items = {}
    if budget > 0 then
      items = redis.call('LRANGE', list, -budget, -1)  -- the next one popped is the last
      budget = budget - #items
    end
  else
    items = {redis.call('LINDEX', list, -1)}
    if not items[1] then items = {} end
  end
  for j = #items, 1, -1 do
    local item = items[j]
    if tracked == '0' then
      redis.call('RPOP', list)
      return {list, item, 0}
    end
    if held and raw_llm(item) then
      passed = true
    else
      local ok, message = false, nil
      if #item <= tonumber(ARGV[3]) then ok, message = pcall(cjson.decode, item) end
      if not ok or type(message) ~= 'table' then
        local kind, reason = 'undecodable', 'not a JSON object or array'
        local kept = item
        if #item > tonumber(ARGV[3]) then  -- kept in part: dead letters must not fill Redis
          kind, reason = 'oversize', 'message of ' .. #item .. ' bytes; the limit is ' .. ARGV[3] ..
            ' (its first {OVERSIZE_KEPT} bytes are kept here)'
          kept = string.sub(item, 1, {OVERSIZE_KEPT})
        end
        bury(KEYS[3], KEYS[4], kind, reason, queue, list, now, '', kept)
        redis.call('LREM', list, -1, item)
        -- the tail, where kombu's envelope has its headers: the request may be named there
        return {list, string.sub(item, -{OVERSIZE_KEPT}), -1, kind, reason}
      end
      local headers = message['headers']
      local id = nil
      if type(headers) == 'table' and type(headers['id']) == 'string' then id = headers['id'] end
      if held and id and held_llm(id) then
        passed = true
      else
        redis.call('HSET', KEYS[1], ARGV[1], '[' .. item .. ',"",' .. cjson.encode(queue) .. ']')
        redis.call('ZADD', KEYS[2], now, ARGV[1])
        if j == #items then redis.call('RPOP', list) else redis.call('LREM', list, -1, item) end
        local attempt, cancelled = 0, 0
        if id then
          attempt = redis.call('INCR', ARGV[4] .. id)
          redis.call('EXPIRE', ARGV[4] .. id, ARGV[5])
          -- a node of a cancelled request is delivered marked, and skipped (state.cancel)
          local rid = string.match(id, '^{NODE}')
          if rid and redis.call('EXISTS', ARGV[7 + 2 * n] .. rid) == 1 then cancelled = 1 end
        end
        return {list, item, attempt, cancelled}
      end
    end
  end
end
if passed then return 0 end  -- LLM nodes wait, held back: the doorbells stay rung
for i = 6 + n, #KEYS do redis.call('DEL', KEYS[i]) end
return false
""".replace("{OVERSIZE_KEPT}", str(OVERSIZE_KEPT)).replace("{NODE}", keys.NODE_ID_HEAD_LUA).replace(
    "{EVERY}", EVERY).replace("{TAG_PATTERN}", keys.FIRST_TOKEN_TAG.replace("-", "%-")).replace(
    "{TAG}", keys.FIRST_TOKEN_TAG)  # not an f-string: Lua has braces

#: Test hook, set by ``workers.main`` from ``CATO_FAULT_AFTER_POP``: called between the
#: pop and the delivery, the window kombu's BRPOP left open.
after_pop: Callable[[], None] | None = None
_unbound: set[str] = set()  # queues whose binding a full Redis refused (warned once)


#: A node's task id in a raw envelope (``keys.node_task_id``): names its request.
_NODE_ID = re.compile(rf'"id": "{keys.NODE_ID_HEAD_REGEX}[\w-]+"')


def _push(message: Any) -> str:
    headers = message.get("headers") if isinstance(message, dict) else None
    return "RPUSH" if isinstance(headers, dict) and headers.get(HEAD_HEADER) else "LPUSH"


def _first_node_marker(message: Any) -> list[str]:
    """``[keys.request(rid)]`` when ``message`` is a request's first node, else ``[]``: the
    request becomes known with the publish that starts it, at no extra round trip."""
    headers = message.get("headers") if isinstance(message, dict) else None
    task_id = headers.get("id") if isinstance(headers, dict) else None
    if not isinstance(task_id, str):
        return []
    rid = keys.request_of_task(task_id)
    return [keys.request(rid)] if rid and task_id.startswith(f"{rid}-0-") else []


def _refused(request: str, kind: str, reason: str) -> Failed:
    return Failed(request, f"message refused ({kind}): {reason}")


def _request_of(raw: bytes) -> str:
    """The request a raw node message belongs to, read as far as it can be; else ''."""
    with contextlib.suppress(Exception):
        return keys.request_of_task(str(loads(bytes_to_str(raw))["headers"]["id"])) or ""
    return ""


class Client(redis.Redis):  # type: ignore[type-arg]
    """kombu's Redis client, whose plain ``pipeline()`` sends no ``MULTI`` (see the module
    doc). ``transaction()``, which kombu's restore uses with ``WATCH``, still does."""

    def pipeline(self, transaction: bool = False, shard_hint: Any = None) -> Any:
        return super().pipeline(transaction, shard_hint)


class QoS(kombu_redis.QoS):
    #: Running nodes are not put back when the connection closes: see the module doc.
    restore_at_shutdown = False

    def append(self, message: Any, delivery_tag: str) -> None:
        if self.channel.take_recorded(delivery_tag):  # the pop script recorded it already
            virtual.QoS.append(self, message, delivery_tag)
        else:
            super().append(message, delivery_tag)

    def ack(self, delivery_tag: str) -> None:
        self._release(delivery_tag)  # first: a failed Redis call must not keep the slot
        self._remove_from_indices(delivery_tag).execute()

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        self._release(delivery_tag)
        if requeue:
            self.restore_by_tag(delivery_tag, leftmost=True)
        else:
            self._remove_from_indices(delivery_tag).execute()

    def _release(self, delivery_tag: str) -> None:
        """Give the delivery's slot back, and wake the consumer's event loop if that slot was
        the one it lacked. Nodes ack from the pool's threads, and a loop out of credit polls
        no queue: nothing else would wake it before its next timer, up to 10 s away (kombu's
        ``Hub.fire_timers``), while every slot but this one's stayed free."""
        out_of_credit = not self.can_consume()
        virtual.QoS.ack(self, delivery_tag)
        loop = getattr(self.channel.connection, "event_loop", None)
        if out_of_credit and loop is not None:
            loop.call_soon(_nothing)  # from another thread, this interrupts the loop's poll

    def restore_visible(self, *args: Any, **kwargs: Any) -> None:
        try:
            super().restore_visible(*args, **kwargs)
        except redis.ResponseError as exc:  # e.g. a full Redis refusing the push: next sweep
            log.warning("restoring unacked messages failed (retried with the next sweep): %s", exc)

    def restore_by_tag(self, tag: Any, client: Any = None, leftmost: bool = False) -> None:
        try:
            super().restore_by_tag(tag, client, leftmost)
        except (ValueError, TypeError, KeyError) as exc:  # an entry kombu cannot read
            self.channel.bury_unacked(bytes_to_str(tag), exc)


class Message(virtual.Message):
    """kombu's message, with the body the screen decoded already (``envelope.screened``)."""

    def __init__(self, payload: Any, channel: Any = None, **kwargs: Any) -> None:
        super().__init__(payload, channel=channel, **kwargs)
        screened_body = getattr(channel, "_screened_body", None)
        if screened_body is not None and screened_body[0] is payload and screened_body[1] is not None:
            self._decoded_cache = screened_body[1]


class Channel(kombu_redis.Channel):
    QoS = QoS
    Message = Message
    _in_poll: Any = False  # kombu's: the connection a BRPOP (here: a pop or a doorbell wait) is pending on
    _brpop_sent_at: float | None = None  # type: ignore[assignment]  # kombu's None default
    from_transport_options = (  # type: ignore[assignment]  # kombu's literal tuple, extended
        *kombu_redis.Channel.from_transport_options, "max_message_bytes", "attempt_ttl", "result_ttl",
        "accept_tasks",
    )
    max_message_bytes = DEFAULT_MAX_MESSAGE_BYTES
    attempt_ttl = 86_400
    result_ttl = 3600
    #: task names a consumer of this transport runs; None accepts any
    accept_tasks: Collection[str] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._all_steps: tuple[int, ...] = tuple(self.priority_steps)  # the transport option
        if self.global_keyprefix:
            raise ValueError("cato-mq's transport does not support global_keyprefix")
        self._saved_params = self._connparams()
        self._recorded: set[str] = set()
        self._untracked: set[str] = set()
        self._idle = False  # the last pop found every list empty: wait on the doorbells
        self._held = False  # ... or only LLM nodes, held back (``LlmHold``): wait HOLD_S at most
        self._bell_wait = False  # the command in flight is the doorbells' BLPOP
        self._popping: tuple[str, list[str]] = ("", [])  # tag and queues of the pop in flight
        self._pop_sha = ""
        self._put_script: Any = None
        #: per list of queues: the pop command's key names and per-list arguments
        self._pop_shapes: dict[tuple[str, ...], tuple[int, list[str], int, list[Any]]] = {}
        self._sync_client: Any = None
        self._screened_body: tuple[dict[str, Any], Any] | None = None  # the delivery under way
        self._writers: tuple[dead.DeadLetters, Ledger] | None = None

    # --- consuming ----------------------------------------------------------------------

    def basic_consume(self, queue: str, no_ack: bool, *args: Any, **kwargs: Any) -> Any:
        (self._untracked.add if no_ack else self._untracked.discard)(queue)
        self._pop_shapes.clear()
        return super().basic_consume(queue, no_ack, *args, **kwargs)

    def take_recorded(self, tag: str) -> bool:
        if tag in self._recorded:
            self._recorded.discard(tag)
            return True
        return False

    def _brpop_start(self, timeout: float | None = None) -> None:
        queues = self._queue_cycle.consume(len(self.active_queues))
        if not queues:
            return
        connection = self.client.connection
        self._in_poll = connection
        self._brpop_sent_at = monotonic()
        self._bell_wait = self._idle
        if self._bell_wait:
            wait = self.brpop_timeout if timeout is None else timeout
            if self._held:  # the hold expires by itself: look again by then
                wait = min(wait or HOLD_S, HOLD_S)
            # the pop goes out with the wait, in one write: Redis runs it the moment the wait
            # ends (rung or timed out), so a woken consumer gets its message without a second
            # round trip; it takes its time from Redis, as it runs up to a wait after it is sent
            connection.send_packed_command(connection.pack_commands([
                ("BLPOP", *[keys.bell(q) for q in queues], llm_hold.bell, wait or 0),
                self._pop_command(list(queues), server_time=True),
            ]))
        else:
            connection.send_command(*self._pop_command(list(queues)))

    def _pop_command(self, queues: list[str], server_time: bool = False) -> list[Any]:
        if not self._pop_sha:
            with self.conn_or_acquire() as client:
                self._pop_sha = scripts.load(client, _POP)
        tag = tags.unique()
        self._popping = (tag, queues)
        shape = self._pop_shapes.get(tuple(queues))
        if shape is None:  # the same few queue lists every time: built once per list of queues
            # service order: by step, then in the consumer's queue order; a tier queue's own
            # steps only, and its bare name (``keys.served_lists``), not one list per step of
            # every tier
            order = sorted((step, i, j, name) for i, q in enumerate(queues)
                           for j, (step, name) in enumerate(keys.served_lists(q, self._all_steps)))
            lists = [(name, queues[i]) for _, i, _, name in order]
            names = [self.unacked_key, self.unacked_index_key, keys.dead(), keys.dead_counts(),
                     *[name for name, _ in lists], llm_hold.key, *[keys.bell(q) for q in queues], llm_hold.bell]
            per_list: list[Any] = []
            for _, q in lists:
                per_list += [q, "0" if q in self._untracked else "1"]
            shape = self._pop_shapes[tuple(queues)] = (len(names), names, len(lists), per_list)
        n_names, names, n_lists, per_list = shape
        now = "" if server_time else repr(time())
        return ["EVALSHA", self._pop_sha, n_names, *names, tag, now, self.max_message_bytes,
                keys.attempt_prefix(), self.attempt_ttl, n_lists, *per_list, keys.cancel_prefix(), admission.WINDOW]

    # --- a queue's lists ---------------------------------------------------------------

    def _q_for_pri(self, queue: str, pri: int) -> str:
        """The list of ``queue`` for priority ``pri``: one of the queue's own steps
        (``keys.priority_list``), on publish, restore and pop alike."""
        return keys.priority_list(queue, pri, self._all_steps)

    def _lists(self, queue: str) -> list[str]:
        return keys.list_names(queue, self._all_steps)

    def _size(self, queue: str) -> int:
        # kombu's sums one LLEN per step of the channel, which would count a tier queue's
        # lists several times over now that its steps map onto its own few lists
        with self.conn_or_acquire() as client:
            pipe = client.pipeline()
            for name in self._lists(queue):
                pipe.llen(name)
            return sum(int(n) for n in pipe.execute())

    def _purge(self, queue: str) -> int:
        with self.conn_or_acquire() as client:
            pipe = client.pipeline()
            for name in self._lists(queue):
                pipe.llen(name).delete(name)
            return sum(int(n) for n in pipe.execute()[::2])

    # kombu's basic_get, queue existence and delete go over the channel's steps too, which
    # never reach a tier queue's bare name: the same lists as the pop, instead

    def _get(self, queue: str, timeout: Any = None) -> Any:
        with self.conn_or_acquire() as client:
            item = next(filter(None, (client.rpop(name) for name in self._lists(queue))), None)
            self._maybe_update_queues_expire(client, queue)
        if item is None:
            raise Empty()
        return loads(bytes_to_str(item))

    def _has_queue(self, queue: str, **kwargs: Any) -> bool:
        with self.conn_or_acquire() as client:
            return bool(client.exists(*self._lists(queue)))

    def _delete(self, queue: str, *args: Any, **kwargs: Any) -> None:
        super()._delete(queue, *args, **kwargs)  # its bindings, and the lists it knows
        with self.conn_or_acquire(client=kwargs.get("client")) as client:
            client.delete(*self._lists(queue))

    def _reply(self, command: str, **options: Any) -> Any:
        connection = self.client.connection
        try:
            return self.client.parse_response(connection, command, **options)
        except self.connection_errors:
            connection.disconnect()  # the next poll reconnects
            raise
        except redis.exceptions.NoScriptError:  # Redis restarted or flushed its scripts
            self._pop_sha = ""
            raise Empty() from None
        except redis.exceptions.ResponseError as exc:  # e.g. a full Redis 6 refusing the pop
            log.warning("Redis refused the pop (retrying after %s s): %s", self.brpop_timeout, exc)
            self._idle = True
            raise Empty() from None

    def _brpop_read(self, **options: Any) -> bool:
        try:
            if self._bell_wait:  # rung, or timed out: the pop sent behind the wait has looked
                self._bell_wait = self._idle = False
                with contextlib.suppress(Empty):  # a refused wait: the pop still answers
                    self._reply("BLPOP", **options)
                return self._on_pop(self._reply("EVALSHA"))
            return self._on_pop(self._reply("EVALSHA", **options))
        finally:
            self._in_poll = None
            self._flush_brpop_reauth()

    def _on_pop(self, reply: Any) -> bool:
        self._held = reply == 0  # only held-back LLM nodes wait (``LlmHold``)
        if not reply:
            self._idle = True
            raise Empty()
        list_key, item, attempt = bytes_to_str(reply[0]), reply[1], int(reply[2])
        cancelled = attempt >= 0 and len(reply) > 3 and int(reply[3]) == 1
        queue = list_key.rsplit(self.sep, 1)[0]
        if attempt < 0:  # buried by the pop script: fail its request, if it names one
            kind, reason = bytes_to_str(reply[3]), bytes_to_str(reply[4])
            log.error("dead letter from %s (%s): %s", queue, kind, reason)
            request = _NODE_ID.search(bytes_to_str(item))
            if request:
                self._fail_request(request.group(1), kind, reason)
            raise Empty()
        self._queue_cycle.rotate(queue)
        if queue in self._untracked:  # a no-ack consumer (control replies): kombu's way
            try:
                self.connection._deliver(loads(bytes_to_str(item)), queue)
            except (ValueError, TypeError, KeyError) as exc:
                log.error("dropped an unreadable message from no-ack queue %s: %s", queue, exc)
            return True
        tag = self._popping[0]
        if after_pop is not None:
            after_pop()
        self._deliver_popped(tag, queue, list_key, item, attempt, cancelled)
        return True

    def _deliver_popped(
        self, tag: str, queue: str, list_key: str, item: bytes, attempt: int, cancelled: bool = False
    ) -> None:
        self._recorded.add(tag)
        try:
            payload, body = screened(item, self.accept_tasks)
            payload["properties"]["delivery_tag"] = tag
            if attempt:
                payload["headers"][ATTEMPT_HEADER] = attempt
            if cancelled:
                payload["headers"][CANCELLED_HEADER] = 1
            self._screened_body = (payload, body)  # for the Message kombu builds from it, now
            self.connection._deliver(payload, queue)
        except NOT_POISON:
            raise  # the message stays unacked: redelivered after the visibility timeout
        except dead.Poison as exc:
            self.bury(exc.kind, exc.reason, queue, list_key, item, tag)
        except Exception as exc:  # anything Celery's consumer raises while taking it
            self.bury("shape", f"{type(exc).__name__}: {exc}", queue, list_key, item, tag)
        finally:
            self._recorded.discard(tag)
            self._screened_body = None

    # --- poison ------------------------------------------------------------------------

    def _dead_writers(self) -> tuple[dead.DeadLetters, Ledger]:
        if self._writers is None:
            with self.conn_or_acquire() as client:
                self._writers = (dead.DeadLetters(client), Ledger(client, self.result_ttl, 1.0))
        return self._writers

    def bury(self, kind: str, reason: str, queue: str, list_key: str, raw: bytes, tag: str) -> None:
        """Dead-letter a message and fail its request, if the message names one."""
        request = _request_of(raw)
        log.error("dead letter from %s (%s): %s", queue, kind, reason)
        letters, ledger = self._dead_writers()
        failed = [(_refused(request, kind, reason), time())] if request else []
        with self.conn_or_acquire() as client:
            pipe = client.pipeline(transaction=False)
            letters.bury(kind, reason, queue, raw, list_key=list_key, request=request, tag=tag, pipe=pipe)
            for reply in ledger.write([], failed, pipe=pipe):
                if isinstance(reply, Exception):
                    log.error("could not bury a message from %s: %s", queue, reply)

    def _fail_request(self, request: str, kind: str, reason: str) -> None:
        try:
            self._dead_writers()[1].fail(_refused(request, kind, reason), time())
        except redis.RedisError as exc:
            log.error("could not fail request %s: %s", request, exc)

    def bury_unacked(self, tag: str, exc: BaseException) -> None:
        with self.conn_or_acquire() as client:
            raw = client.hget(self.unacked_key, tag) or b""
        self.bury("undecodable", f"unacked entry unreadable: {exc}", "", "", raw, tag)

    @contextlib.contextmanager
    def conn_or_acquire(self, client: Any = None) -> Any:
        """kombu builds a new client object for every publish and every ack, and redis-py's
        client constructor is costly (its response-callback table): one per pool instead.
        A client is safe to share between threads; each command takes a pooled connection."""
        if client:
            yield client
            return
        pool = self.pool
        cached = self._sync_client
        if cached is None or cached.connection_pool is not pool:
            cached = self._sync_client = self._create_client()
        yield cached

    def _get_client(self) -> Any:
        super()._get_client()  # kombu's checks of the redis-py version
        return Client

    def _queue_bind(self, exchange: str, routing_key: str, pattern: str, queue: str) -> None:
        try:
            super()._queue_bind(exchange, routing_key, pattern, queue)
        except OutOfMemoryError as exc:
            # a full Redis must not stop a consumer from (re)starting: node messages are
            # published to the default exchange and found without the binding table
            if queue not in _unbound:
                _unbound.add(queue)
                log.warning("binding %s not recorded while Redis is full: %s", queue, exc)

    # --- publishing and restoring ------------------------------------------------------

    def _put(self, queue: str, message: Any, **kwargs: Any) -> None:
        batch = kwargs.get("_publish_batch")
        if batch is not None or queue in self._expires:  # kombu's ways, then a ring
            super()._put(queue, message, **kwargs)
            if batch is not None:
                batch.add("lpush", keys.bell(queue), "1")
            return
        key = self._q_for_pri(queue, self._get_message_priority(message, reverse=False))
        body = dumps(message)
        if len(body) > self.max_message_bytes:  # refused here, with a reason, not buried at a worker
            raise ValueError(f"message of {len(body)} bytes for {queue}; the limit is {self.max_message_bytes}")
        bound = current_bound()
        counted = list(bound.lists) if bound is not None and bound.limit > 0 else []
        with self.conn_or_acquire() as client:
            if self._put_script is None:
                self._put_script = client.register_script(scripts.body(client, PUT, allow_oom=False))
            try:
                marker = _first_node_marker(message)
                reply = self._put_script(
                    keys=[key, keys.bell(queue), keys.epoch(), *marker, *counted],
                    args=[body, BELL_CAP, BELL_TTL_S, tags.unique(), EPOCH_TTL_S, self.result_ttl,
                          bound.limit if counted and bound is not None else 0, len(marker), _push(message)],
                    client=client,
                )
            except redis.ResponseError as exc:
                if not isinstance(exc, OutOfMemoryError) and "OOM" not in str(exc):
                    raise
                raise OutOfMemoryError(f"Redis is full (maxmemory): nothing was queued on {queue}") from None
        if isinstance(reply, list):  # over the backlog bound: nothing was pushed
            raise BacklogFull(queue, int(reply[0]), bound.limit if bound is not None else 0)
        set_epoch(bytes_to_str(reply))

    def _do_restore_message(self, payload: Any, exchange: str, routing_key: str, pipe: Any,
                            leftmost: bool = False) -> None:
        super()._do_restore_message(payload, exchange, routing_key, pipe, leftmost)
        if not exchange and routing_key:  # our unacked entries: the queue is the routing key
            pipe.lpush(keys.bell(routing_key), "1")
            pipe.expire(keys.bell(routing_key), BELL_TTL_S)

    # --- surviving a closed connection -------------------------------------------------

    def _get_pool(self, asynchronous: bool = False) -> Any:
        if not asynchronous and (self.connection is None or self.connection.client is None):
            # closed by a reconnect: acks of the nodes it delivered still reach Redis
            return redis.ConnectionPool(**self._saved_params)
        return super()._get_pool(asynchronous)

    def close(self) -> None:
        # a pop in flight is recorded as unacked already: the sweeper restores it
        self._in_poll = None
        super().close()


def _nothing() -> None:
    """The callback of a wake-up: the loop's next tick (``on_poll_start``) does the work."""


class Transport(kombu_redis.Transport):
    Channel = Channel
    #: the event loop consuming this transport (Celery's hub), which acks wake (``QoS._release``)
    event_loop: Any = None

    def register_with_event_loop(self, connection: Any, loop: Any) -> None:
        self.event_loop = loop
        super().register_with_event_loop(connection, loop)
