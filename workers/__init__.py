"""A replica: one worker process per device, its engine on an asyncio loop, Celery task
threads sharing it (``main``, ``replica``, ``tasks``, ``steps``), the outbox that writes
tokens and records (``outbox``), cato+'s admission gate and speed model (``gate``,
``speed``), and the engines (``engine`` interface, ``sim_engine``, ``vllm_engine``).

May import ``cato_mq`` (its public face, policies, state, engine timing and fleet). Never
``beat``.
"""
