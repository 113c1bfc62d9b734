"""The discrete-event simulator of a cato-mq fleet (``simulator``): replicas stepped by the
engine timing model (``replica``), the systems' queueing and dispatch (``dispatch``),
cato+'s admission over simulated state (``admission``) and the provisioner tick
(``scaling``), all calling the runtime's own pure policies.

May import: ``cato_mq.policy``, ``cato_mq.engine.timing``, the public types (graphs,
schemas), and from ``cato_mq.bench`` only the records a run consumes and yields
(``workload``, ``scoring``). Never Celery, kombu, Redis, ``workers`` or ``beat`` (a test
holds it).
"""
