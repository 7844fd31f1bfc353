"""Create or edit this workflow's one comment per stack on a pull request, through GitHub's REST API.

pulumi/actions (v7.0.0, src/libs/pr.ts) finds its previous comment by the heading
`#### :tropical_drink: \\`preview\\` on <project>/<stack>` plus `<summary>Pulumi report</summary>`, but reads
only the first page of comments (`issues.listComments` without pagination: 30 comments), so on a busy pull
request it posts a new comment every push; and it comments only when the preview succeeded. This keeps the
same heading and marker (so a comment pulumi/actions made is the one edited) and pages through every comment:

    GET   {api}/repos/{owner}/{repo}/issues/{number}/comments?per_page=100   then each Link rel="next"
    PATCH {api}/repos/{owner}/{repo}/issues/comments/{comment_id}            {"body": ...}
    POST  {api}/repos/{owner}/{repo}/issues/{number}/comments                {"body": ...}

(GitHub REST API docs: "Issue comments" and "Using pagination in the REST API": per_page at most 100, the
`Link` header names the next page.) `{api}` is GITHUB_API_URL, which the runner sets (https://api.github.com
on github.com); the token is the job's GITHUB_TOKEN (`pull-requests: write`). The first matching comment is
edited, as pulumi/actions does. Standard library only: it runs on the runner before any virtualenv exists.
"""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

MARKER = "<summary>Pulumi report</summary>"
PER_PAGE = 100
MAX_PAGES = 50  # 5,000 comments: bounded, far beyond any pull request
TIMEOUT_SECONDS = 15
NEXT_LINK = re.compile(r'<([^>]+)>;\s*rel="next"')


def heading(project: str, stack: str, command: str = "preview") -> str:
    """pulumi/actions' heading for the comment of one command on one stack (src/libs/pr.ts)."""
    return f"#### :tropical_drink: `{command}` on {project}/{stack}"


@dataclass(frozen=True)
class GitHub:
    api_url: str
    token: str
    repository: str  # owner/name

    def request(self, method: str, url: str, body: dict[str, Any] | None = None) -> tuple[Any, str]:
        """(decoded JSON, Link header)."""
        if urllib.parse.urlsplit(url).scheme not in ("https", "http"):
            raise ValueError(f"not an http(s) URL: {url}")
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - GITHUB_API_URL (a loopback fake in tests)
            url,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
                **({"Content-Type": "application/json"} if data is not None else {}),
            },
        )
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            return json.loads(response.read() or b"null"), response.headers.get("Link", "")

    def comments(self, number: int, max_pages: int = MAX_PAGES) -> list[dict[str, Any]]:
        url: str | None = (
            f"{self.api_url}/repos/{self.repository}/issues/{number}/comments?per_page={PER_PAGE}"
        )
        found: list[dict[str, Any]] = []
        for _ in range(max_pages):
            if url is None:
                break
            page, link = self.request("GET", url)
            found.extend(page)
            match = NEXT_LINK.search(link)
            url = match.group(1) if match else None
        return found


def upsert(github: GitHub, number: int, head: str, body: str, max_pages: int = MAX_PAGES) -> tuple[str, int]:
    """Edit the first comment that starts with `head` and carries the marker, or create one:
    ("edited"|"created", comment id). `body` must start with `head` and carry the marker, so the next run
    finds it again."""
    if not body.startswith(head) or MARKER not in body:
        raise ValueError("the comment body must start with its heading and carry the Pulumi report marker")
    for comment in github.comments(number, max_pages):
        text = comment.get("body") or ""
        if text.startswith(head) and MARKER in text:
            url = f"{github.api_url}/repos/{github.repository}/issues/comments/{comment['id']}"
            github.request("PATCH", url, {"body": body})
            return "edited", int(comment["id"])
    created, _ = github.request(
        "POST", f"{github.api_url}/repos/{github.repository}/issues/{number}/comments", {"body": body}
    )
    return "created", int(created["id"])
