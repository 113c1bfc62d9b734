"""Measuring cato-mq: workloads from real code and the Azure trace (``workload``,
``corpus``), scoring (``scoring``: goodput, percentiles, utilization), and every benchmark:
the per-hop overhead against bare Celery (``overhead``, ``bare_celery``), the real vLLM
engine against itself called directly (``vllm_overhead``), workloads through the real
runtime (``runtime``) and real Ray Serve (``ray_serve``), scaling on real fleets
(``scaling``) and goodput of every system (``goodput``).

May import anything in ``cato_mq``, ``workers`` and ``beat``. ``workload``, ``corpus`` and
``scoring`` import only the public types: the simulator reads them.
"""
