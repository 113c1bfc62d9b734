"""How cato-mq starts Flower: a login always, state on disk when asked."""

from __future__ import annotations

from pathlib import Path

import pytest

from cato_mq.fleet.flower import Login, command


def test_logins_parse_and_generate() -> None:
    assert Login.parse("ops:s3:cr:et") == Login("ops", "s3:cr:et")
    for bad in ("nopassword", ":x", "x:"):
        with pytest.raises(ValueError, match="USER:PASSWORD"):
            Login.parse(bad)
    a, b = Login.generate(), Login.generate()
    assert a.user == "cato" and a.password != b.password and len(a.password) >= 16


def test_command_always_has_the_login_and_keeps_state_when_given_a_db(tmp_path: Path) -> None:
    cmd = command(5555, Login("ops", "pw"), db=tmp_path / "f.db", address="0.0.0.0")
    assert "--basic_auth=ops:pw" in cmd and "--persistent=True" in cmd and f"--db={tmp_path / 'f.db'}" in cmd
    assert "--address=0.0.0.0" in cmd and "--port=5555" in cmd
    assert not any(a.startswith("--db") for a in command(5555, Login("ops", "pw")))
