"""The app's functions as the host indexes them, read once per test process.

`FunctionApp.get_functions()` may be called only once per app object (a second call finds every name taken and
raises), so every test that reads the index shares this one reading.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any


@cache
def indexed_functions() -> dict[str, Any]:
    """Function name -> its azure.functions Function object."""
    import function_app

    return {f.get_function_name(): f for f in function_app.app.get_functions()}


def http_routes() -> set[tuple[str, str]]:
    """(`/route`, lower-case method) of every HTTP trigger."""
    routes = set()
    for function in indexed_functions().values():
        for binding in json.loads(function.get_function_json())["bindings"]:
            if binding["type"] == "httpTrigger":
                routes |= {(f"/{binding['route']}", str(m).lower()) for m in binding["methods"]}
    return routes
