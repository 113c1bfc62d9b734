"""What cato-mq keeps in Redis: each format with its one reader and writer.

Key names (``keys``), the replica registry and its stale rule (``registry``), the router's
pool snapshot and the tier queue depths (``pool``), the fenced end-of-node and failure
scripts (``ledger``), the estimates store (``estimates``), the fleet's copy of engine
profiles (``profiles``), the dead letters (``dead``, with ``envelope``'s screen of a raw
message), the broker transport that pops, screens and buries (``transport``, with
``scripts`` for Lua that may run at ``maxmemory`` and ``publish`` for the publish script
and its backlog bound), and how a ``CATO_REDIS_URL`` becomes a connection, plain, TLS or
Sentinel (``connect``). Fleet records (agents, leases, timeline) are
``cato_mq.fleet.records``.

May import: ``cato_mq.policy``, ``cato_mq.engine`` (profile formats), the public types,
redis-py and kombu (``transport`` subclasses its Redis transport). Never Celery,
``workers`` or ``beat``.
"""
