"""Headless Debian chromium through playwright (import ``browser`` as a fixture)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from playwright import sync_api as playwright

FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        raise RuntimeError("Debian's chromium is missing: `make test` installs it")
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[playwright.Browser]:
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=FLAGS)
        yield browser
        browser.close()
