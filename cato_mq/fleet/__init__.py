"""The fleet's hosts: the per-host agent that owns devices and starts or drains workers
(``agent``), the fleet's records in Redis (``records``: agents, leases, replica states,
the timeline), model pools (``pools``), accelerator platforms and device pinning
(``devices``), and starting a private Redis and ``cato-mq`` processes on this host
(``launch``: what the demo, the tests and the benchmarks start).

May import: the public face (app, settings), ``cato_mq.policy`` and ``cato_mq.state``.
Never ``workers`` or ``beat``: it starts them as processes, by command line.
"""
