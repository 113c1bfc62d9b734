"""The text a gateway request sends to the model: fill-in-the-middle templates and chat.

* **Completions without ``suffix``** go through as sent: an editor (Continue's autocomplete)
  renders its model's fill-in-the-middle template itself.
* **Completions with ``suffix``**: the server renders the pool's template (``fim`` in the
  pools file; ``plain`` where no pools file names one). vLLM's own server refuses
  ``suffix``. The families' templates, as their model cards give them:

  ============== =====================================================================
  qwen-coder     ``<|fim_prefix|>P<|fim_suffix|>S<|fim_middle|>``
  starcoder      ``<fim_prefix>P<fim_suffix>S<fim_middle>``
  codellama      ``<PRE> P <SUF>S <MID>``
  deepseek-coder ``<\uff5cfim\u2581begin\uff5c>P<...hole...>S<...end...>`` (fullwidth bars, U+2581)
  plain          ``<prefix>P<suffix>S<middle>`` (the tiny model, and simulated pools)
  ============== =====================================================================

* **Chat**: the pool tokenizer's own chat template, with the generation prompt added. A
  pool whose tokenizer has none (the tiny model), or that has no tokenizer (a simulated
  pool), gets the fallback: each message as ``<|ROLE|>\\nCONTENT\\n``, then
  ``<|assistant|>\\n``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: family -> (before the prefix, between prefix and suffix, after the suffix)
FIM: dict[str, tuple[str, str, str]] = {
    "qwen-coder": ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),
    "starcoder": ("<fim_prefix>", "<fim_suffix>", "<fim_middle>"),
    "codellama": ("<PRE> ", " <SUF>", " <MID>"),
    "deepseek-coder": ("<\uff5cfim\u2581begin\uff5c>", "<\uff5cfim\u2581hole\uff5c>", "<\uff5cfim\u2581end\uff5c>"),
    "plain": ("<prefix>", "<suffix>", "<middle>"),
}


def fill_in_the_middle(family: str, prefix: str, suffix: str) -> str:
    """The prompt that asks a model of ``family`` for the code between prefix and suffix."""
    begin, hole, end = FIM[family]
    return f"{begin}{prefix}{hole}{suffix}{end}"


def fallback_chat(messages: Sequence[dict[str, str]]) -> str:
    """The documented chat rendering for a pool without a chat template."""
    return "".join(f"<|{m['role']}|>\n{m['content']}\n" for m in messages) + "<|assistant|>\n"


def render_chat(messages: Sequence[dict[str, str]], tokenizer: Any | None) -> str:
    """``messages`` (role and text content) as the prompt of a chat turn."""
    template = getattr(tokenizer, "chat_template", None) if tokenizer is not None else None
    if not template or tokenizer is None:
        return fallback_chat(messages)
    return str(tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True))
