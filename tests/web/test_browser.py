"""The web page in a real headless Chromium (Debian's chromium + chromium-driver through Selenium),
against a live `mesos-gpu local` stack: 2 agents x 2 simulated GPUs, the scheduler and its API.

What it must show (issue 15): the map shows every agent and GPU; a job submitted through the form has its
tasks on the map within 2 s; a job that cannot fit shows why; killing from the page ends the job; a
failing field shows its JSON path. Also: the page under a path prefix (DC/OS Admin Router), the login when
reads need a token, and keyboard use of the map.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from mesos_gpu.api.app import make_app
from mesos_gpu.api.server import ApiServer
from mesos_gpu.core.config import SchedulerSettings
from mesos_gpu.core.scheduling import make_planner
from mesos_gpu.core.taskinfo import LaunchSettings
from mesos_gpu.driver.runtime import FrameworkOptions, SchedulerRuntime
from mesos_gpu.standalone import ZK_BASE, Standalone
from mesos_gpu.store.zk import connect
from tests.waiting import wait_until
from tests.web.prefix import admin_router

pytestmark = [pytest.mark.browser, pytest.mark.zookeeper]

WAIT = 10.0


def api_json(local: Standalone, path: str, method: str = "GET", body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{local.api_url}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def css(browser: webdriver.Chrome, selector: str) -> list[Any]:
    return browser.find_elements(By.CSS_SELECTOR, selector)


def text_of(browser: webdriver.Chrome, selector: str) -> str:
    """The text of the first element matching `selector` ("" when none), read in one step (the page
    re-renders as it polls, so an element found first and read later may be gone)."""
    return str(browser.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.innerText : ''", selector))


def open_view(browser: webdriver.Chrome, base: str, view: str) -> None:
    if browser.current_url.split("#")[0] != base:
        browser.get(base + "#" + view)
    else:
        browser.execute_script("location.hash = arguments[0]", view)


def submit_through_the_form(browser: webdriver.Chrome, base: str, job: dict[str, Any]) -> None:
    open_view(browser, base, "submit")
    wait_until(lambda: css(browser, "#submit-json") and css(browser, "#submit-json")[0].is_displayed(),
               WAIT, "the submit form")
    browser.execute_script("document.getElementById('submit-json').value = arguments[0]", json.dumps(job))
    css(browser, "#submit-form button[type=submit]")[0].click()


def job_on_page(browser: webdriver.Chrome) -> str:
    """The id of the job whose page the browser shows (after a submit, the page goes there)."""
    return str(wait_until(lambda: browser.execute_script(
        "const h = decodeURIComponent(location.hash); return h.startsWith('#job/') ? h.slice(5) : null"),
        WAIT, "the new job's page"))


def _press_enter(browser: webdriver.Chrome) -> bool:
    try:
        browser.switch_to.active_element.send_keys(Keys.ENTER)
    except StaleElementReferenceException:  # re-rendered between finding and pressing: press again
        return False
    return True


@pytest.fixture(autouse=True)
def no_script_errors(browser: webdriver.Chrome) -> Iterator[None]:
    """After each test: the page threw nothing (refused requests, 4xx, are the network's, not errors)."""
    browser.get_log("browser")  # drop what earlier tests left
    yield
    thrown = [e for e in browser.get_log("browser") if e["level"] == "SEVERE" and e["source"] != "network"]
    assert not thrown, thrown


@pytest.fixture(scope="module")
def base(local: Standalone) -> str:
    return f"{local.api_url}/"


def test_the_map_shows_every_agent_and_gpu(browser: webdriver.Chrome, base: str, local: Standalone) -> None:
    browser.get(base)
    wait_until(lambda: len(css(browser, "#map-agents .agent")) == 2, WAIT, "two agent rows")
    cells = css(browser, "#map-agents .gpu")
    assert len(cells) == 4 and all(c.get_attribute("data-state") == "free" for c in cells)
    assert "4 GPUs on 2 agent(s)" in text_of(browser, "#map-summary")
    assert "Simulated-GPU" in text_of(browser, "#map-agents .agent")
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def active_key(browser: webdriver.Chrome) -> str | None:
    return browser.execute_script("return document.activeElement.dataset.key || null")  # type: ignore[no-any-return]


def test_the_map_is_one_tab_stop_and_the_arrows_move_between_gpus(
    browser: webdriver.Chrome, base: str
) -> None:
    browser.get(base)
    wait_until(lambda: len(css(browser, "#map-agents .gpu")) == 4, WAIT, "the map")
    keys = [c.get_attribute("data-key") for c in css(browser, "#map-agents .gpu")]
    browser.find_element(By.ID, "map-job").send_keys(Keys.TAB)
    assert active_key(browser) == keys[0]  # Tab from the last filter lands on the first GPU
    browser.switch_to.active_element.send_keys(Keys.ARROW_RIGHT)
    assert active_key(browser) == keys[1]
    browser.switch_to.active_element.send_keys(Keys.ARROW_DOWN)
    assert active_key(browser) == keys[3]  # the same GPU of the next agent
    browser.switch_to.active_element.send_keys(Keys.HOME)
    assert active_key(browser) == keys[2]
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    assert css(browser, '#map-agents .gpu[aria-pressed="true"]')[0].get_attribute("data-key") == keys[2]
    assert "127.0.0.2" in text_of(browser, "#map-detail-body")  # the second agent's details
    browser.switch_to.active_element.send_keys(Keys.TAB)  # one Tab leaves the map (a single tab stop)
    assert active_key(browser) is None
    browser.switch_to.active_element.send_keys(Keys.SHIFT, Keys.TAB)
    assert active_key(browser) == keys[2]  # and comes back to the GPU last focused


def test_a_job_submitted_through_the_form_is_on_the_map_within_2_s(
    browser: webdriver.Chrome, base: str, local: Standalone
) -> None:
    job = {"name": "web-whole", "command": "sleep 120", "tenant": "team-web",
           "roles": {"worker": {"instances": 2, "cpus": 0.1, "mem": 32, "gpus": 1}}}
    submit_through_the_form(browser, base, job)
    clicked = time.monotonic()
    job_id = job_on_page(browser)
    open_view(browser, base, "map")
    wait_until(lambda: len(css(browser, f'#map-agents .gpu.whole[data-jobs~="{job_id}"]')) == 2, 2.0,
               "the job's two tasks on the map")
    assert time.monotonic() - clicked <= 2.5  # 2 s from the click, plus the browser's own round trips
    # keyboard: Tab to a GPU (focus), Enter pins its details; the map keeps focus across its updates
    browser.execute_script("document.querySelector(arguments[0]).focus()",
                           f'#map-agents .gpu.whole[data-jobs~="{job_id}"]')
    wait_until(lambda: _press_enter(browser), WAIT, "Enter on the focused GPU")
    wait_until(lambda: job_id in text_of(browser, "#map-detail-body"), WAIT, "the GPU's details")
    assert "team-web" in text_of(browser, "#map-detail-body")
    assert css(browser, f'#map-agents .gpu[aria-pressed="true"][data-jobs~="{job_id}"]')
    # the tenant filter dims every GPU the tenant has no task on
    browser.find_element(By.CSS_SELECTOR, "#map-tenant option[value='team-web']").click()
    wait_until(lambda: len(css(browser, "#map-agents .gpu.dim")) == 2, WAIT, "two dimmed GPUs")
    browser.find_element(By.CSS_SELECTOR, "#map-tenant option[value='']").click()


def test_a_job_that_cannot_fit_shows_its_reason(
    browser: webdriver.Chrome, base: str, local: Standalone
) -> None:
    submit_through_the_form(browser, base, {"name": "web-huge", "command": "true", "gpus": 8})
    job_id = job_on_page(browser)
    why = "#job-facts dd[data-fact='Why it waits']"
    reason = wait_until(lambda: "gpus" in text_of(browser, why) and text_of(browser, why), WAIT, "the reason")
    assert reason == api_json(local, f"/v1/jobs/{job_id}")["wait_reason"]
    open_view(browser, base, "map")
    wait_until(lambda: job_id in text_of(browser, "#map-waiting"), WAIT, "the job among the waiting ones")
    assert "insufficient gpus" in text_of(browser, f"#waiting-list li[data-job='{job_id}'] .reason")


def test_killing_from_the_page_ends_the_job(browser: webdriver.Chrome, base: str, local: Standalone) -> None:
    job_id = api_json(local, "/v1/jobs", "POST", {"name": "web-kill", "command": "sleep 120", "cpus": 0.1,
                                                  "mem": 32, "gpus": 0.25, "isolation": "shared"})["id"]
    open_view(browser, base, f"job/{job_id}")
    wait_until(lambda: text_of(browser, "#job-facts dd[data-fact='State']") == "RUNNING", WAIT, "RUNNING")
    browser.find_element(By.ID, "job-kill").click()
    dialog = browser.find_element(By.ID, "kill-dialog")
    wait_until(dialog.is_displayed, WAIT, "the confirmation")
    assert job_id in dialog.text
    browser.find_element(By.ID, "kill-cancel").click()  # cancelling kills nothing
    assert api_json(local, f"/v1/jobs/{job_id}")["kill_requested"] is False
    browser.find_element(By.ID, "job-kill").click()
    browser.find_element(By.ID, "kill-confirm").click()
    wait_until(lambda: text_of(browser, "#job-facts dd[data-fact='State']") == "KILLED", WAIT, "KILLED")
    assert api_json(local, f"/v1/jobs/{job_id}")["state"] == "KILLED"


def test_a_failing_field_shows_its_json_path(browser: webdriver.Chrome, base: str) -> None:
    submit_through_the_form(browser, base, {"name": "web-bad", "command": "x",
                                            "roles": {"worker": {"instances": 1, "mem": "lots"}}})
    wait_until(lambda: css(browser, "#submit-errors li[data-path]"), WAIT, "the errors")
    paths = [li.get_attribute("data-path") for li in css(browser, "#submit-errors li[data-path]")]
    assert "/roles/worker/mem" in paths
    assert "/roles/worker/mem" in text_of(browser, "#submit-errors")
    assert css(browser, "#submit-json")[0].get_attribute("aria-invalid") == "true"
    css(browser, "#submit-errors li[data-path='/roles/worker/mem'] button")[0].click()
    selected = browser.execute_script(
        "const a = document.getElementById('submit-json');"
        "return [document.activeElement === a, a.value.slice(a.selectionStart, a.selectionEnd)]")
    assert selected == [True, '"mem"']  # the error leads to its field


def test_a_task_log_follows_its_output(browser: webdriver.Chrome, base: str, local: Standalone) -> None:
    job_id = api_json(local, "/v1/jobs", "POST", {
        "name": "web-logs", "command": "for i in 1 2 3 4 5 6; do echo tick-$i; sleep 0.3; done; sleep 30",
        "cpus": 0.1, "mem": 32})["id"]
    open_view(browser, base, f"job/{job_id}")
    wait_until(lambda: text_of(browser, "#job-facts dd[data-fact='State']") == "RUNNING", WAIT, "RUNNING")
    browser.find_element(By.CSS_SELECTOR, "#logs-form button[type=submit]").click()
    wait_until(lambda: "tick-6" in text_of(browser, "#logs"), WAIT, "the log's last line")
    assert text_of(browser, "#logs").split().count("tick-1") == 1  # followed by offset: nothing twice
    api_json(local, f"/v1/jobs/{job_id}", "DELETE")


@pytest.fixture
def behind_admin_router(local: Standalone) -> Iterator[tuple[str, list[str]]]:
    requests: list[str] = []
    server = ApiServer("127.0.0.1", 0)
    server.start(admin_router("mesos-gpu", local.api_url, requests))
    try:
        yield f"{server.url}/service/mesos-gpu/", requests
    finally:
        server.stop()


def test_the_page_works_under_the_admin_router_prefix(
    browser: webdriver.Chrome, behind_admin_router: tuple[str, list[str]]
) -> None:
    url, requests = behind_admin_router
    browser.get(url)
    wait_until(lambda: len(css(browser, "#map-agents .gpu")) >= 4, WAIT, "the map through the prefix")
    open_view(browser, url, "jobs")
    wait_until(lambda: css(browser, "#jobs-table tbody tr[data-job]"), WAIT, "the jobs through the prefix")
    assert requests and all(r.startswith("/service/mesos-gpu/") for r in requests), requests


@pytest.fixture
def guarded(local: Standalone) -> Iterator[str]:
    """A second API on the same scheduler whose reads need a token (as MESOS_GPU_API_AUTH_READS=true)."""
    assert local.runtime is not None and local.cluster is not None
    settings = SchedulerSettings(api_tokens=("page-token",), api_auth_reads=True)
    app = make_app(local.runtime, settings=settings, launcher_bundle=b"",
                   master_url=local.cluster.master_address)
    server = ApiServer("127.0.0.1", 0)
    server.start(app)
    try:
        yield f"{server.url}/"
    finally:
        server.stop()


def test_the_login_keeps_the_token_in_the_tab_and_sends_it(browser: webdriver.Chrome, guarded: str) -> None:
    browser.get(guarded)
    wait_until(lambda: browser.find_element(By.ID, "login").is_displayed(), WAIT, "the login")
    field = browser.find_element(By.ID, "token")
    field.send_keys("wrong")
    field.send_keys(Keys.ENTER)
    wait_until(lambda: "refused" in text_of(browser, "#login-error"), WAIT, "the refusal")
    field.send_keys("page-token")
    field.send_keys(Keys.ENTER)
    wait_until(lambda: len(css(browser, "#map-agents .gpu")) >= 4, WAIT, "the map after signing in")
    assert browser.execute_script("return sessionStorage.getItem('mesos-gpu-token')") == "page-token"
    browser.find_element(By.ID, "signout").click()
    assert browser.execute_script("return sessionStorage.getItem('mesos-gpu-token')") is None


@pytest.fixture
def standby(local: Standalone, zk_hosts: str) -> Iterator[str]:
    """A second scheduler of the same framework (a real standby: same ZooKeeper store and election)
    serving the API and the page."""
    assert local.cluster is not None
    store = connect(f"zk://{zk_hosts}{ZK_BASE}", local.framework_name, timeout=15.0)
    server = ApiServer("127.0.0.1", 0)
    port = server.bind()
    runtime = SchedulerRuntime(
        store=store, planner=make_planner(), identifier=f"127.0.0.1:{port}",
        options=FrameworkOptions(master=local.cluster.master_address, name=local.framework_name),
        launch=LaunchSettings(framework_name=local.framework_name),
    )
    runtime.start()
    server.start(make_app(runtime, settings=SchedulerSettings(), launcher_bundle=b"",
                          master_url=local.cluster.master_address))
    try:
        yield f"{server.url}/"
    finally:
        server.stop()
        runtime.stop()
        store.close()


def test_a_standby_page_names_the_leader(browser: webdriver.Chrome, standby: str, local: Standalone) -> None:
    browser.get(standby)
    wait_until(lambda: "standby" in text_of(browser, "#status"), WAIT, "the standby's answer")
    assert f"{local.api_url}/" in text_of(browser, "#status")  # the leader's page, by its address
