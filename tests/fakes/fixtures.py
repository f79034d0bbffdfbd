"""pytest fixtures for the provider stub.

Load them from tests/conftest.py with:

    pytest_plugins = ["tests.fakes.fixtures"]

`provider_stub` gives a clean stub for each test (one server for the whole session) and
points the adapters at it: settings.TWILIO_API_BASE_URL and settings.META_GRAPH_BASE_URL.
"""

from __future__ import annotations

import pytest

from tests.fakes.provider_stub import ProviderStub


@pytest.fixture(scope="session")
def provider_stub_server():
    with ProviderStub() as stub:
        yield stub


@pytest.fixture
def provider_stub(provider_stub_server, settings):
    stub = provider_stub_server
    stub.reset()
    settings.TWILIO_API_BASE_URL = stub.twilio_base_url
    settings.META_GRAPH_BASE_URL = stub.meta_base_url
    yield stub
    stub.reset()
