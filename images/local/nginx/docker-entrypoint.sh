#!/bin/sh
# Same contract as the upstream nginx image's entrypoint: when the command is nginx, run every
# executable /docker-entrypoint.d/*.sh (and source *.envsh) in order, then exec the command.
set -eu
if [ "${1:-}" = nginx ] || [ "${1:-}" = nginx-debug ]; then
  for f in /docker-entrypoint.d/*; do
    [ -e "$f" ] || continue
    case "$f" in
    *.envsh)
      # shellcheck disable=SC1090
      [ -x "$f" ] && . "$f"
      ;;
    *.sh)
      if [ -x "$f" ]; then
        echo "$0: running $f"
        "$f"
      else
        echo "$0: ignoring $f, not executable"
      fi
      ;;
    esac
  done
fi
exec "$@"
