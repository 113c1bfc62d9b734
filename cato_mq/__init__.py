"""cato-mq: SLA-aware serving of coding tasks as Celery chains over Redis."""

from cato_mq.client import Handle, RequestFailed, handle, submit
from cato_mq.models import SLA, CodingTask, ContextFile, Kind, Result

__all__ = [
    "SLA",
    "CodingTask",
    "ContextFile",
    "Handle",
    "Kind",
    "RequestFailed",
    "Result",
    "handle",
    "submit",
]
__version__ = "0.1.0"
