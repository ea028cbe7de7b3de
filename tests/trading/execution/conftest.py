"""Fixtures for the execution tests that trade on the paper venue."""

import pytest

from tests.trading.execution.books import forget_books_and_orders


@pytest.fixture
def paper_books(db):
    """No books or paper orders left from another test, before or after this one."""
    forget_books_and_orders()
    yield
    forget_books_and_orders()
