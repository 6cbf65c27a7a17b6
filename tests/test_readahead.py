"""Read-ahead (crm_connectors.readahead): the next page is asked for while the caller handles the
current one; calls stay one at a time, in order, and the same calls as without it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from crm_connectors.readahead import read_ahead


class Pages:
    """A fake listing of ``count`` pages that records every call and how many overlap."""

    def __init__(self, count: int, fail_at: int | None = None) -> None:
        self.count = count
        self.fail_at = fail_at
        self.calls: list[int] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()

    def fetch(self, n: int) -> Callable[[], int]:
        def call() -> int:
            with self.lock:
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                self.calls.append(n)
                if n == self.fail_at:
                    raise RuntimeError(f"page {n} failed")
                return n
            finally:
                with self.lock:
                    self.in_flight -= 1

        return call

    def following(self, page: int) -> Callable[[], int] | None:
        return self.fetch(page + 1) if page + 1 < self.count else None


def test_given_pages_when_read_ahead_then_every_page_once_in_order_one_call_at_a_time() -> None:
    listing = Pages(5)
    assert list(read_ahead(listing.fetch(0), listing.following)) == [0, 1, 2, 3, 4]
    assert listing.calls == [0, 1, 2, 3, 4]
    assert listing.max_in_flight == 1


def test_given_a_page_handed_over_when_the_caller_works_then_the_next_is_already_asked_for() -> (
    None
):
    listing = Pages(3)
    pages = read_ahead(listing.fetch(0), listing.following)
    assert next(pages) == 0
    # The caller holds page 0; page 1 was asked for before page 0 was handed over.
    for _ in range(1000):
        if 1 in listing.calls:
            break
        time.sleep(0.01)
    assert listing.calls == [0, 1]
    assert list(pages) == [1, 2]


def test_given_a_failing_fetch_when_reading_then_the_error_is_raised_at_that_page() -> None:
    listing = Pages(5, fail_at=2)
    seen: list[int] = []
    with pytest.raises(RuntimeError, match="page 2 failed"):
        for page in read_ahead(listing.fetch(0), listing.following):
            seen.append(page)
    assert seen == [0, 1]


def test_given_a_caller_that_stops_early_when_closed_then_the_call_in_flight_is_finished() -> None:
    listing = Pages(10)
    pages = read_ahead(listing.fetch(0), listing.following)
    assert next(pages) == 0
    pages.close()
    # At most the one page already asked for was fetched, and nothing runs after close.
    assert listing.calls in ([0], [0, 1])
    assert listing.in_flight == 0


def test_given_the_last_page_when_read_then_no_further_call_is_made() -> None:
    listing = Pages(1)
    assert list(read_ahead(listing.fetch(0), listing.following)) == [0]
    assert listing.calls == [0]
