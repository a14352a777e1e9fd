"""Every endpoint of the OpenAPI document, fuzzed for every role and anonymous.

Requests are generated from `/api/v1/openapi.json` (schemathesis + hypothesis) and sent to the
app in-process on the real database. Whatever comes in, the answer is never a 5xx (with
TESTING on, an unhandled exception surfaces here instead of becoming a 500), and every error is
JSON with a stable `code` and a human `message`.

`make test` runs a few examples per operation and role (FLOOR_FUZZ_EXAMPLES, default 4);
`make fuzz` runs many more.
"""
from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed")

EXAMPLES = int(os.environ.get("FLOOR_FUZZ_EXAMPLES", "4"))
ROLES = ("packer", "qc", "supervisor", "integration", "device", None)


def _error_shape_problem(response: Any) -> str | None:
    if response.status_code >= 500:
        return f"{response.status_code} server error: {response.text[:300]}"
    if response.status_code < 400:
        return None
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code} answered without JSON: {response.text[:200]}"
    if not (isinstance(body, dict) and isinstance(body.get("code"), str) and body["code"]
            and isinstance(body.get("message"), str) and body["message"]):
        return f"{response.status_code} error without code and message: {str(body)[:200]}"
    return None


@pytest.mark.parametrize("role", ROLES, ids=[r or "anonymous" for r in ROLES])
def test_no_endpoint_answers_5xx_or_an_error_without_code(app: Any, tokens: dict[str, str],
                                                          role: str | None) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    headers = {"Authorization": f"Bearer {tokens[role]}"} if role else {}
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        seen: set[str] = set()

        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=False,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def call(case: Any) -> None:
            case.headers = {**(case.headers or {}), **headers}
            try:
                response = case.call()
            except Exception as exc:  # noqa: BLE001 - an unhandled error is a 500 in production
                problem = f"raised {type(exc).__name__}: {str(exc)[:200]}"
            else:
                problem = _error_shape_problem(response)
            if problem and problem not in seen:
                seen.add(problem)
                failures.append(f"{operation.label} as {role or 'anonymous'}: {problem}\n"
                                f"    path={case.path_parameters} query={case.query} "
                                f"body={str(case.body)[:200]!s}")

        call()
    assert operations > 30, "the OpenAPI document lists too few operations"
    assert not failures, "\n".join(failures)
