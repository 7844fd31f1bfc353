"""Keep a federated-token file fresh for the whole GitHub Actions job, from the job's own OIDC endpoint.

GitHub's OIDC token lives about 5 minutes and a deploy needs Azure tokens up to its 70 minutes later, so
this re-requests it and atomically rewrites AZURE_FEDERATED_TOKEN_FILE before it expires.

    python3 federated_token_refresher.py --file PATH --once              # fetch and write one token
    python3 federated_token_refresher.py --file PATH --for-seconds 3600  # keep it fresh until then

Standard library only; never prints the token. Why, and who reads the file:
docs/architecture/ci-cd.md#federated-token-refresher."""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

AUDIENCE = "api://AzureADTokenExchange"
# Rewrite at least this often, so a token read from the file always has most of its ~5 minutes left.
REFRESH_EVERY_SECONDS = 60
# Never keep a token in the file closer than this to its expiry.
EXPIRY_MARGIN_SECONDS = 120
REQUEST_TIMEOUT_SECONDS = 10


class TokenRequestError(RuntimeError):
    pass


def request_url(base: str, audience: str = AUDIENCE) -> str:
    """ACTIONS_ID_TOKEN_REQUEST_URL already carries a query (api-version); add the audience to it."""
    parts = urllib.parse.urlsplit(base)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query = [(k, v) for k, v in query if k != "audience"] + [("audience", audience)]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def jwt_claims(token: str) -> dict[str, object]:
    """The payload of a JWT, unverified: only `exp`/`aud` are read, to schedule the next refresh."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError) as error:
        raise TokenRequestError("the OIDC endpoint answered something that is not a JWT") from error
    if not isinstance(claims, dict):
        raise TokenRequestError("the OIDC token payload is not a JSON object")
    return claims


def fetch_token(url: str, bearer: str, audience: str = AUDIENCE) -> tuple[str, float]:
    """(token, expiry epoch seconds) from the job's OIDC endpoint."""
    request = urllib.request.Request(  # noqa: S310 - the runner's https endpoint (a loopback one in tests)
        request_url(url, audience),
        headers={"Authorization": f"Bearer {bearer}", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:  # noqa: S310
            body = json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise TokenRequestError(f"OIDC endpoint answered HTTP {error.code}") from error
    except (urllib.error.URLError, TimeoutError, ValueError) as error:
        raise TokenRequestError(f"OIDC endpoint unreachable or unreadable: {error}") from error
    token = body.get("value") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise TokenRequestError('OIDC endpoint answer has no "value"')
    claims = jwt_claims(token)
    aud = claims.get("aud")
    if aud != audience and not (isinstance(aud, list) and audience in aud):
        raise TokenRequestError(f"OIDC token audience is {aud!r}, expected {audience!r}")
    exp = claims.get("exp")
    if not isinstance(exp, int | float):
        raise TokenRequestError("OIDC token has no exp claim")
    return token, float(exp)


def write_atomically(path: Path, token: str) -> None:
    """Readers never see a half-written file: write a 0600 temp file beside it, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(token)
        Path(temp).replace(path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def next_refresh_in(expiry: float, now: float, every: float, margin: float) -> float:
    return max(1.0, min(every, expiry - margin - now))


def run(args: argparse.Namespace, clock=time.time, sleep=time.sleep) -> int:  # type: ignore[no-untyped-def]
    url = os.environ.get("ACTIONS_ID_TOKEN_REQUEST_URL", "")
    bearer = os.environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "")
    if not url or not bearer:
        print(
            "::error title=OIDC token::ACTIONS_ID_TOKEN_REQUEST_URL/TOKEN are not set: the job needs "
            "`permissions: id-token: write`",
            file=sys.stderr,
        )
        return 2
    path = Path(args.file)
    deadline = clock() + args.for_seconds
    backoff = 1.0
    written = 0
    while True:
        try:
            token, expiry = fetch_token(url, bearer, args.audience)
            write_atomically(path, token)
            written += 1
            backoff = 1.0
            wait = next_refresh_in(expiry, clock(), args.every, args.margin)
            print(f"federated token #{written} written, valid for {int(expiry - clock())}s", flush=True)
        except (TokenRequestError, OSError) as error:
            if args.once:
                print(f"::error title=OIDC token::{error}", file=sys.stderr)
                return 1
            print(f"::warning title=OIDC token refresh::{error}; retrying in {backoff:.0f}s", flush=True)
            wait, backoff = backoff, min(backoff * 2, 30.0)
        if args.once:
            return 0
        if clock() + wait >= deadline:
            return 0
        sleep(wait)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", required=True, help="the federated-token file (AZURE_FEDERATED_TOKEN_FILE)")
    parser.add_argument("--once", action="store_true", help="write one token and exit (fails on error)")
    parser.add_argument("--for-seconds", type=float, default=3600.0, help="stop refreshing after this")
    parser.add_argument("--every", type=float, default=REFRESH_EVERY_SECONDS, help="refresh interval")
    parser.add_argument("--margin", type=float, default=EXPIRY_MARGIN_SECONDS, help="refresh before expiry")
    parser.add_argument("--audience", default=AUDIENCE)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
