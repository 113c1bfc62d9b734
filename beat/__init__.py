"""Celery beat side of cato-mq: the provisioner, which scales pools from SLA violations.

Processes (any number of hosts, one Redis):

* ``cato-mq beat`` - a real ``celery beat`` (``schedule.LeaderScheduler``) that sends the
  tick every ``CATO_SCALE_TICK_S`` to the ``control`` queue with ``expires`` = one period,
  only while it holds the leader lock (``leader.LeaderLock``); every tick carries the
  leader's token.
* ``cato-mq provisioner`` - a solo worker on ``control`` that runs ``tick.provision_tick``:
  fencing check, tick mutex, ``gather.gather``, the configured pure policy
  (``cato_mq.policy.scaling``), ``plan.plan``, then device leases (``SET NX PX``) and
  orders pushed to the agents.
* ``cato-mq agent`` on every host (``cato_mq.fleet.agent``) - owns the host's devices,
  renews their leases, spawns and drains workers.

May import ``cato_mq`` (its public face, policies, state and fleet records). Never
``workers``.
"""
