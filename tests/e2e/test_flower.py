"""Flower, the web monitor, watching a real worker behind its login: it enables events, sees
our tasks, refuses the API without the login, and renders the live workers in a real
browser (headless Chromium)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.error import HTTPError

import pytest

from cato_mq import CodingTask, submit
from cato_mq.fleet import flower as flower_proc
from cato_mq.fleet import launch
from tests.conftest import WorkerFactory

pytest.importorskip("flower")

LOGIN = flower_proc.Login.generate()


def get(url: str, login: flower_proc.Login | None = LOGIN) -> object:
    request = urllib.request.Request(url)
    if login is not None:
        token = base64.b64encode(str(login).encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=5) as resp:
        return json.loads(resp.read())


@pytest.fixture
def flower(redis_url: str, tmp_path: Path) -> Iterator[str]:
    port = launch.free_port()
    proc = flower_proc.start(redis_url, port, LOGIN, db=tmp_path / "flower.db", log=tmp_path / "flower.log")
    base = f"http://127.0.0.1:{port}"
    try:
        flower_proc.wait_ready(base, proc)
        yield base
    finally:
        launch.stop([proc])


def test_the_api_needs_the_login(flower: str) -> None:
    with pytest.raises(HTTPError) as refused:
        get(f"{flower}/api/workers", login=None)
    assert refused.value.code == 401
    with pytest.raises(HTTPError) as wrong:
        get(f"{flower}/api/workers", login=flower_proc.Login(LOGIN.user, "not-it"))
    assert wrong.value.code == 401
    assert isinstance(get(f"{flower}/api/workers"), dict)


def test_flower_sees_workers_and_node_tasks(workers: WorkerFactory, flower: str) -> None:
    workers()  # started without --events: Flower's enable_events broadcast turns them on
    until = time.monotonic() + 30
    while True:  # flower asks the workers (inspect) and lists those that answered
        listed = get(f"{flower}/api/workers?refresh=1")
        assert isinstance(listed, dict)
        if any(name.startswith("default-sim-d0@") for name in listed):
            break
        assert time.monotonic() < until, f"flower never listed the worker: {listed}"
        time.sleep(0.1)

    seen: dict[str, object] = {}
    until = time.monotonic() + 45
    while not seen:  # Flower's enable_events broadcast reaches the worker within seconds
        assert time.monotonic() < until, "flower never showed a cato.node task"
        rid = submit(CodingTask(kind="summarization", prompt="def f(): pass", max_tokens=4)).result(10).request_id
        tasks = get(f"{flower}/api/tasks")
        assert isinstance(tasks, dict)
        seen = {tid: t for tid, t in tasks.items() if tid.startswith(rid)}

    # events flow now, so a request sent from here on is seen from received to succeeded
    result = submit(CodingTask(kind="summarization", prompt="def g(): pass", max_tokens=4)).result(10)
    rid = result.request_id
    task: dict[str, object] = {}
    while task.get("state") != "SUCCESS":  # events arrive asynchronously
        assert time.monotonic() < until, f"flower never saw {rid} succeed: {task}"
        time.sleep(0.05)
        try:
            info = get(f"{flower}/api/task/info/{rid}-0-llm")
        except HTTPError:  # 404 until its first event arrives
            continue
        assert isinstance(info, dict)
        task = info
    assert task["name"] == "cato.node"
    assert str(task["worker"]).startswith("default-sim-d0@")
    shown = json.dumps(task)  # what anyone who can open Flower reads: no prompt, no generated code
    assert "def g(): pass" not in shown and result.text not in shown
    assert f"'request': '{rid}'" in str(task["result"])
    metrics = urllib.request.urlopen(f"{flower}/metrics", timeout=5).read().decode()
    assert 'flower_events_total{task="cato.node"' in metrics


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: Flags for a headless Chromium on a machine with no network beyond loopback: without the
#: background-networking ones it keeps trying to reach Google's hosts.
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (Debian package chromium)")
def test_a_browser_logs_in_and_sees_the_live_workers(workers: WorkerFactory, flower: str, tmp_path: Path) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    workers()
    workers(device="1")
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            with pytest.raises(playwright.Error, match="AUTH"):  # no login, no page
                browser.new_page().goto(f"{flower}/workers")
            page = browser.new_context(http_credentials={"username": LOGIN.user, "password": LOGIN.password},
                                       viewport={"width": 1280, "height": 600}).new_page()
            for name in ("default-sim-d0@", "default-sim-d1@"):
                # Flower fills its table from the workers' replies: reload until both are in it
                until = time.monotonic() + 60
                while name not in page.content():
                    assert time.monotonic() < until, f"{name} never appeared on the workers page"
                    page.goto(f"{flower}/workers?refresh=1")
                    page.wait_for_load_state("networkidle")
            shot = Path(os.environ.get("CATO_SCREENSHOT_DIR", tmp_path)) / "flower-workers.png"
            page.screenshot(path=str(shot))
            assert shot.stat().st_size > 0
        finally:
            browser.close()
