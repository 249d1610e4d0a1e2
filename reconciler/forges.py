"""Pull requests (GitHub) and merge requests (GitLab) as values (pure): which forge to ask, the
HTTP requests that propose a revert — look for one open for the revert's branch, open one, ask
for auto-merge — and what the forge's answers mean. ``reconciler.adapters.forge`` sends them.

The shapes are the forges' documented ones:

* GitHub REST: ``GET /repos/{owner}/{repo}/pulls?head=owner:branch&base=…&state=open``;
  ``POST /repos/{owner}/{repo}/pulls`` with ``title``, ``head``, ``base``, ``body`` → ``number``,
  ``html_url``, ``node_id`` (422 when one is open for the branch already). Auto-merge exists in
  GraphQL only (``POST /graphql``): the ``enablePullRequestAutoMerge`` mutation with
  ``pullRequestId`` (the node id) and ``mergeMethod``; its errors come with HTTP 200. Headers
  ``Authorization: Bearer``, ``Accept: application/vnd.github+json``, ``X-GitHub-Api-Version``.
* GitLab REST v4: ``GET /projects/:id/merge_requests?state=opened&source_branch=…&target_branch=…``;
  ``POST /projects/:id/merge_requests`` with ``source_branch``, ``target_branch``, ``title``,
  ``description``, ``remove_source_branch`` → ``iid``, ``web_url`` (409 when one is open for the
  branch already); auto-merge ``PUT /projects/:id/merge_requests/:iid/merge`` with ``auto_merge``
  (GitLab 17.11+) and ``merge_when_pipeline_succeeds`` (before it). ``:id`` is the project's
  numeric id or its URL-encoded path; header ``PRIVATE-TOKEN``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from reconciler.links import host_and_path
from reconciler.types import JSONDict

#: how a revert reaches the branch (``git.revert_via``)
REVERT_VIA = ("push", "pull_request", "auto")
MERGE_METHODS = ("merge", "squash", "rebase")
GITHUB_API_VERSION = "2022-11-28"
_AGENT = "driftless-reconciler"
_AUTO_MERGE = """mutation($pullRequestId: ID!, $mergeMethod: PullRequestMergeMethod!) {
  enablePullRequestAutoMerge(input: {pullRequestId: $pullRequestId, mergeMethod: $mergeMethod}) {
    pullRequest { number }
  }
}"""


class ForgeKind(StrEnum):
    GITHUB = "github"
    GITLAB = "gitlab"


def revert_branch(sha: str) -> str:
    """The branch a revert is proposed from: one per failed revision, so a pass that runs again
    finds the branch (and its request) an earlier one left."""
    return f"driftless/revert-{sha[:12]}"


@dataclass(frozen=True)
class Target:
    kind: ForgeKind
    api_url: str  # no trailing slash
    repository: str  # owner/name; on GitLab the project's path (group/sub/name) or numeric id


def target(kind: str, api_url: str, repository: str, git_url: str) -> Target | str:
    """The forge to ask, from ``forge.*`` and what ``git.url`` tells (its host and path); or the
    problem, naming the key to set."""
    host, path = host_and_path(git_url)
    kind = kind or {"github.com": "github", "gitlab.com": "gitlab"}.get(host or "", "")
    if kind not in tuple(ForgeKind):
        given = f", not {kind!r}" if kind else " (it cannot be guessed from git.url)"
        return f"forge.kind must be github or gitlab{given}"
    forge = ForgeKind(kind)
    repository = repository.strip().strip("/") or path or ""
    if not repository:
        return "forge.repository is needed (it cannot be guessed from git.url)"
    if forge is ForgeKind.GITHUB and repository.count("/") != 1:
        return f"forge.repository must be owner/name on GitHub, not {repository!r}"
    return Target(forge, api_url.strip().rstrip("/") or _default_api(forge, host), repository)


def _default_api(kind: ForgeKind, host: str | None) -> str:
    public = host in (None, "github.com", "gitlab.com")
    if kind is ForgeKind.GITHUB:
        return "https://api.github.com" if public else f"https://{host}/api/v3"
    return "https://gitlab.com/api/v4" if public else f"https://{host}/api/v4"


# ------------------------------------------------------------------ values


@dataclass(frozen=True)
class Call:
    """One HTTP request to the forge's API (the token goes in the headers, added when sent)."""

    method: str
    url: str  # absolute, its path already encoded
    params: tuple[tuple[str, str], ...] = ()
    json: JSONDict | None = None


@dataclass(frozen=True)
class Request:
    """A pull or merge request."""

    number: int  # GitHub's number, GitLab's iid
    url: str  # its web page
    node_id: str = ""  # GitHub's GraphQL id (auto-merge)


@dataclass(frozen=True)
class Proposal:
    """The request that proposes a revert, as the forge has it now."""

    request: Request
    opened: bool  # False: one was open for the branch already (an earlier pass opened it)
    auto_merge: str = ""  # "auto-merge requested", or why not; "" when not asked

    @property
    def note(self) -> str:
        """For the pass's message: "revert proposed in <url> (auto-merge requested)"."""
        extra = f" ({self.auto_merge})" if self.auto_merge else ""
        return f"revert proposed in {self.request.url}{extra}"


def clip(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _texts(value: Any) -> list[str]:
    """The human words in a forge's error field: a string, a list, GitLab's {field: [...]}."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [t for item in value for t in _texts(item)]
    if isinstance(value, dict):
        if "message" in value:
            return _texts(value["message"])
        if "code" in value:  # GitHub: {"resource": "PullRequest", "field": "head", "code": ...}
            return [" ".join(str(value[k]) for k in ("field", "code") if value.get(k))]
        return [f"{key} {text}" for key, inner in value.items() for text in _texts(inner)]
    return []


def answer_words(status: int, data: Any) -> str:
    """What the forge said, for a message: ``HTTP 422: Validation Failed; A pull request ...``."""
    words: list[str] = []
    if isinstance(data, dict):
        for key in ("message", "error", "errors"):
            words += [w for w in _texts(data.get(key)) if w not in words]
    text = "; ".join(words) if words else (data if isinstance(data, str) else "")
    return f"HTTP {status}: {clip(text)}" if text.strip() else f"HTTP {status}"


def transient(status: int, data: Any) -> bool:
    """An answer that passes by itself: the forge failing (5xx), rate-limiting (429, or GitHub's
    403 that says so)."""
    if status >= 500 or status == 429:
        return True
    return status == 403 and "rate limit" in answer_words(status, data).lower()


def already_open(status: int, data: Any) -> bool:
    """The forge refused to open a request because one is open for the branch already (GitHub
    422 "A pull request already exists for …", GitLab 409 "Another open merge request already
    exists for this source branch")."""
    return status in (409, 422) and "already exists" in answer_words(status, data)


def _number(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"not a number: {value!r}")
    return int(value)


# ------------------------------------------------------------------ the two forges


class GitHub:
    name = "GitHub"
    noun = "pull request"
    scopes = "a fine-grained token with Pull requests: write and Contents: write"

    def __init__(self, where: Target) -> None:
        self.target = where
        self._owner = where.repository.split("/", 1)[0]
        self._pulls = f"{where.api_url}/repos/{where.repository}/pulls"

    @property
    def graphql_url(self) -> str:
        """``https://api.github.com/graphql``; GitHub Enterprise: ``https://host/api/graphql``."""
        api = self.target.api_url
        return f"{api.removesuffix('/v3')}/graphql" if api.endswith("/api/v3") else f"{api}/graphql"

    def headers(self, token: str) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": GITHUB_API_VERSION,
            "User-Agent": _AGENT,
        }

    def find(self, branch: str, base: str) -> Call:
        params = (("head", f"{self._owner}:{branch}"), ("base", base), ("state", "open"))
        return Call("GET", self._pulls, params)

    def open(self, branch: str, base: str, title: str, body: str) -> Call:
        fields: JSONDict = {"title": title, "head": branch, "base": base, "body": body}
        return Call("POST", self._pulls, json=fields)

    def auto_merge(self, request: Request, method: str) -> Call:
        variables = {"pullRequestId": request.node_id, "mergeMethod": method.upper()}
        return Call("POST", self.graphql_url, json={"query": _AUTO_MERGE, "variables": variables})

    def read(self, data: Any) -> Request:
        """A pull request in an answer (``ValueError`` when there is none)."""
        if not isinstance(data, dict):
            raise ValueError("not a pull request")
        return Request(_number(data.get("number")), str(data["html_url"]), str(data["node_id"]))

    def read_open(self, data: Any) -> Request | None:
        if not isinstance(data, list):
            raise ValueError("not a list of pull requests")
        return self.read(data[0]) if data else None

    def auto_merged(self, status: int, data: Any) -> str:
        """The answer to the auto-merge request in words (GraphQL errors come with 200)."""
        errors = data.get("errors") if isinstance(data, dict) else None
        if status == 200 and not errors:
            return "auto-merge requested"
        return f"auto-merge not enabled: {answer_words(status, data)}"


class GitLab:
    name = "GitLab"
    noun = "merge request"
    scopes = "a project access token with the api scope and the Developer role"

    def __init__(self, where: Target) -> None:
        self.target = where
        project = quote(where.repository, safe="")  # acme/shop → acme%2Fshop
        self._mrs = f"{where.api_url}/projects/{project}/merge_requests"

    def headers(self, token: str) -> dict[str, str]:
        return {"PRIVATE-TOKEN": token, "Accept": "application/json", "User-Agent": _AGENT}

    def find(self, branch: str, base: str) -> Call:
        params = (("state", "opened"), ("source_branch", branch), ("target_branch", base))
        return Call("GET", self._mrs, params)

    def open(self, branch: str, base: str, title: str, body: str) -> Call:
        fields: JSONDict = {
            "source_branch": branch,
            "target_branch": base,
            "title": title,
            "description": body,
            "remove_source_branch": True,
        }
        return Call("POST", self._mrs, json=fields)

    def auto_merge(self, request: Request, method: str) -> Call:
        fields: JSONDict = {"auto_merge": True, "merge_when_pipeline_succeeds": True}
        if method == "squash":
            fields["squash"] = True
        return Call("PUT", f"{self._mrs}/{request.number}/merge", json=fields)

    def read(self, data: Any) -> Request:
        """A merge request in an answer (``ValueError`` when there is none)."""
        if not isinstance(data, dict):
            raise ValueError("not a merge request")
        return Request(_number(data.get("iid")), str(data["web_url"]))

    def read_open(self, data: Any) -> Request | None:
        if not isinstance(data, list):
            raise ValueError("not a list of merge requests")
        return self.read(data[0]) if data else None

    def auto_merged(self, status: int, data: Any) -> str:
        if status != 200:
            return f"auto-merge not enabled: {answer_words(status, data)}"
        if isinstance(data, dict) and data.get("state") == "merged":
            return "merged at once: no pipeline to wait for"
        return "auto-merge requested"


ForgeApi = GitHub | GitLab


def api_for(where: Target) -> ForgeApi:
    return GitHub(where) if where.kind is ForgeKind.GITHUB else GitLab(where)


def refused(api: ForgeApi, status: int, data: Any, doing: str) -> str:
    """Why the forge refused to ``doing`` ("open the pull request for driftless/revert-…"), with
    what to check; never the token."""
    words = answer_words(status, data)
    if status == 401:
        why = f"{api.name} refused the token of forge.token_file ({words})"
    elif status == 403:
        why = f"{api.name} does not allow it to the token ({words}): it needs {api.scopes}"
    elif status == 404:
        repo = api.target.repository
        why = f"{api.name} has no repository {repo} that the token can see ({words})"
    else:
        why = f"{api.name} refused it ({words})"
    return f"cannot {doing}: {why}"
