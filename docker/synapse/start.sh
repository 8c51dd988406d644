#!/bin/sh
# Starts Synapse for docker/docker-compose.yml (used as the entrypoint of the synapse service).
#
# First start: Synapse generates homeserver.yaml (with its secrets and signing key) for
# $SERVER_NAME in its data folder (/data, or $SYNAPSE_DATA_DIR). Every start: Synapse runs with
# that file and then this folder's bridge.yaml. Synapse merges the -c files in order and a later
# file replaces whole top-level keys, so bridge.yaml decides `listeners`, `database`,
# `log_config`, `app_service_config_files` and `enable_registration` whatever the generated file
# says; everything else can be edited in the generated homeserver.yaml.
set -eu

SERVER_NAME="${SERVER_NAME:-localhost}"
SYNAPSE_OWNER="${SYNAPSE_UID:-991}:${SYNAPSE_GID:-991}"
DATA="${SYNAPSE_DATA_DIR:-/data}"
CONFIG="$DATA/homeserver.yaml"
OVERRIDES="$(dirname "$0")/bridge.yaml"

# The image starts as root. Like the image's own start script, hand the data folder to the
# synapse account (uid 991) and start again as that account.
if [ "$(id -u)" = 0 ]; then
    chown "$SYNAPSE_OWNER" "$DATA"
    exec gosu "$SYNAPSE_OWNER" sh "$0" "$@"
fi

if [ ! -e "$CONFIG" ]; then
    echo "start.sh: generating $CONFIG for server name $SERVER_NAME" >&2
    python -m synapse.app.homeserver \
        --server-name "$SERVER_NAME" \
        --config-path "$CONFIG" \
        --config-directory "$DATA" \
        --data-directory "$DATA" \
        --generate-config \
        --report-stats=no
fi

# The image ships jemalloc, which keeps Synapse's memory use down.
jemalloc="/usr/lib/$(uname -m)-linux-gnu/libjemalloc.so.2"
if [ -f "$jemalloc" ]; then
    export LD_PRELOAD="$jemalloc"
fi

exec python -m synapse.app.homeserver \
    -c "$CONFIG" \
    -c "$OVERRIDES" \
    --keys-directory "$DATA" \
    "$@"
