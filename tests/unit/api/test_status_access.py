"""Who may open the status page: with the function key where the host checks it, and behind App Service
authentication a signed-in operator without one (the route is then anonymous at the host, so the app itself refuses
anyone else). Run in a fresh interpreter, as the host indexes the app once, with the platform's settings in place."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

PROBE = r"""
import base64, json, os, sys
os.environ.update(json.loads(sys.argv[1]))
import azure.functions as func
import function_app

level = next(
    b["authLevel"] for f in function_app.app.get_functions() if f.get_function_name() == "status"
    for b in json.loads(f.get_function_json())["bindings"] if b["type"] == "httpTrigger"
)
function_app.bootstrap.deps = lambda: (_ for _ in ()).throw(AssertionError("deps() reached"))  # only if let through

def principal(oid):
    claims = [{"typ": "oid", "val": oid}, {"typ": "preferred_username", "val": "someone@example.org"}]
    return base64.b64encode(json.dumps({"claims": claims}).encode()).decode()

answers = {}
people = {
    "nobody": {},
    "stranger": {"X-MS-CLIENT-PRINCIPAL": principal(sys.argv[3])},
    "operator": {"X-MS-CLIENT-PRINCIPAL": principal(sys.argv[2])},
}
for who, headers in people.items():
    response = function_app.status(func.HttpRequest("GET", "https://app/api/status", headers=headers, body=b""))
    answers[who] = [response.status_code, json.loads(response.get_body())["error"]["code"]]
print(json.dumps({"level": level, "answers": answers}))
"""

OPERATOR = "0f2b8c1d-4a5e-4f6a-8b7c-9d0e1f2a3b4c"
STRANGER = "7b2c3d4e-5f6a-4b7c-9d8e-0f1a2b3c4d5e"


def _probe(env: dict[str, str]) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(env), OPERATOR, STRANGER],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_behind_app_service_authentication_only_a_signed_in_operator_may_open_it_without_a_key():
    env = {
        "WEBSITE_AUTH_ENABLED": "true",
        "WEBSITE_INSTANCE_ID": "instance",
        "CMK_OPERATORS": OPERATOR,
        "CMK_ALLOW_FUNCTION_KEY_ONLY": "true",  # allowed for the operator routes; never for an anonymous page
    }
    probed = _probe(env)
    assert probed["level"] == "ANONYMOUS"
    answers = probed["answers"]
    assert answers["nobody"] == answers["stranger"] == [403, "CallerNotAllowed"]
    assert answers["operator"] == [500, "InternalError"]  # let through: it reached the ports (stubbed to fail here)


def test_elsewhere_the_host_checks_the_function_key():
    assert _probe({"WEBSITE_AUTH_ENABLED": ""})["level"] == "FUNCTION"
