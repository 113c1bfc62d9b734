"""cato-mq: SLA-aware serving of coding tasks as Celery chains over Redis.

The public face: ``submit`` a ``CodingTask``, follow it with a ``Handle`` (``handle(id)``
from any process) and read its ``Result``. They are imported lazily (PEP 562), so that
importing a subpackage, e.g. the pure policies in ``cato_mq.policy`` or the simulator in
``cato_mq.sim``, does not load Celery or Redis.

The wings, each a package whose docstring says what it may import:

* ``cato_mq.policy``: every pure decision (slack, tiers, admission, scaling, eviction);
* ``cato_mq.state``: Redis formats, each with its one reader and writer;
* ``cato_mq.fleet``: host agents, fleet records, model pools, devices, local processes;
* ``cato_mq.engine``: engine timing profiles, the USL fit, the profiler, the tiny model;
* ``cato_mq.sim``: the discrete-event simulator;
* ``cato_mq.bench``: workloads, scoring and every benchmark;
* ``cato_mq.cli``: the ``cato-mq`` command line.

Beside this package, ``workers`` runs replicas and ``beat`` runs the provisioner.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cato_mq.client import Handle, Overloaded, RequestCancelled, RequestFailed, RequestLost, handle, submit
    from cato_mq.schemas import SLA, CodingTask, ContextFile, Kind, Result

#: public name -> the module that defines it
_PUBLIC = {
    "Handle": "cato_mq.client",
    "Overloaded": "cato_mq.client",
    "RequestFailed": "cato_mq.client",
    "RequestCancelled": "cato_mq.client",
    "RequestLost": "cato_mq.client",
    "handle": "cato_mq.client",
    "submit": "cato_mq.client",
    "SLA": "cato_mq.schemas",
    "CodingTask": "cato_mq.schemas",
    "ContextFile": "cato_mq.schemas",
    "Kind": "cato_mq.schemas",
    "Result": "cato_mq.schemas",
}

__all__ = [
    "SLA",
    "CodingTask",
    "ContextFile",
    "Handle",
    "Kind",
    "Overloaded",
    "RequestCancelled",
    "RequestFailed",
    "RequestLost",
    "Result",
    "handle",
    "submit",
]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    if name == "__version__":  # pyproject.toml owns the version; read it where asked
        from importlib import metadata

        try:
            return metadata.version("cato-mq")
        except metadata.PackageNotFoundError:  # run from a source tree that was never installed
            return "0+unknown"
    raise AttributeError(f"module 'cato_mq' has no attribute {name!r}")
