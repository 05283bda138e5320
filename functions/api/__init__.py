"""What the operator API answers: HTTP answers from handler outcomes, the status of every key, the audit log.

functions.api.answers turns an outcome or an error into status, body and headers (function_app only wraps it in an
HttpResponse); functions.api.key_status is `GET /api/keys`, functions.api.key_view one key of it
(`GET /api/keys/{name}`); functions.api.audit_log is `GET /api/audit`; functions.api.status_page is `GET /api/status`
(drawn by functions.api.status_html) and `GET /api/alerts`.
functions.api.openapi (the OpenAPI 3.1 document, literals in functions.api.openapi_schemas) is not imported here: only
its route needs it, so importing the app does not pay for it.
"""

from functions.api.answers import Answer, error_answer, ok, revocation_answer, rotation_answer
from functions.api.audit_log import read_audit
from functions.api.key_status import keys_status
from functions.api.key_view import key_detail, principal_label
from functions.api.status_html import HEADERS as STATUS_PAGE_HEADERS
from functions.api.status_page import alerts_list, status_page, status_view

__all__ = [
    "STATUS_PAGE_HEADERS",
    "Answer",
    "alerts_list",
    "error_answer",
    "key_detail",
    "keys_status",
    "ok",
    "principal_label",
    "read_audit",
    "revocation_answer",
    "rotation_answer",
    "status_page",
    "status_view",
]
