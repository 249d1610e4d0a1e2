"""Entrypoint of the reconciler image.

Run as the image's unprivileged ``reconciler`` user, it just execs the command. Run as root (what
the optional Swarm service does, because a bind-mounted docker socket belongs to the host's docker
group, whose id the image cannot know), it adds that socket's group to the ``reconciler`` user's
groups, drops root for good, and execs the command: the agent never runs as root.
"""

import os
import pwd
import sys

USER = "reconciler"


def main() -> None:
    argv = sys.argv[1:] or ["reconciler", "run"]
    if os.getuid() == 0:
        user = pwd.getpwnam(USER)
        groups = {user.pw_gid}
        sock = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock").removeprefix("unix://")
        if os.path.exists(sock):
            groups.add(os.stat(sock).st_gid)
        state = os.environ.get("RECONCILER_STATE_DIR", "/var/lib/reconciler")
        if os.path.isdir(state):
            os.chown(state, user.pw_uid, user.pw_gid)
        os.setgroups(sorted(groups))
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
        os.environ["HOME"] = user.pw_dir
        os.environ["USER"] = USER
    os.execvp(argv[0], argv)  # noqa: S606 (exec the image's command, as any entrypoint does)


if __name__ == "__main__":
    main()
