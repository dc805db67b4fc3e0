"""Locations as people see them: every credential in a URL or message masked.

Stores build their ``location`` (shown in ``repr``, in every error message, in the CLI
and in a backup's manifest) with :func:`mask_credentials`, and anything that shows a
URL or a driver message passes it through the same function, so a password never
reaches a terminal, a log or a file in clear. It masks the password of a URL's
userinfo, query parameters whose name looks like a credential (``password``,
``sslpassword``, ``passfile``, ``token``, ``secret``, ``api_key``, ...) and libpq-style
``password=...`` pairs in free text.

>>> mask_credentials("postgresql+psycopg://me:s3cret@db:5432/rl")
'postgresql+psycopg://me:***@db:5432/rl'
>>> mask_credentials("postgresql://db/rl?user=me&password=s3cret&sslmode=require")
'postgresql://db/rl?user=me&password=***&sslmode=require'
>>> mask_credentials("connection failed: host=db password='a b' user=me")
'connection failed: host=db password=*** user=me'
>>> mask_credentials("memory/agent_memory.db")
'memory/agent_memory.db'
"""

from __future__ import annotations

import re

MASK = "***"

# scheme://user:password@host -- the password may itself hold '@' or ':'; the host part
# after the last '@' of the authority holds none of '@', '/', '?', '#'.
_USERINFO_PASSWORD = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:@/?#]*:)(?P<secret>\S*?)"
    r"(?P<tail>@[^\s@/?#]*(?=[/?#\s]|$))"
)
_CREDENTIAL_NAME = r"[^\s=&#;?]*(?:pass|pwd|secret|token|key|cred|auth)[^\s=&#;?]*"
_QUERY_CREDENTIAL = re.compile(
    rf"(?P<head>[?&;](?i:{_CREDENTIAL_NAME})=)(?P<secret>[^&#\s]*)",
)
_CONNINFO_CREDENTIAL = re.compile(
    r"(?P<head>(?<![\w?&;])(?i:password|sslpassword|passfile)\s*=\s*)"
    r"(?P<secret>'(?:[^'\\]|\\.)*'|[^\s'&]+)"
)


def mask_credentials(text: str) -> str:
    """``text`` with every password, token or key in URLs and ``key=value`` pairs masked.

    Safe on any text: paths and messages without credentials come back unchanged.

    >>> mask_credentials("postgresql://u:p@ss@h/db")
    'postgresql://u:***@h/db'
    >>> mask_credentials("sqlite:///m.db?sslpassword=x&mode=ro&passfile=/home/me/.pgpass")
    'sqlite:///m.db?sslpassword=***&mode=ro&passfile=***'
    """
    masked = _USERINFO_PASSWORD.sub(lambda m: m["head"] + MASK + m["tail"], text)
    masked = _QUERY_CREDENTIAL.sub(lambda m: m["head"] + MASK, masked)
    return _CONNINFO_CREDENTIAL.sub(lambda m: m["head"] + MASK, masked)


__all__ = ["MASK", "mask_credentials"]
