"""Shared test helpers: the ../shared data and fixtures, read in place (never copied)."""
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("EDGE_EDET_SHARED", os.path.join(os.path.dirname(REPO), "shared"))
DATA = os.path.join(SHARED, "data")
FIXTURES = os.path.join(SHARED, "fixtures")


def shared_path(*parts: str) -> str:
    """Path under ../shared; skips the test (with the reason) when it is absent."""
    path = os.path.join(SHARED, *parts)
    if not os.path.exists(path):
        pytest.skip(f"shared data {path} is absent (tests read ../shared beside the checkout)")
    return path


@pytest.fixture(scope="session")
def shared():
    return shared_path
