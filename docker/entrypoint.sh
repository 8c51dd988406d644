#!/bin/sh
# Entrypoint of the lms-matrix-bridge image.
#
# Before `init`, `run`, `doctor` and `migrate` it makes sure the configuration and the Synapse
# registration file exist and agree:
#   1. no configuration file yet: write the commented example (`lms-bridge example-config`);
#      every key can then be set from the environment as LMS_BRIDGE_<SECTION>_<KEY>;
#   2. always: `lms-bridge generate-registration`, which creates the tokens the configuration
#      lacks (saving them in it; tokens given by environment variables are left alone) and
#      rewrites the registration from the current configuration and environment.
# Both steps are safe to repeat: existing tokens are kept.
#
# Commands:
#   init                  prepare the files, then stop (a one-shot service in docker compose)
#   run (the default)     prepare, then run the bridge
#   doctor, migrate       prepare, then run that lms-bridge command with the configuration
#   anything else         run as given, without preparing anything (e.g. `sh` to look around)
#
# Environment:
#   LMS_BRIDGE_CONFIG        configuration file (default /data/config.yaml)
#   LMS_BRIDGE_REGISTRATION  registration file for Synapse (default /data/registration.yaml)
set -eu

CONFIG="${LMS_BRIDGE_CONFIG:-/data/config.yaml}"
REGISTRATION="${LMS_BRIDGE_REGISTRATION:-/data/registration.yaml}"

# Files created from here on are private to the bridge's account: the configuration holds the
# tokens. (The registration is opened up below, on purpose.)
umask 077

say() {
    echo "entrypoint: $*" >&2
}

prepare() {
    config_dir=$(dirname "$CONFIG")
    if [ ! -e "$CONFIG" ]; then
        if ! (umask 022 && mkdir -p "$config_dir") 2>/dev/null || [ ! -w "$config_dir" ]; then
            say "cannot write $CONFIG: $config_dir must be writable by uid $(id -u)" \
                "(for a bind mount: chown $(id -u) on the host folder)"
            exit 1
        fi
        say "no configuration at $CONFIG: writing the example one (override keys with" \
            "LMS_BRIDGE_<SECTION>_<KEY> environment variables, or edit the file)"
        # Written beside the target and renamed, so a failure never leaves half a file behind.
        lms-bridge example-config >"$CONFIG.new"
        mv "$CONFIG.new" "$CONFIG"
    fi

    # A folder made for the registration must let Synapse through, hence not umask 077.
    (umask 022 && mkdir -p "$(dirname "$REGISTRATION")")
    lms-bridge generate-registration -c "$CONFIG" -o "$REGISTRATION"
    # The registration holds the tokens too, and lms-bridge creates it readable by its owner
    # only. But Synapse must read it, and in the compose setup Synapse runs as another user
    # (uid 991) that mounts the same volume read-only, so it is made world-readable. Keep the
    # volume out of reach of anything else, or set LMS_BRIDGE_REGISTRATION to a path only
    # the homeserver can see.
    chmod 0644 "$REGISTRATION"
}

if [ "$#" -eq 0 ]; then
    set -- run
fi

case "$1" in
init)
    prepare
    say "configuration in $CONFIG, registration in $REGISTRATION"
    ;;
run | doctor | migrate)
    command=$1
    shift
    prepare
    exec lms-bridge "$command" -c "$CONFIG" "$@"
    ;;
*)
    exec "$@"
    ;;
esac
