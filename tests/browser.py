"""Debian's chromium for the browser tests: installed by the test setup where it can be.

As root with apt, missing packages are installed (chromium, fonts-noto-cjk for Chinese
glyphs). Elsewhere the browser tests are skipped with the command to run — except in CI
(CI=true), where a missing browser is a failure, never a skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
PACKAGES = ("chromium", "fonts-noto-cjk")
HOW_TO = "install them with: sudo apt-get install -y chromium fonts-noto-cjk"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--no-first-run"]


def _missing() -> list[str]:
    missing = []
    for package in PACKAGES:
        status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
        if "install ok installed" not in status.stdout:
            missing.append(package)
    return missing


def ensure_chromium() -> Path:
    if shutil.which("dpkg-query") is None:
        return _unavailable("this is not a Debian system")
    missing = _missing()
    if missing and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=900)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], env=env,
                       capture_output=True, timeout=1800)
        missing = _missing()
    if missing or not CHROMIUM.exists():
        return _unavailable(f"missing {', '.join(missing) or CHROMIUM}")
    return CHROMIUM


def _unavailable(reason: str):
    message = f"browser tests need Debian's chromium and fonts-noto-cjk ({reason}); {HOW_TO}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)
