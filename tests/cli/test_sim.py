"""``cato-mq simulate``: runs from the command line, refuses bad arguments with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cato_mq.cli import main, parser


def test_simulate_prints_a_table_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rows.json"
    code = main(["simulate", "--rate", "10", "--duration", "5", "--system", "cato", "--system", "round-robin",
                 "--data", str(tmp_path / "none"), "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr()
    assert "| paper | 10.0 | cato |" in printed.out
    assert "routing decision" in printed.err and "synthetic prompts" in printed.err
    assert [r["system"] for r in json.loads(out.read_text())] == ["cato", "round-robin"]


def test_simulate_refuses_an_unknown_system(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--system", "ray", "--duration", "1"]) == 2
    assert "unknown system" in capsys.readouterr().err


def test_simulate_without_a_trace_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--workload", "azure", "--data", str(tmp_path)]) == 2
    assert "no Azure trace" in capsys.readouterr().err


@pytest.mark.parametrize(("flag", "value", "why"), [("--vllm-slots", "17", "must be 1 to 16"),
                                                    ("--vllm-slots", "eight", "is not a whole number"),
                                                    ("--vllm-rates", "10,-5", "must be positive"),
                                                    ("--vllm-rounds", "0", "must be at least 1"),
                                                    ("--vllm-systems", "cato+,ray", "unknown system 'ray'"),
                                                    ("--vllm-systems", ",", "needs at least one system")])
def test_bench_goodput_refuses_bad_vllm_sizes(flag: str, value: str, why: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["bench-goodput", "--vllm", flag, value])
    assert exit_.value.code == 2
    assert why in capsys.readouterr().err


def test_bench_goodput_runs_the_named_vllm_systems_in_their_fixed_order() -> None:
    args = parser().parse_args(["bench-goodput", "--vllm", "--vllm-systems", "vllm-priority, cato+,cato+",
                                "--vllm-rounds", "3"])
    assert args.vllm_systems == ("cato+", "vllm-priority") and args.vllm_rounds == 3
