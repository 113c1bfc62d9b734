"""Prometheus metrics of the whole fleet, read from Redis (issue 12).

**One source of truth, no double counting.** cato-mq runs as many processes: one worker
per device, the provisioner, gateways, any number of exporters. None keeps a Prometheus
counter in its own memory. Each fact is written into Redis where it happens, by the code
that owns it (``state.outcomes``):

* a node's end and a request's outcome (met or missed its SLA), its TTFT and E2E
  histogram buckets, in the ledger's finish script, the same atomic call that records the
  node, after its redelivery dedupe and fencing; a failure in the fail script; a
  cancellation in the cancelled script (``Ledger.cancelled``), run by the first worker
  that stops a node of a cancelled request. A per-request marker lets only the first
  outcome count;
* cato+'s admission decisions at the worker's gate, and the provisioner's orders in the
  tick's own pipeline;
* dead letters, counted by the bury script (``keys.dead_counts``).

The ``FleetCollector`` turns those hashes, and the live state (tier queue depths, the
replica registry, the provisioner's last tick), into Prometheus series in one pipelined
read per scrape. Any number of exporters can run: each reports the same totals, and a
restarted exporter loses nothing. Scrape cost grows with the label combinations (pools,
kinds, buckets, replicas), not with the requests served.

``exposition(client)`` gives the text format for any HTTP server (a gateway's ``/metrics``);
``cato-mq metrics`` serves it on its own (``serve``).
"""

from __future__ import annotations

from cato_mq.metrics.collector import FleetCollector
from cato_mq.metrics.serve import exposition, serve

__all__ = ["FleetCollector", "exposition", "serve"]
