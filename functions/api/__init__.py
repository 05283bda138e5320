"""What the operator API answers: HTTP answers from handler outcomes, the status of every key, the audit log.

functions.api.answers turns an outcome or an error into status, body and headers (function_app only wraps it in an
HttpResponse); functions.api.key_status is `GET /api/keys`; functions.api.audit_log is `GET /api/audit`.
functions.api.openapi (the OpenAPI 3.1 document, literals in functions.api.openapi_schemas) is not imported here: only
its route needs it, so importing the app does not pay for it.
"""

from functions.api.answers import Answer, error_answer, ok, revocation_answer, rotation_answer
from functions.api.audit_log import read_audit
from functions.api.key_status import keys_status

__all__ = ["Answer", "error_answer", "keys_status", "ok", "read_audit", "revocation_answer", "rotation_answer"]
