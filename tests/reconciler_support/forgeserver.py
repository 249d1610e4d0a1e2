"""A stand-in for GitHub's and GitLab's APIs, on loopback: the real forges cannot be reached from
here, so the agent's forge adapter is tested against this small aiohttp server instead. It
implements exactly the endpoints the agent calls, with the request shapes, headers and answers
of the forges' API documentation:

* GitHub REST (``api_url`` = its root): ``GET /repos/{owner}/{repo}/pulls`` (``head`` =
  ``owner:branch``, ``base``, ``state``) and ``POST /repos/{owner}/{repo}/pulls`` (``title``,
  ``head``, ``base``, ``body``; 201 with ``number``, ``html_url``, ``node_id``; 422 "Validation
  Failed" when ``head`` is no branch of the repository or a pull request is open for it
  already), ``Authorization: Bearer <token>`` (else 401 "Bad credentials"), ``Accept:
  application/vnd.github+json`` and ``X-GitHub-Api-Version: 2022-11-28`` (else 400); GitHub
  GraphQL ``POST /graphql`` with the ``enablePullRequestAutoMerge`` mutation (``pullRequestId``
  = the pull request's ``node_id``, ``mergeMethod``), whose errors come with HTTP 200.
* GitLab REST v4 (``api_url`` = ``…/api/v4``): ``GET`` and ``POST
  /projects/:id/merge_requests`` (``:id`` the URL-encoded project path; ``source_branch``,
  ``target_branch``, ``title``, ``description``, ``remove_source_branch``; 201 with ``iid`` and
  ``web_url``; 409 when one is open for the source branch already) and ``PUT
  /projects/:id/merge_requests/:iid/merge`` (``auto_merge`` / ``merge_when_pipeline_succeeds``),
  ``PRIVATE-TOKEN: <token>`` (else 401).

It records every request (``seen``) and the pull/merge requests it holds (``pulls``), and answers
what a test queues instead for the next requests with a method (``fail(500, method="POST")``,
``fail((401, {...}))``), or does the work and then loses the answer (``lose_answer``: a gateway
that times out after the forge acted). The branches a request may be opened from are the git
remote's (``branches``, a callable). Bound to 127.0.0.1 only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import web

GITHUB_API_VERSION = "2022-11-28"
_GITHUB_PULLS = re.compile(r"^/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/pulls$")
_GITLAB_MRS = re.compile(
    r"^/api/v4/projects/(?P<project>[^/]+)/merge_requests(?:/(?P<iid>\d+)/merge)?$"
)
_AUTO_MERGE = "enablePullRequestAutoMerge"


@dataclass
class Seen:
    """A request the stand-in received (``path`` as sent: still URL-encoded)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class Pull:
    """A pull (merge) request the stand-in holds."""

    number: int
    head: str
    base: str
    title: str
    body: str
    url: str
    node_id: str = ""
    state: str = "open"
    remove_source_branch: bool | None = None
    auto_merge: str | None = None  # GitHub's mergeMethod, or "auto_merge" on GitLab


def _json(status: int, data: Any) -> web.Response:
    return web.json_response(data, status=status)


class StandInForge:
    def __init__(
        self,
        kind: str,
        token: str,
        branches: Callable[[], set[str]],
        repository: str = "acme/shop",
    ) -> None:
        assert kind in ("github", "gitlab")
        self.kind = kind
        self.token = token
        self.repository = repository
        self._branches = branches
        self.seen: list[Seen] = []
        self.pulls: list[Pull] = []
        self._planned: list[tuple[str | None, int, Any]] = []
        self._lost: list[tuple[str, int]] = []
        self._runner: web.AppRunner | None = None
        self.root = ""

    @property
    def api_url(self) -> str:
        return self.root if self.kind == "github" else f"{self.root}/api/v4"

    def fail(self, *answers: int | tuple[int, Any], method: str | None = None) -> None:
        """The next requests (with ``method``, or any) get these answers instead: a status, or a
        status and a JSON document."""
        for answer in answers:
            status, data = answer if isinstance(answer, tuple) else (answer, {"message": "error"})
            self._planned.append((method, status, data))

    def lose_answer(self, method: str, status: int = 504) -> None:
        """The next request with ``method`` is done, but its answer is lost: ``status``."""
        self._lost.append((method, status))

    def to(self, method: str, fragment: str = "") -> list[Seen]:
        return [s for s in self.seen if s.method == method and fragment in s.path]

    async def start(self) -> StandInForge:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.root = f"http://127.0.0.1:{port}"
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # ---------------------------------------------------------------- dispatch

    async def _handle(self, request: web.Request) -> web.Response:
        text = await request.text()
        body: Any = json.loads(text) if text else None
        path = request.raw_path.split("?", 1)[0]
        self.seen.append(
            Seen(request.method, path, dict(request.query), dict(request.headers), body)
        )
        for index, (method, status, data) in enumerate(self._planned):
            if method in (None, request.method):
                del self._planned[index]
                return _json(status, data)
        if self.kind == "github":
            answer = self._github(request, path, body)
        else:
            answer = self._gitlab(request, path, body)
        for index, (method, status) in enumerate(self._lost):
            if method == request.method:
                del self._lost[index]
                return _json(status, {"message": "Gateway Timeout"})
        return answer

    # ---------------------------------------------------------------- GitHub

    def _github(self, request: web.Request, path: str, body: Any) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _json(401, {"message": "Bad credentials", "status": "401"})
        if request.headers.get("Accept") != "application/vnd.github+json":
            return _json(415, {"message": "Unsupported 'Accept' header"})
        if request.headers.get("X-GitHub-Api-Version") != GITHUB_API_VERSION:
            return _json(400, {"message": "Invalid API version"})
        if path == "/graphql" and request.method == "POST":
            return self._graphql(body)
        found = _GITHUB_PULLS.match(path)
        if not found or f"{found['owner']}/{found['repo']}" != self.repository:
            return _json(404, {"message": "Not Found"})
        if request.method == "GET":
            head, state = request.query.get("head", ""), request.query.get("state", "open")
            base = request.query.get("base")
            listed = [
                p
                for p in self.pulls
                if f"{found['owner']}:{p.head}" == head
                and p.state == state
                and base in (None, p.base)
            ]
            return _json(200, [self._github_pull(p) for p in listed])
        if request.method == "POST":
            return self._github_open(found["owner"], body)
        return _json(404, {"message": "Not Found"})

    def _github_open(self, owner: str, body: Any) -> web.Response:
        if not isinstance(body, dict) or not all(
            isinstance(body.get(k), str) for k in ("title", "head", "base")
        ):
            return _json(422, {"message": "Invalid request.", "errors": ["title, head, base"]})
        if not isinstance(body.get("body", ""), str):
            return _json(422, {"message": "Invalid request.", "errors": ["body is not a string"]})
        head = body["head"]
        if head not in self._branches():
            errors = [{"resource": "PullRequest", "field": "head", "code": "invalid"}]
            return _json(422, {"message": "Validation Failed", "errors": errors})
        if any(p.head == head and p.state == "open" for p in self.pulls):
            message = f"A pull request already exists for {owner}:{head}."
            errors = [{"resource": "PullRequest", "code": "custom", "message": message}]
            return _json(422, {"message": "Validation Failed", "errors": errors})
        number = len(self.pulls) + 1
        pull = Pull(
            number,
            head,
            body["base"],
            body["title"],
            body.get("body", ""),
            f"https://github.com/{self.repository}/pull/{number}",
            node_id=f"PR_kwDOstandin{number:04d}",
        )
        self.pulls.append(pull)
        return _json(201, self._github_pull(pull))

    def _github_pull(self, pull: Pull) -> dict[str, Any]:
        return {
            "number": pull.number,
            "node_id": pull.node_id,
            "html_url": pull.url,
            "state": pull.state,
            "title": pull.title,
            "body": pull.body,
            "head": {"ref": pull.head},
            "base": {"ref": pull.base},
        }

    def _graphql(self, body: Any) -> web.Response:
        query = body.get("query", "") if isinstance(body, dict) else ""
        variables = body.get("variables") or {} if isinstance(body, dict) else {}
        if _AUTO_MERGE not in query:
            return _json(200, {"errors": [{"message": "the stand-in knows one mutation only"}]})
        node, method = variables.get("pullRequestId"), variables.get("mergeMethod")
        pull = next((p for p in self.pulls if p.node_id == node), None)
        if pull is None:
            message = f"Could not resolve to a node with the global id of '{node}'"
            return _json(
                200,
                {
                    "data": {_AUTO_MERGE: None},
                    "errors": [{"type": "NOT_FOUND", "message": message}],
                },
            )
        if method not in ("MERGE", "SQUASH", "REBASE"):
            message = (
                "Variable $mergeMethod of type PullRequestMergeMethod was provided invalid "
                f"value {method}"
            )
            return _json(200, {"errors": [{"message": message}]})
        pull.auto_merge = method
        return _json(200, {"data": {_AUTO_MERGE: {"pullRequest": {"number": pull.number}}}})

    # ---------------------------------------------------------------- GitLab

    def _gitlab(self, request: web.Request, path: str, body: Any) -> web.Response:
        if request.headers.get("PRIVATE-TOKEN") != self.token:
            return _json(401, {"message": "401 Unauthorized"})
        found = _GITLAB_MRS.match(path)
        if not found or found["project"] != quote(self.repository, safe=""):
            return _json(404, {"message": "404 Project Not Found"})
        if found["iid"] is not None:
            if request.method != "PUT":
                return _json(405, {"message": "405 Method Not Allowed"})
            return self._gitlab_merge(int(found["iid"]), body)
        if request.method == "GET":
            query = request.query
            listed = [
                p
                for p in self.pulls
                if p.state == query.get("state", "opened")
                and query.get("source_branch") in (None, p.head)
                and query.get("target_branch") in (None, p.base)
            ]
            return _json(200, [self._gitlab_mr(p) for p in listed])
        if request.method == "POST":
            return self._gitlab_open(body)
        return _json(405, {"message": "405 Method Not Allowed"})

    def _gitlab_open(self, body: Any) -> web.Response:
        if not isinstance(body, dict):
            return _json(400, {"error": "source_branch is missing, target_branch is missing"})
        missing = [k for k in ("source_branch", "target_branch", "title") if not body.get(k)]
        if missing:
            return _json(400, {"error": ", ".join(f"{k} is missing" for k in missing)})
        source = body["source_branch"]
        if source not in self._branches():
            return _json(422, {"message": [f'Source branch "{source}" does not exist']})
        open_one = next((p for p in self.pulls if p.head == source and p.state == "opened"), None)
        if open_one is not None:
            message = (
                "Another open merge request already exists for this source branch: "
                f"!{open_one.number}"
            )
            return _json(409, {"message": [message]})
        iid = len(self.pulls) + 1
        pull = Pull(
            iid,
            source,
            body["target_branch"],
            body["title"],
            body.get("description", ""),
            f"https://gitlab.com/{self.repository}/-/merge_requests/{iid}",
            state="opened",
            remove_source_branch=body.get("remove_source_branch"),
        )
        self.pulls.append(pull)
        return _json(201, self._gitlab_mr(pull))

    def _gitlab_merge(self, iid: int, body: Any) -> web.Response:
        pull = next((p for p in self.pulls if p.number == iid), None)
        if pull is None:
            return _json(404, {"message": "404 Not found"})
        fields = body if isinstance(body, dict) else {}
        if not (fields.get("auto_merge") or fields.get("merge_when_pipeline_succeeds")):
            return _json(405, {"message": "405 Method Not Allowed"})  # an immediate merge
        pull.auto_merge = "auto_merge"
        return _json(200, {**self._gitlab_mr(pull), "merge_when_pipeline_succeeds": True})

    def _gitlab_mr(self, pull: Pull) -> dict[str, Any]:
        return {
            "id": 1000 + pull.number,
            "iid": pull.number,
            "web_url": pull.url,
            "state": pull.state,
            "title": pull.title,
            "description": pull.body,
            "source_branch": pull.head,
            "target_branch": pull.base,
            "force_remove_source_branch": pull.remove_source_branch,
        }
