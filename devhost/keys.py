"""Function keys, checked the way Azure checks them (Core Tools only does with --enableAuth; devhost always does, so
a route that would need a key in Azure needs one here too).

- auth level ANONYMOUS: no key;
- FUNCTION: the function key or the master key;
- ADMIN (and the /admin API): the master key only;
- the Event Grid webhook: the `eventgrid_extension` system key or the master key.
A key comes in the `code` query parameter or the `x-functions-key` header.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

FUNCTION_KEY_SETTING = "DEVHOST_FUNCTION_KEY"
MASTER_KEY_SETTING = "DEVHOST_MASTER_KEY"
EVENTGRID_KEY_SETTING = "DEVHOST_EVENTGRID_KEY"
KEY_HEADER = "x-functions-key"
KEY_QUERY = "code"


class AuthLevel(Enum):
    """What a caller must present; the names match azure.functions.AuthLevel and function.json's authLevel."""

    ANONYMOUS = "anonymous"
    FUNCTION = "function"
    ADMIN = "admin"

    @classmethod
    def parse(cls, text: str | None, *, where: str) -> AuthLevel:
        if text is None:
            return cls.FUNCTION
        try:
            return cls(str(text).lower())
        except ValueError:
            raise ValueError(f"{where}: authLevel must be anonymous, function or admin, got {text!r}") from None


@dataclass(frozen=True)
class HostKeys:
    """The three secrets devhost accepts. `repr` hides them so a logged object never leaks a key.

    `generated` names the ones devhost made up because settings gave none: only those are printed (in the ready
    line), since nobody else can know them; a key that came from settings never appears in the output, or in the
    log files a caller keeps of it.
    """

    function_key: str
    master_key: str
    eventgrid_key: str
    generated: frozenset[str] = field(default=frozenset(), compare=False)

    def __repr__(self) -> str:
        return "HostKeys(<hidden>)"

    @classmethod
    def from_settings(cls, environ: Mapping[str, str]) -> HostKeys:
        """Keys from DEVHOST_FUNCTION_KEY / DEVHOST_MASTER_KEY / DEVHOST_EVENTGRID_KEY, else fresh random ones."""

        generated: set[str] = set()

        def pick(name: str, field_name: str) -> str:
            value = environ.get(name, "").strip()
            if value:
                return value
            generated.add(field_name)
            return secrets.token_urlsafe(32)

        return cls(
            function_key=pick(FUNCTION_KEY_SETTING, "function_key"),
            master_key=pick(MASTER_KEY_SETTING, "master_key"),
            eventgrid_key=pick(EVENTGRID_KEY_SETTING, "eventgrid_key"),
            generated=frozenset(generated),
        )

    def printable(self) -> dict[str, str]:
        """The keys devhost generated (the only ones it may print), by field name."""
        return {name: getattr(self, name) for name in sorted(self.generated)}

    def allows(self, level: AuthLevel, presented: str | None) -> bool:
        """Whether `presented` opens a function of this auth level."""
        if level is AuthLevel.ANONYMOUS:
            return True
        accepted = [self.master_key] if level is AuthLevel.ADMIN else [self.function_key, self.master_key]
        return _matches_any(presented, accepted)

    def allows_eventgrid(self, presented: str | None) -> bool:
        """Whether `presented` is the Event Grid extension's system key (or the master key, which opens everything)."""
        return _matches_any(presented, [self.eventgrid_key, self.master_key])


def presented_key(query: Mapping[str, str], headers: Mapping[str, str]) -> str | None:
    """The key a request carries: the x-functions-key header wins over ?code=, as in the Functions host."""
    return headers.get(KEY_HEADER) or query.get(KEY_QUERY) or None


def _matches_any(presented: str | None, accepted: list[str]) -> bool:
    if not presented:
        return False
    given = presented.encode()
    # compare with every key (no early exit) so timing does not tell which one nearly matched
    results = [hmac.compare_digest(given, key.encode()) for key in accepted]
    return any(results)
