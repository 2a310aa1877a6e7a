"""The tenants' `version` (GET/PUT/DELETE /v1/tenants) never goes back: a reset does not restart it at 0
(reviewer finding 5), on both stores, and a second process (a new leader) sees the same numbers."""

from __future__ import annotations

from typing import Any

from mesos_gpu.store.settings import TENANTS, TenantsBook
from tests.store.conftest import StoreBackend, backend  # noqa: F401 - `backend`: memory and ZooKeeper

ONE = {"tenants": {"a": {"quota": 1}}}
TWO = {"tenants": {"a": {"quota": 2}}}


def _version(book: TenantsBook) -> Any:
    return book.describe()["version"]


def test_versions_only_go_up_across_resets(backend: StoreBackend) -> None:  # noqa: F811
    book = TenantsBook(backend.open())
    book.reload()
    seen = []
    for step in (ONE, TWO, None, ONE, None, None, TWO, ONE):
        if step is None:
            book.reset()
            assert _version(book) is None and book.source == "none"
        else:
            book.replace(step)
            seen.append(_version(book))
    assert seen == sorted(set(seen)), seen          # strictly increasing
    other = TenantsBook(backend.open())             # a new leader reads the same version
    other.reload()
    assert _version(other) == seen[-1]
    assert other.store.read_setting(TENANTS).data == book.current().to_dict()


def test_a_reset_with_nothing_stored_changes_nothing(backend: StoreBackend) -> None:  # noqa: F811
    book = TenantsBook(backend.open())
    book.replace(ONE)
    first = _version(book)
    book.reset()
    book.reset()
    book.replace(ONE)
    assert _version(book) == first + 1
