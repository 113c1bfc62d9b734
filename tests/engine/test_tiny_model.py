"""The tiny model is deterministic, has the shapes vLLM's CPU kernels accept, and its
tokenizer round-trips code."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("tokenizers")
pytest.importorskip("transformers")

from cato_mq.engine.tiny_model import make_tiny_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny"), seed=0)


def test_shapes_fit_vllm_cpu(tiny: Path) -> None:
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(tiny)
    assert cfg.model_type == "llama"
    # vLLM's CPU attention rejects head_dim 16; 64 works
    assert cfg.hidden_size // cfg.num_attention_heads == 64
    assert (cfg.num_hidden_layers, cfg.intermediate_size, cfg.vocab_size) == (2, 256, 2048)
    assert cfg.max_position_embeddings >= 2048


def test_weights_are_small_float32(tiny: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny)
    params = list(model.parameters())
    assert all(p.dtype == torch.float32 for p in params)
    assert sum(p.numel() for p in params) < 1_000_000


def test_tokenizer_round_trips_code_and_adds_bos(tiny: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny)
    code = "def f(self, x: int) -> int:\n    return self.value + x\n"
    ids = tok.encode(code)
    assert ids[0] == tok.bos_token_id
    assert tok.decode(ids, skip_special_tokens=True) == code
    # a trained BPE, not bytes: common code compresses well below one token per char
    assert len(ids) < len(code) / 2
    # byte-level: text never seen in training still round-trips, no <unk>
    odd = "naïve ✓ 日本 \x00\t"
    assert tok.decode(tok.encode(odd), skip_special_tokens=True) == odd
    assert tok.eos_token == "</s>" and len(tok) == 2048


def test_same_seed_same_files_other_seed_other_weights(tiny: Path, tmp_path: Path) -> None:
    again = make_tiny_model(tmp_path / "again", seed=0)
    for name in ("config.json", "tokenizer.json", "model.safetensors"):
        assert (again / name).read_bytes() == (tiny / name).read_bytes(), name
    other = make_tiny_model(tmp_path / "other", seed=1)
    assert (other / "model.safetensors").read_bytes() != (tiny / "model.safetensors").read_bytes()


def test_custom_corpus_sets_vocab(tmp_path: Path) -> None:
    from transformers import AutoConfig, AutoTokenizer

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("for i in range(10):\n    print(i)\n" * 50)
    out = make_tiny_model(tmp_path / "m", corpus=corpus)
    # a small corpus yields fewer merges; the model's vocabulary follows the tokenizer's
    assert AutoConfig.from_pretrained(out).vocab_size == len(AutoTokenizer.from_pretrained(out)) < 2048


def test_empty_corpus_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no text"):
        make_tiny_model(tmp_path / "m", corpus=tmp_path)
