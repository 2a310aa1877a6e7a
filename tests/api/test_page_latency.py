"""The web page's routes (`/` and `/static/{path}`) are counted in the request latency histogram with
their route pattern, never the file's name (reviewer finding 6)."""

from __future__ import annotations

from tests.api.promtext import parsed
from tests.api.test_prometheus import close, leader, open_client, scrape  # noqa: F401 - `leader`: fixture


def test_the_page_and_its_files_are_in_the_latency_histogram(leader) -> None:  # noqa: F811
    client = open_client(leader)
    try:
        for path in ("/", "/static/main.js", "/static/style.css", "/static/no-such-file.js"):
            client.request("GET", path)
        text = scrape(client)
    finally:
        close(client)
    counts = parsed(text)["mesos_gpu_api_request_duration_seconds_count"]
    routes = {dict(labels)["route"]: count for labels, count in counts.items()}
    assert routes.get("/") == 1, routes
    assert routes.get("/static/{path}") == 3, routes
    assert not any("main.js" in route or "style.css" in route for route in routes)
    codes = parsed(text)["mesos_gpu_api_requests_total"]
    assert sum(count for labels, count in codes.items() if dict(labels)["code"] == "404") >= 1
