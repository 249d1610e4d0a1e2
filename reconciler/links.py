"""Links to commits of the desired-state repository, for the status page and chat messages.

``RepoLinks.from_url`` understands the clone URLs of GitHub, GitLab, Gitea/Forgejo, Bitbucket
(``https://host/owner/repo(.git)``, ``git@host:owner/repo.git``, ``ssh://git@host/owner/repo``)
and drops credentials. A ``commit_url`` template (``{sha}`` placeholder) overrides the guess, for
self-hosted forges whose web address differs from the clone address.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from reconciler.redact import mask_url_credentials

_SCP = re.compile(r"^(?:[\w.-]+@)?(?P<host>[\w.-]+):(?P<path>[^/][^:]*)$")
_KNOWN = {
    "github.com": "{base}/commit/{sha}",
    "gitlab.com": "{base}/-/commit/{sha}",
    "bitbucket.org": "{base}/commits/{sha}",
    "codeberg.org": "{base}/commit/{sha}",
}


@dataclass(frozen=True)
class RepoLinks:
    #: the clone URL with credentials masked (safe to show)
    display_url: str
    #: ``https://host/owner/repo`` when the host is a known forge (or a template was given)
    web_url: str | None = None
    commit_template: str | None = None

    @property
    def on_github(self) -> bool:
        return bool(self.web_url and self.web_url.startswith("https://github.com/"))

    def commit(self, sha: str | None) -> str | None:
        """The web address of a commit, or None when the forge is unknown."""
        if not sha or not self.commit_template:
            return None
        return self.commit_template.format(sha=sha, base=self.web_url or "")

    @classmethod
    def from_url(cls, url: str, commit_url: str = "") -> RepoLinks:
        display = mask_url_credentials(url)
        host, path = host_and_path(url)
        base = f"https://{host}/{path}" if host and path else None
        template = commit_url or None
        if template is None and host in _KNOWN and base:
            template = _KNOWN[host].replace("{base}", base)
        elif template and base:
            template = template.replace("{base}", base)
        return cls(display_url=display, web_url=base, commit_template=template)


def host_and_path(url: str) -> tuple[str | None, str | None]:
    """The forge's host and the repository's path (``owner/repo``, a GitLab group path) in a
    clone URL, credentials and ``.git`` left out; ``(None, None)`` for other URLs (file://)."""
    url = url.strip()
    if not url:
        return None, None
    scp = _SCP.match(url)
    if scp and "://" not in url:
        host, path = scp.group("host"), scp.group("path")
    else:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https", "ssh", "git"):
            return None, None
        host, path = parts.hostname, parts.path
    if not host or not path:
        return None, None
    path = path.strip("/").removesuffix(".git")
    if path.count("/") < 1:
        return host, None
    return host.lower(), path
