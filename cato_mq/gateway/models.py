"""The models the gateway offers: one per pool and one per pool and kind, and what each pool is.

``GET /v1/models`` lists ``POOL`` and ``POOL/KIND`` for every pool in ``CATO_POOLS``. The
bare pool name takes the endpoint's kind (completion for ``/v1/completions``, generation
for ``/v1/chat/completions``), which the ``x-cato-kind`` header may change; an alias
``POOL/KIND`` names the kind itself.

A pool the pools file defines has that file's ``max_model_len`` and ``fim`` template and
its model's tokenizer (chat templates, token counts); any other pool is simulated: the
simulated engine's context and characters per token (``CATO_PROFILE`` or the defaults),
the ``plain`` template and no tokenizer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from cato_mq.engine import text_only
from cato_mq.engine.timing import EngineTiming
from cato_mq.fleet.pools import load_pools
from cato_mq.gateway.errors import invalid, unknown_model
from cato_mq.schemas import Kind
from cato_mq.settings import Settings

log = logging.getLogger("cato_mq.gateway")


@dataclass(frozen=True)
class Pool:
    name: str
    max_model_len: int
    fim: str
    tokenizer: Any | None = None
    chars_per_token: float = 4.0
    owned_by: str = "cato-mq"

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in the pool's model (estimated for a simulated pool, as its engine does)."""
        if self.tokenizer is None:
            return max(1, round(len(text) / self.chars_per_token))
        return len(self.tokenizer.encode(text))


def load_tokenizer(model_dir: str) -> Any | None:
    """The model's tokenizer; None (with a warning) when transformers or the files are missing."""
    text_only.hide()  # before transformers loads (engine.text_only says why)
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(model_dir)
    except Exception as exc:  # no transformers, no tokenizer files: chat falls back, counts estimate
        log.warning("no tokenizer for %s (%s): fallback chat template, estimated token counts", model_dir, exc)
        return None


class Catalog:
    def __init__(self, settings: Settings, tokenizers: bool = True) -> None:
        timing = EngineTiming.load(settings.profile) if settings.profile else EngineTiming()
        specs = load_pools(settings.pools_file) if settings.pools_file else {}
        self.pools: dict[str, Pool] = {}
        for name in settings.pools:
            spec = specs.get(name)
            if spec is None:
                self.pools[name] = Pool(name, timing.max_model_len, "plain", None, timing.chars_per_token)
            else:
                tok = load_tokenizer(str(spec.model)) if tokenizers else None
                self.pools[name] = Pool(name, spec.max_model_len, spec.fim, tok, owned_by=str(spec.model.name))

    def ids(self) -> list[str]:
        return [i for p in self.pools for i in (p, *(f"{p}/{k.value}" for k in Kind))]

    def resolve(self, model: str, default: Kind, header: str | None) -> tuple[Pool, Kind]:
        """The pool and kind a request's ``model`` and ``x-cato-kind`` header name."""
        name, _, alias = model.partition("/")
        if name not in self.pools or (alias and alias not in Kind.__members__):
            raise unknown_model(model, self.ids())
        if header is not None and header not in Kind.__members__:
            raise invalid(f"x-cato-kind must be one of {', '.join(Kind.__members__)}, not {header!r}",
                          param="x-cato-kind")
        if alias and header and alias != header:
            raise invalid(f"model {model!r} names kind {alias!r} but x-cato-kind says {header!r}",
                          param="x-cato-kind")
        return self.pools[name], Kind(alias or header or default)

    def listing(self, created: int) -> dict[str, Any]:
        data = []
        for pool in self.pools.values():
            for model_id in (pool.name, *(f"{pool.name}/{k.value}" for k in Kind)):
                data.append({"id": model_id, "object": "model", "created": created, "owned_by": pool.owned_by,
                             "root": pool.name, "parent": None if model_id == pool.name else pool.name,
                             "max_model_len": pool.max_model_len})
        return {"object": "list", "data": data}
