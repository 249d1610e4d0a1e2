"""Reverts through protected branches, the pure parts: git's words for a push the remote refuses
by policy (``faults.push_refusal``, with the texts GitHub and GitLab really print), which forge to
ask (``forges.target``), the requests sent to GitHub's and GitLab's APIs (shapes from their API
documentation) and what their answers mean, and the configuration that asks for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.config import load_config
from reconciler.errors import ConfigError
from reconciler.faults import push_refusal
from reconciler.forges import (
    ForgeKind,
    GitHub,
    GitLab,
    Proposal,
    Request,
    Target,
    already_open,
    answer_words,
    refused,
    revert_branch,
    target,
    transient,
)

GITHUB_PROTECTED = """remote: error: GH006: Protected branch update failed for refs/heads/main.
remote: error: Changes must be made through a pull request.
To github.com:acme/shop.git
 ! [remote rejected] HEAD -> main (protected branch hook declined)
error: failed to push some refs to 'github.com:acme/shop.git'"""
GITHUB_CHECKS = """remote: error: GH006: Protected branch update failed for refs/heads/main.
remote: error: Required status check "test" is expected.
To github.com:acme/shop.git
 ! [remote rejected] HEAD -> main (protected branch hook declined)
error: failed to push some refs to 'github.com:acme/shop.git'"""
GITHUB_RULESET = """remote: error: GH013: Repository rule violations found for refs/heads/main.
remote: Review all repository rules at https://github.com/acme/shop/rules?ref=refs%2Fheads%2Fmain
remote:
remote: - Changes must be made through a pull request.
remote:
To github.com:acme/shop.git
 ! [remote rejected] HEAD -> main (push declined due to repository rule violations)
error: failed to push some refs to 'github.com:acme/shop.git'"""
GITLAB_PROTECTED = (
    "remote: GitLab: You are not allowed to push code to protected branches on this project.\n"
    """To gitlab.com:acme/shop.git
 ! [remote rejected] HEAD -> main (pre-receive hook declined)
error: failed to push some refs to 'gitlab.com:acme/shop.git'"""
)
MOVED = """To github.com:acme/shop.git
 ! [rejected]        HEAD -> main (fetch first)
error: failed to push some refs to 'github.com:acme/shop.git'"""
NON_FAST_FORWARD = """To /srv/git/shop.git
 ! [rejected]        HEAD -> main (non-fast-forward)
error: failed to push some refs to '/srv/git/shop.git'"""
READ_ONLY_KEY = """ERROR: The key you are authenticating with has been marked as read only.
fatal: Could not read from remote repository."""
UNREACHABLE = "fatal: unable to access 'https://github.com/acme/shop.git/': Could not resolve host"


@pytest.mark.parametrize(
    ("text", "evidence"),
    [
        (GITHUB_PROTECTED, "GH006: Protected branch update failed for refs/heads/main."),
        (GITHUB_CHECKS, "GH006"),
        (GITHUB_RULESET, "GH013: Repository rule violations found for refs/heads/main."),
        (GITLAB_PROTECTED, "You are not allowed to push code to protected branches"),
        (" ! [remote rejected] main -> main (pre-receive hook declined)", "pre-receive hook"),
    ],
    ids=["github-protection", "github-required-checks", "github-ruleset", "gitlab", "a-hook"],
)
def test_a_push_refused_as_protected_is_recognised_with_its_telling_line(
    text: str, evidence: str
) -> None:
    line = push_refusal(text)
    assert line is not None
    assert evidence in line


@pytest.mark.parametrize("text", [MOVED, NON_FAST_FORWARD, READ_ONLY_KEY, UNREACHABLE, ""])
def test_other_push_failures_are_not_taken_for_protection(text: str) -> None:
    assert push_refusal(text) is None


# ------------------------------------------------------------------ which forge


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "git@github.com:acme/shop.git",
            Target(ForgeKind.GITHUB, "https://api.github.com", "acme/shop"),
        ),
        (
            "https://github.com/acme/shop",
            Target(ForgeKind.GITHUB, "https://api.github.com", "acme/shop"),
        ),
        (
            "ssh://git@gitlab.com/acme/platform/shop.git",
            Target(ForgeKind.GITLAB, "https://gitlab.com/api/v4", "acme/platform/shop"),
        ),
    ],
)
def test_the_forge_is_guessed_from_the_clone_url(url: str, expected: Target) -> None:
    assert target("", "", "", url) == expected


def test_a_self_hosted_forge_needs_its_kind_and_gets_its_api_from_the_host() -> None:
    url = "git@git.example.org:ops/shop.git"
    assert "forge.kind" in str(target("", "", "", url))
    github = target("github", "", "", url)
    assert github == Target(ForgeKind.GITHUB, "https://git.example.org/api/v3", "ops/shop")
    gitlab = target("gitlab", "https://gl.example.org/api/v4/", "42", url)
    assert gitlab == Target(ForgeKind.GITLAB, "https://gl.example.org/api/v4", "42")
    assert "forge.repository" in str(target("github", "", "", "file:///srv/shop.git"))
    assert "owner/name" in str(target("github", "", "a/b/c", url))
    assert "not 'gitea'" in str(target("gitea", "", "", url))


def test_the_revert_branch_is_named_after_the_failed_revision() -> None:
    sha = "c3b8abffcba28da13e08961c792fb637d5c9642a"
    assert revert_branch(sha) == "driftless/revert-c3b8abffcba2"


# ------------------------------------------------------------------ GitHub's requests

GH = GitHub(Target(ForgeKind.GITHUB, "https://api.github.com", "acme/shop"))
GL = GitLab(Target(ForgeKind.GITLAB, "https://gitlab.com/api/v4", "acme/platform/shop"))


def test_github_requests_have_the_documented_shapes() -> None:
    headers = GH.headers("ghp_secret")
    assert headers["Authorization"] == "Bearer ghp_secret"
    assert headers["Accept"] == "application/vnd.github+json"
    assert headers["X-GitHub-Api-Version"] == "2022-11-28"
    find = GH.find("driftless/revert-abc", "main")
    assert (find.method, find.url) == ("GET", "https://api.github.com/repos/acme/shop/pulls")
    assert dict(find.params) == {
        "head": "acme:driftless/revert-abc",
        "base": "main",
        "state": "open",
    }
    opened = GH.open("driftless/revert-abc", "main", "Revert x", "Reason: ...")
    assert (opened.method, opened.url) == ("POST", "https://api.github.com/repos/acme/shop/pulls")
    assert opened.json == {
        "title": "Revert x",
        "head": "driftless/revert-abc",
        "base": "main",
        "body": "Reason: ...",
    }
    merge = GH.auto_merge(Request(7, "https://github.com/acme/shop/pull/7", "PR_kw"), "squash")
    assert merge.url == "https://api.github.com/graphql"
    assert merge.json is not None
    assert "enablePullRequestAutoMerge" in str(merge.json["query"])
    assert merge.json["variables"] == {"pullRequestId": "PR_kw", "mergeMethod": "SQUASH"}


def test_github_enterprise_graphql_lives_beside_its_rest_api() -> None:
    ghes = GitHub(Target(ForgeKind.GITHUB, "https://git.example.org/api/v3", "ops/shop"))
    assert ghes.graphql_url == "https://git.example.org/api/graphql"


def test_github_answers_are_read() -> None:
    pull = {"number": 7, "html_url": "https://github.com/acme/shop/pull/7", "node_id": "PR_kw"}
    assert GH.read(pull) == Request(7, "https://github.com/acme/shop/pull/7", "PR_kw")
    assert GH.read_open([pull]) == GH.read(pull)
    assert GH.read_open([]) is None
    with pytest.raises(ValueError, match="not a list"):
        GH.read_open({"message": "Not Found"})
    assert GH.auto_merged(200, {"data": {"enablePullRequestAutoMerge": {}}}) == (
        "auto-merge requested"
    )
    not_allowed = {"errors": [{"message": "Auto merge is not allowed for this repository"}]}
    assert GH.auto_merged(200, not_allowed) == (
        "auto-merge not enabled: HTTP 200: Auto merge is not allowed for this repository"
    )


def test_gitlab_requests_have_the_documented_shapes() -> None:
    assert GL.headers("glpat-secret")["PRIVATE-TOKEN"] == "glpat-secret"
    find = GL.find("driftless/revert-abc", "main")
    assert find.url == "https://gitlab.com/api/v4/projects/acme%2Fplatform%2Fshop/merge_requests"
    assert dict(find.params) == {
        "state": "opened",
        "source_branch": "driftless/revert-abc",
        "target_branch": "main",
    }
    opened = GL.open("driftless/revert-abc", "main", "Revert x", "Reason: ...")
    assert opened.method == "POST"
    assert opened.json == {
        "source_branch": "driftless/revert-abc",
        "target_branch": "main",
        "title": "Revert x",
        "description": "Reason: ...",
        "remove_source_branch": True,
    }
    merge = GL.auto_merge(
        Request(5, "https://gitlab.com/acme/platform/shop/-/merge_requests/5"), "merge"
    )
    assert (merge.method, merge.url.rsplit("/projects/", 1)[1]) == (
        "PUT",
        "acme%2Fplatform%2Fshop/merge_requests/5/merge",
    )
    assert merge.json == {"auto_merge": True, "merge_when_pipeline_succeeds": True}


def test_gitlab_answers_are_read() -> None:
    mr = {"id": 99, "iid": 5, "web_url": "https://gitlab.com/acme/platform/shop/-/merge_requests/5"}
    assert GL.read(mr) == Request(5, mr["web_url"])
    assert GL.auto_merged(200, {**mr, "state": "opened"}) == "auto-merge requested"
    assert GL.auto_merged(405, {"message": "405 Method Not Allowed"}) == (
        "auto-merge not enabled: HTTP 405: 405 Method Not Allowed"
    )


# ------------------------------------------------------------------ what the answers mean

GITHUB_EXISTS = {
    "message": "Validation Failed",
    "errors": [
        {
            "resource": "PullRequest",
            "code": "custom",
            "message": "A pull request already exists for acme:driftless/revert-abc.",
        }
    ],
    "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request",
}
GITLAB_EXISTS = {
    "message": ["Another open merge request already exists for this source branch: !5"]
}


def test_an_open_request_for_the_branch_is_recognised() -> None:
    assert already_open(422, GITHUB_EXISTS)
    assert already_open(409, GITLAB_EXISTS)
    invalid_head = {
        "message": "Validation Failed",
        "errors": [{"resource": "PullRequest", "field": "head", "code": "invalid"}],
    }
    assert not already_open(422, invalid_head)
    assert answer_words(422, invalid_head) == "HTTP 422: Validation Failed; head invalid"


@pytest.mark.parametrize(
    ("status", "data", "passes"),
    [
        (500, {"message": "Server Error"}, True),
        (502, "<html>Bad Gateway</html>", True),
        (429, {"message": "Too Many Requests"}, True),
        (403, {"message": "API rate limit exceeded for installation ID 1."}, True),
        (403, {"message": "Resource not accessible by personal access token"}, False),
        (401, {"message": "Bad credentials"}, False),
        (422, GITHUB_EXISTS, False),
    ],
)
def test_which_answers_pass_by_themselves(status: int, data: object, passes: bool) -> None:
    assert transient(status, data) is passes


def test_a_refusal_says_what_to_check() -> None:
    doing = "open the pull request for driftless/revert-abc"
    bad_token = refused(GH, 401, {"message": "Bad credentials"}, doing)
    assert bad_token == (
        "cannot open the pull request for driftless/revert-abc: GitHub refused the token of "
        "forge.token_file (HTTP 401: Bad credentials)"
    )
    scopes = refused(GL, 403, {"message": "403 Forbidden"}, "open the merge request")
    assert "api scope and the Developer role" in scopes
    missing = refused(GH, 404, {"message": "Not Found"}, doing)
    assert "no repository acme/shop that the token can see" in missing


def test_a_proposal_is_announced_with_its_address() -> None:
    request = Request(7, "https://github.com/acme/shop/pull/7", "PR_kw")
    assert Proposal(request, True).note == "revert proposed in https://github.com/acme/shop/pull/7"
    asked = Proposal(request, False, "auto-merge requested")
    assert asked.note.endswith("/pull/7 (auto-merge requested)")


# ------------------------------------------------------------------ configuration


def test_a_pull_request_route_needs_a_forge_and_its_token(tmp_path: Path) -> None:
    token = tmp_path / "forge_token"
    token.write_text("ghp_0123456789abcdef\n")
    base = {"RECONCILER_GIT__URL": "git@github.com:acme/shop.git"}
    assert load_config(None, base).git.revert_via == "push"
    config = load_config(
        None,
        {
            **base,
            "RECONCILER_GIT__REVERT_VIA": "auto",
            "RECONCILER_FORGE__TOKEN_FILE": str(token),
            "RECONCILER_FORGE__AUTO_MERGE": "yes",
        },
    )
    assert config.forge.auto_merge is True
    # a promotion pushed as a branch only needs no forge, not even on a plain git server
    plain = {"RECONCILER_GIT__URL": "https://git.example.org/acme/shop.git"}
    promote = {"RECONCILER_PROMOTE__PATH": "desired-state/production"}
    branch_only = {**plain, **promote, "RECONCILER_PROMOTE__PULL_REQUEST": "false"}
    assert load_config(None, branch_only).promote.pull_request is False
    for env, words in [
        ({**plain, **promote}, r"forge.kind must be github or gitlab .*\(promote.path is set\)"),
        ({"RECONCILER_GIT__REVERT_VIA": "sometimes"}, "git.revert_via must be push"),
        ({"RECONCILER_GIT__REVERT_VIA": "auto"}, "forge.token_file is required"),
        (
            {"RECONCILER_GIT__REVERT_VIA": "pull_request", "RECONCILER_FORGE__TOKEN_FILE": "/nope"},
            "forge.token_file: /nope does not exist",
        ),
        (
            {
                "RECONCILER_GIT__URL": "https://git.example.org/acme/shop.git",
                "RECONCILER_GIT__REVERT_VIA": "pull_request",
                "RECONCILER_FORGE__TOKEN_FILE": str(token),
            },
            "forge.kind must be github or gitlab",
        ),
        ({"RECONCILER_FORGE__MERGE_METHOD": "octopus"}, "forge.merge_method must be"),
        ({"RECONCILER_FORGE__TOKEN": "x"}, "unknown config key forge.token"),
    ]:
        with pytest.raises(ConfigError, match=words) as refused_config:
            load_config(None, {**base, **env})
        assert "ghp_0123456789abcdef" not in str(refused_config.value)
