"""Redaction: the one function that takes secrets out of text before it reaches a user or a log.

Errors, logs, banners, the doctor and the API's answers pass URLs and messages through `redact`,
so a Redis password or an API token never leaves the process: not in `redis://:pw@h`,
`redis://user:pw@h`, `redis+sentinel://user:pw@h1,h2/svc`, `unix://…?password=pw`, nor in a
request line's `?token=`. Known secrets (the configured tokens, the password of REDIS_URL) are
also replaced wherever they appear verbatim.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import unquote

MASK = "***"
# Query parameters whose value is a credential (redis-py reads `password`; SSE reads `token`).
SECRET_PARAMS = ("password", "passwd", "pwd", "pass", "token", "access_token", "api_key", "apikey", "secret")
SECRET_PARAM_RE = re.compile(
    r"(?P<key>[?&;](?:" + "|".join(SECRET_PARAMS) + r")=)(?P<value>[^&;#\s'\"<>]*)", re.IGNORECASE
)
# scheme://userinfo@ : the user info runs to the last '@' before the URL ends (a space or a quote),
# so an unescaped '@' inside a password is masked too. Several hosts (Sentinel) need no special case.
USERINFO_RE = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^\s'\"<>]*)@")
MIN_SECRET_CHARS = 3  # shorter "secrets" would mask ordinary words


def _userinfo(match: re.Match[str]) -> str:
    user, sep, _password = match["userinfo"].partition(":")
    # `user:password@`: the user name stays (it says which ACL user); a lone `x@` may be a password.
    return f"{match['scheme']}{user}:{MASK}@" if sep else f"{match['scheme']}{MASK}@"


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every credential in a URL or query string, and every known secret, masked."""
    out = USERINFO_RE.sub(_userinfo, text)
    out = SECRET_PARAM_RE.sub(lambda m: m["key"] + MASK, out)
    for secret in sorted({s for s in secrets if len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True):
        out = out.replace(secret, MASK)
    return out


def url_secrets(url: str) -> list[str]:
    """The credentials inside a URL (as written and percent-decoded), to mask them in any text."""
    found: list[str] = []
    m = USERINFO_RE.search(url)
    if m:
        user, sep, password = m["userinfo"].partition(":")
        found.append(password if sep else user)
    found += [m["value"] for m in SECRET_PARAM_RE.finditer(url)]
    return [v for s in found if s for v in dict.fromkeys((s, unquote(s)))]


class RedactFilter(logging.Filter):
    """A logging filter that redacts each record in place: its message, its arguments (kept as a
    tuple, for formatters such as uvicorn's access log that read them by position) and its
    traceback. Attach it to handlers, so records propagated from any logger pass through it."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(secrets)

    def _clean(self, value: object) -> object:
        if isinstance(value, str):
            return redact(value, self.secrets)
        if isinstance(value, int | float | bool) or value is None:
            return value
        text = str(value)
        cleaned = redact(text, self.secrets)
        return value if cleaned == text else cleaned

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg, self.secrets)
        if isinstance(record.args, tuple):
            record.args = tuple(self._clean(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: self._clean(v) for k, v in record.args.items()}
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        return True
