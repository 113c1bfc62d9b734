"""Every decision cato-mq makes, as pure functions: data in, decision (and new state) out.

Slack allotment (``slack``), service-time estimates and the EWMA rule (``estimates``),
the tier of a node (``tiers``), SABER-style admission (``admission``), CATO's Algorithm 2
and the queue-length baseline behind one registry (``provisioning``, ``queue_length``,
``scaling``, configured by ``provisioner_config``), CACE-style eviction (``eviction``),
the sliding violation window (``window``) and the retire ranking (``placement``). The
Celery runtime calls them with live observations and the simulator with simulated ones.

May import: the standard library, pydantic, and ``cato_mq.graphs`` / ``cato_mq.schemas`` /
``cato_mq.settings``. Never Celery, kombu, Redis, ``workers`` or ``beat`` (a test holds it).
"""
