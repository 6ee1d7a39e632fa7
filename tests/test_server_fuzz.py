"""The API fuzzed from its own OpenAPI description with schemathesis: for inputs in and out of
the description, no 5xx, and every response (errors included) matches its schema."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (content_type_conformance, negative_data_rejection,
                                               response_schema_conformance,
                                               status_code_conformance)
from schemathesis.checks import not_a_server_error

from semsearch import Engine
from semsearch.server import create_app

from conftest import HashingEmbedder
from test_server import PAPERS


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "idx"
    Engine(path, embedder=HashingEmbedder()).build(PAPERS)
    # schemathesis addresses its requests to "testserver": answered as a server open to other
    # names would (the host check has tests of its own)
    app = create_app(Engine.open(path, embedder=HashingEmbedder()), any_host=True)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_the_api_holds_to_its_description(case):
    case.call_and_validate(checks=[not_a_server_error, status_code_conformance,
                                   content_type_conformance, response_schema_conformance,
                                   negative_data_rejection])
