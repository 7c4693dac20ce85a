"""The built wheel, installed into a fresh venv, works from outside the repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, ROOT

pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 900) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_wheel_installs_and_answers_offline(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSDESK_", "OPENAI_"))}
    env.update(NEWSDESK_HOME=str(tmp_path / "home"), NO_COLOR="1", PYTHONDONTWRITEBYTECODE="1")
    dist = tmp_path / "dist"
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(dist), str(ROOT)],
        tmp_path,
        env,
    )  # fmt: skip
    (wheel,) = dist.glob("newsdesk-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for shipped in ("prompts/answer.md", "prompts/condense.md", "prompts/choice.md"):
        assert shipped in names, f"{shipped} missing from the wheel"
    assert not any(n.startswith(("tests/", "examples/")) for n in names)

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path, env)
    _run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], tmp_path, env)

    work = tmp_path / "elsewhere"  # not the repository: nothing importable from the checkout
    shutil.copytree(EXAMPLES, work / "articles")
    newsdesk = str(venv / "bin" / "newsdesk")
    _run([newsdesk, "ingest", "articles"], work, env)
    out = _run(
        [newsdesk, "ask", "Will China mediate between Russia and Ukraine?", "--json"], work, env
    )
    data = json.loads(out)
    assert data["mode"] == "extractive" and not data["abstained"] and data["citations"]
    out = _run([newsdesk, "ask", "Who won the 2022 FIFA World Cup final?", "--json"], work, env)
    assert json.loads(out)["abstained"] is True
