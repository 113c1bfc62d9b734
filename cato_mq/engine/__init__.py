"""What cato-mq knows of an LLM engine's speed: the timing step model (``timing``), the
profile file ``cato-mq profile`` writes (``profile``), the Universal Scalability Law fit
(``usl``), the profiler itself (``measure``) and the generated tiny model (``tiny_model``).

May import: ``timing``, ``profile`` and ``usl`` only pydantic and the standard library (the
simulator depends on them); ``measure`` runs a real worker through the client, so it may
import the public face, ``cato_mq.fleet`` and ``cato_mq.state``. Never ``workers`` or
``beat``.
"""
