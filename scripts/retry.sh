#!/usr/bin/env bash
# Run a command; on failure (e.g. a network error) wait a little and try once more.
"$@" && exit 0
echo "retry.sh: '$*' failed; retrying once" >&2
sleep 5
exec "$@"
