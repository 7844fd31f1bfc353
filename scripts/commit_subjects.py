"""Commit subjects of at most 72 characters, the detail in the body.

    python3 scripts/commit_subjects.py --message-file .git/COMMIT_EDITMSG   # the commit-msg hook
    python3 scripts/commit_subjects.py --range <base>..<head>               # every commit of a range

The subject is what `git log --format=%s` shows: the message's first paragraph, its lines joined by spaces
(git pretty.c format_subject), so a title wrapped onto a second line still counts whole. Standard library
only, so the hook runs without the project's .venv. CI checks a pull request's commits (pull-request.yml,
HEAD^1..HEAD^2 of GitHub's test merge); tests/test_commit_subjects.py the commits this clone has that its
upstream does not. A range skips merge commits: their subjects are git's or GitHub's, not the author's.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

MAX_SUBJECT = 72


def subject_of(message: str, comment_char: str = "#") -> str:
    """The subject git records for `message` as the commit-msg hook sees it: comment lines are still in the
    file then (git strips them after the hook), leading blank lines are dropped, the first paragraph's lines
    are joined by one space."""
    lines = [line.strip() for line in message.splitlines() if not line.startswith(comment_char)]
    while lines and not lines[0]:
        lines.pop(0)
    paragraph = []
    for line in lines:
        if not line:
            break
        paragraph.append(line)
    return " ".join(paragraph)


def long_subjects(commits: Iterable[tuple[str, str]]) -> list[str]:
    """One line per (commit, subject) whose subject is longer than MAX_SUBJECT characters."""
    return [
        f"{commit[:12]}: {len(subject)} > {MAX_SUBJECT} characters: {subject[:80]}..."
        for commit, subject in commits
        if len(subject) > MAX_SUBJECT
    ]


def commits_in(revision_range: str, cwd: Path | None = None) -> list[tuple[str, str]]:
    """(commit, subject) of every commit in `revision_range` but merges, as git records them."""
    out = subprocess.run(
        ["git", "log", "--no-merges", "--format=%H%x00%s", revision_range],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [(commit, subject) for commit, _, subject in (line.partition("\0") for line in out.splitlines())]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--message-file", type=Path, help="a commit message file (the commit-msg hook's $1)")
    which.add_argument("--range", help="a git revision range, e.g. main..HEAD")
    args = parser.parse_args(argv)
    if args.message_file:
        problems = long_subjects([("new commit", subject_of(args.message_file.read_text()))])
    else:
        problems = long_subjects(commits_in(args.range))
    for problem in problems:
        print(f"{problem}\n  Keep the subject <= {MAX_SUBJECT} characters; the detail goes in the body.")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
