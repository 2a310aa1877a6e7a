"""Regenerate the web page's screenshots (docs/img/web-map.png, docs/img/web-job.png) against a fresh
`mesos-gpu local` stack: 3 agents x 2 simulated GPUs with a few jobs (whole GPUs, shares of two tenants, a
distributed TF-shaped job, one that cannot fit), in headless Chromium 1440 wide (the map 1060 high, to show
the waiting jobs; the job page 900).

Run: `.venv/bin/python -m tests.web.screenshots` (needs ZooKeeper, chromium and chromium-driver, as the
tests do; about 20 s).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from selenium.webdriver.common.by import By

from mesos_gpu.standalone import Standalone
from tests.web.browser import chromium, missing

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "docs" / "img"

JOBS: list[dict[str, Any]] = [
    {"name": "resnet", "tenant": "vision", "priority": 5, "cpus": 0.5, "mem": 256, "gpus": 1,
     "command": "for i in $(seq 1 400); do echo \"step $i loss 0.$((1000 - i))\"; sleep 0.05; done"},
    {"name": "bert-tune", "tenant": "nlp", "command": "sleep 600", "isolation": "capped",
     "roles": {"worker": {"instances": 3, "cpus": 0.2, "mem": 128, "gpus": 0.25, "gpu_memory": 4096}}},
    {"name": "digits", "tenant": "vision", "priority": 2,
     "command": "for i in $(seq 1 400); do echo \"$MESOS_GPU_TF_ROLE-$MESOS_GPU_TF_INDEX step $i\"; "
                "sleep 0.05; done",
     "roles": {"chief": {"instances": 1, "cpus": 0.5, "mem": 256, "gpus": 1},
               "worker": {"instances": 1, "cpus": 0.5, "mem": 256, "gpus": 1},
               "ps": {"instances": 1, "cpus": 0.2, "mem": 128}}},
    {"name": "notebook", "tenant": "nlp", "command": "sleep 600", "isolation": "shared", "cpus": 0.2,
     "mem": 128, "gpus": 0.5},
    {"name": "llm-pretrain", "tenant": "nlp", "command": "true", "gpus": 8},
]


def post(api: str, job: dict[str, Any]) -> str:
    request = urllib.request.Request(f"{api}/v1/jobs", data=json.dumps(job).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.loads(response.read())["id"])


def wait(predicate: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError("the page did not get there")


def main() -> int:
    why = missing()
    if why:
        print(why, file=sys.stderr)
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work, Standalone(
        port=0, agents=3, gpus_per_agent=2, workdir=Path(work) / "local", tick_seconds=0.2,
        cluster_options={"allocation_interval": 0.2},
    ) as local:
        ids = [post(local.api_url, job) for job in JOBS]
        browser = chromium(Path(work) / "profile", height=1060)  # the map with its waiting jobs
        try:
            browser.get(f"{local.api_url}/#map")
            wait(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#map-agents .gpu.whole")) >= 3
                 and browser.find_elements(By.CSS_SELECTOR, "#map-agents .gpu.shared")
                 and browser.find_elements(By.CSS_SELECTOR, "#waiting-list li"))
            browser.execute_script("document.querySelector('#map-agents .gpu.shared').click()")
            wait(lambda: "bert-tune" in browser.find_element(By.ID, "map-detail-body").text)
            browser.save_screenshot(str(OUT / "web-map.png"))
            browser.set_window_size(1440, 900)
            browser.get(f"{local.api_url}/#job/{ids[2]}")
            wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#logs-task option"))
            browser.find_element(By.CSS_SELECTOR, "#logs-form button[type=submit]").click()
            wait(lambda: "chief-0 step 40" in browser.find_element(By.ID, "logs").text)
            browser.save_screenshot(str(OUT / "web-job.png"))
        finally:
            browser.quit()
    print(f"wrote {OUT / 'web-map.png'} and {OUT / 'web-job.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
