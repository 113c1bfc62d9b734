"""The provisioner tick (a Celery task on the ``control`` queue) and ``cato-mq provisioner``,
the small solo worker that consumes it.

One tick: check the fencing token (sent by the current beat leader?), take the tick
mutex (one tick at a time even with two control workers), read the observations, run the
configured pure policy, plan orders, allocate each spawn's device lease atomically
(``SET NX PX``: a device never goes to two replicas), and push the orders to the agents.
"""

from __future__ import annotations

import json
import logging
import socket
import time
import uuid
from dataclasses import asdict
from typing import Any

from beat import gather, plan
from beat.leader import is_leader
from beat.schedule import CONTROL_QUEUE, TICK_TASK
from cato_mq.app import get_app, redis_client
from cato_mq.fleet import records
from cato_mq.fleet.records import Redis
from cato_mq.policy.provisioner_config import ProvisionerConfig
from cato_mq.policy.provisioner_config import load as load_config
from cato_mq.policy.provisioning import PoolState, State
from cato_mq.policy.scaling import POLICIES
from cato_mq.settings import Settings, get_settings
from cato_mq.state import keys, outcomes

log = logging.getLogger("cato_mq.provisioner")
app = get_app()
#: Policy state outlives a stopped provisioner by a day, then a restart begins afresh.
STATE_TTL_S = 86_400


def load_state(client: Redis) -> State:
    raw = client.get(keys.prov_state())
    return {p: PoolState(**v) for p, v in json.loads(raw).items()} if raw else {}


def dispatch(
    client: Redis, orders: list[plan.Order], config: ProvisionerConfig, now: float
) -> list[plan.Order]:
    """Allocate leases and push orders; returns the orders actually sent."""
    sent = []
    pipe = client.pipeline(transaction=False)
    for o in orders:
        if o.op == "spawn":
            value = records.lease_value(o.pool, o.name, now)
            if not client.set(keys.lease(o.host, o.device), value, nx=True, px=int(config.lease_s * 1000)):
                continue  # someone else got the device first
            record = records.ReplicaRecord(o.name, o.pool, o.host, o.device, "requested", now)
            records.log_state(pipe, record, now)
        order = {"op": o.op, "device": o.device, "pool": o.pool, "name": o.name, "at": now}
        pipe.rpush(keys.orders(o.host), json.dumps(order))
        pipe.expire(keys.orders(o.host), int(config.order_ttl_s * 10))
        sent.append(o)
    pipe.execute()
    return sent


def run_tick(
    client: Redis, settings: Settings, config: ProvisionerConfig, now: float
) -> dict[str, Any]:
    seen = gather.gather(client, settings, now)
    obs = seen.observations
    desired, state = POLICIES[config.policy](obs, load_state(client), config)
    sent = dispatch(client, plan.plan(desired, seen.view, seen.inflight), config, now)
    summary = {
        "at": now, "policy": config.policy, "desired": desired, "free_devices": obs.free_devices,
        "pools": {p: asdict(o) for p, o in obs.pools.items()}, "orders": [asdict(o) for o in sent],
    }
    pipe = client.pipeline(transaction=False)
    pipe.set(keys.prov_state(), json.dumps({p: asdict(s) for p, s in state.items()}), ex=STATE_TTL_S)
    pipe.set(keys.prov_last(), json.dumps(summary, default=str), ex=STATE_TTL_S)
    outcomes.count_orders(pipe, [(o.pool, o.op) for o in sent])  # Prometheus' decisions counter
    pipe.execute()
    if sent:
        log.info("desired %s; orders %s", desired, [(o.op, o.name) for o in sent])
    return summary


@app.task(name=TICK_TASK, ignore_result=True)  # type: ignore[untyped-decorator,unused-ignore]
def provision_tick(leader: str | None = None) -> str:
    client = redis_client()
    if not is_leader(client, leader):
        return "ignored: not sent by the current beat leader"
    settings = get_settings()
    config = load_config(settings.pools)
    token = uuid.uuid4().hex
    if not client.set(keys.tick_mutex(), token, nx=True, px=int(max(config.tick_s, 1.0) * 5000)):
        return "ignored: another tick is running"
    try:
        run_tick(client, settings, config, time.time())
    finally:
        client.register_script(records.RELEASE_LUA)(keys=[keys.tick_mutex()], args=[token])
    return "ok"


def run_provisioner(loglevel: str) -> int:
    """A solo worker on the ``control`` queue only: ticks never wait behind model work."""
    name = f"provisioner-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
    app.conf.broker_transport_options["accept_tasks"] = [TICK_TASK]  # anything else: a dead letter
    argv = ["worker", "-P", "solo", "-c", "1", "-n", name, "-Q", CONTROL_QUEUE,
            "--without-gossip", "--without-mingle", "--prefetch-multiplier", "1", "-l", loglevel]
    try:
        app.worker_main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0
