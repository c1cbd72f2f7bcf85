"""A bounded schemathesis run against the OpenAPI spec (in-process): no input the schema allows, or that
schemathesis derives from it to break it, makes the server answer 5xx."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip(
    "schemathesis", reason="schemathesis not installed (pip install schemathesis)"
)
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from aigcrec.service.app import create_app  # noqa: E402
from test_service_support import open_state  # noqa: E402

AUTH = {"Authorization": "Bearer test-key"}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    app = create_app(open_state(tmp_path_factory.mktemp("schema") / "s.sqlite", n_items=60))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.mark.slow
def test_no_server_error(api_schema):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 8
    calls: dict[int, int] = {}
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                run_bounded(operation, mode, calls)
            except Unsatisfiable:  # an operation without inputs has no invalid request to generate
                assert mode is GenerationMode.NEGATIVE

    assert sum(calls.values()) >= 100
    assert {200, 422} <= set(calls)  # valid and invalid requests were both generated


def run_bounded(operation, mode, calls: dict[int, int]) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=15,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def no_5xx(case):
        response = case.call(headers=AUTH if case.method == "POST" else {})
        calls[response.status_code] = calls.get(response.status_code, 0) + 1
        case.validate_response(response, checks=[not_a_server_error])

    no_5xx()
