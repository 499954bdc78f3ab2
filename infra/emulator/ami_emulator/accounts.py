"""Acting as another AWS account.

moto picks the account per request from (1) MOTO_ACCOUNT_ID, (2) the
`x-moto-account-id` header, (3) an access key created through moto's IAM/STS
(e.g. STS AssumeRole into arn:aws:iam::<acct>:role/x, an existing role whose trust
policy allows the caller: sts_trust.py), else 123456789012.
The Rust SDK cannot easily add a header, so the emulator adds a shortcut: an access
key id that is exactly 12 digits (e.g. `111122223333`) selects that account. The
launcher never sets MOTO_ACCOUNT_ID (it would pin every request to one account).
"""
from __future__ import annotations

import re

CRED_RE = re.compile(r"Credential=([^/,\s]+)/")
# The SigV4 credential scope's region (group 1) and signing name (group 2): which
# service a request is for, and where (the middleware and direct_ec2 all read it here).
SCOPE_RE = re.compile(r"Credential=[^/]+/\d+/([^/]+)/([^/]+)/")
DEFAULT_ACCOUNT = "123456789012"


def access_key(environ) -> str | None:
    m = CRED_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
    return m.group(1) if m else None


def apply(environ) -> None:
    """WSGI hook: map a 12-digit access key id to moto's account header."""
    key = access_key(environ)
    if key and re.fullmatch(r"\d{12}", key) and "HTTP_X_MOTO_ACCOUNT_ID" not in environ:
        environ["HTTP_X_MOTO_ACCOUNT_ID"] = key


def account_of(environ) -> str:
    """The account a request acts as, decided as moto decides it: the account header (which
    apply() sets for a 12-digit key), else the account whose IAM or STS issued the access
    key (an assumed role's session acts as the role's account), else the default. The token
    buckets and the Recycle Bin are per account, as on AWS: reading only the header put
    every assumed-role session into the default account's buckets."""
    explicit = environ.get("HTTP_X_MOTO_ACCOUNT_ID")
    if explicit:
        return explicit
    key = access_key(environ)
    if not key:
        return DEFAULT_ACCOUNT
    from moto.iam.models import get_account_id_from

    return get_account_id_from(key)
