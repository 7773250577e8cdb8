#!/bin/sh
# Entrypoint of the gateway image: for each GATEWAY_<NAME>_FILE in the environment, GATEWAY_<NAME> is
# exported with that file's content (trailing newlines dropped), then the command runs. Compose's
# one-shot `init` writes the API keys and the Redis URL (with its password) into a volume this way;
# Docker or Kubernetes secrets mounted as files work the same. Giving both GATEWAY_<NAME> and
# GATEWAY_<NAME>_FILE is an error, as is a file that cannot be read.
set -eu
for name in $(env | sed -n 's/^\(GATEWAY_[A-Z0-9_]*\)_FILE=.*$/\1/p'); do
    file=$(printenv "${name}_FILE")
    if printenv "$name" >/dev/null; then
        echo "env-from-files: both $name and ${name}_FILE are set: give one" >&2
        exit 1
    fi
    value=$(cat -- "$file") || { echo "env-from-files: ${name}_FILE: cannot read $file" >&2; exit 1; }
    export "$name=$value"
    unset "${name}_FILE"
done
exec "$@"
