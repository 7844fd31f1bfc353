"""The OIDC subject table of the docs: which identity trusts which subject, and which jobs present it.

Rendered from the access model (verify/access/model.py): the identities and their federated credentials come
from the bootstrap's offline plan (bootstrap/__main__.py builds them from muse:githubSubjectPrefixes), and the
subject each job presents from the workflow files (model.subject_of, GitHub's rule: the environment, then
pull_request, then the ref). So the table cannot state a subject the workflows do not use.

`make export` writes it between the SECTION markers of docs/architecture/ci-cd.md and docs/github-setup.md
(export/artifacts.py `section`); `make drift` fails when the committed table differs.
"""

from __future__ import annotations

from verify.access.model import Model

SECTION = "oidc-subjects"


def render(model: Model, prefixes: tuple[str, ...]) -> str:
    """The table (markdown, no trailing newline) for `model`, whose tokens start with one of `prefixes`."""
    shown = " or ".join(f"`{p}`" for p in prefixes)
    lines = [
        f"Every subject below is `<prefix>:<context>` with the prefix {shown} (`muse:githubSubjectPrefixes`:",
        "[github-setup.md](/docs/github-setup.md#subject-format) says how to check which one your repository",
        "uses); Entra matches it exactly. Generated from the bootstrap's identities and the workflows' jobs.",
        "",
        "| identity (bootstrap) | trusts the context | jobs that present it |",
        "| --- | --- | --- |",
    ]
    for key, identity in sorted(model.identities.items()):
        if identity.kind != "github":
            continue
        for context in sorted(identity.subjects):
            jobs = sorted({run.label for run in model.jobs if run.identity == key and run.subject == context})
            users = ", ".join(jobs) or "- (no job: remove the credential)"
            lines.append(f"| `{key}` | `{context}` | {users} |")
    return "\n".join(lines)
