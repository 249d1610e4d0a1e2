from collections.abc import Iterator

import pytest
from reconciler_support.gitrepo import close_opened


@pytest.fixture(autouse=True)
def _close_git_repos() -> Iterator[None]:
    yield
    close_opened()
