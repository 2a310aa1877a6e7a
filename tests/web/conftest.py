"""Fixtures of the web page's tests: a live `mesos-gpu local` stack (ZooKeeper from the shared fixture, the
embedded Mesos cluster with 2 agents x 2 simulated GPUs, the scheduler and its API, which serves the page)
and one headless Chromium per module."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from selenium import webdriver

from mesos_gpu.standalone import Standalone
from tests.web.browser import chromium, missing


@pytest.fixture(scope="module")
def local(zk_hosts: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standalone]:
    """A live local stack: 2 agents x 2 simulated GPUs (16 GB each), the scheduler and its API."""
    stack = Standalone(
        zk_hosts=zk_hosts,
        framework_name=f"web-{uuid.uuid4().hex[:8]}",
        workdir=tmp_path_factory.mktemp("web-local"),
        tick_seconds=0.2,
        cluster_options={"allocation_interval": 0.2},
        share_linger_seconds=2.0,
    )
    with stack:
        yield stack


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    why = missing()
    if why is not None:
        pytest.fail(why)  # never skipped: the page's tests are part of `make test`
    driver = chromium(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield driver
    finally:
        driver.quit()
