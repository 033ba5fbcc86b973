#!/usr/bin/env bash
# with-secret-service.sh CMD [ARG...]
#
# Runs CMD with a real, private, unlocked Secret Service (gnome-keyring) so keychain tests exercise
# the real thing without touching the developer's own keychain:
#
#   - a private D-Bus session bus (dbus-run-session), so DBUS_SESSION_BUS_ADDRESS points at a bus
#     that dies with CMD;
#   - a fresh temporary XDG_DATA_HOME (where the keyring files live) and XDG_RUNTIME_DIR (where
#     gnome-keyring puts its control socket), so an old keyring with another password can't leave
#     the collection locked, and a desktop's running gnome-keyring is never reached;
#   - gnome-keyring-daemon's `secrets` component, started with --unlock, which creates the `login`
#     collection with a known password and makes it the default collection;
#   - CLIENTELE_REQUIRE_KEYCHAIN=1, so keychain tests fail rather than skip if anything is missing.
#
# HOME is left alone (cargo and rustup live there). Because XDG_RUNTIME_DIR is private, a Wayland
# session is not reachable from CMD; GUI tests run under Xvfb (xvfb-run) anyway.
# Exits with CMD's exit status; the temporary directory is removed whatever happens.
#
# Needs the Debian packages: dbus (dbus-run-session, dbus-send), gnome-keyring.
# The keychain tests also use secret-tool from libsecret-tools to cross-check what was stored.
set -euo pipefail

if [[ $# -eq 0 ]]; then
    echo "usage: $0 CMD [ARG...]  (runs CMD with a private, unlocked Secret Service)" >&2
    exit 64
fi

for tool in dbus-run-session dbus-send gnome-keyring-daemon; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "$0: '$tool' not found; install the Debian packages: dbus gnome-keyring" >&2
        exit 127
    fi
done

state="$(mktemp -d "${TMPDIR:-/tmp}/clientele-secret-service.XXXXXX")"
cleanup() { rm -rf -- "$state"; }
trap cleanup EXIT
# Turn INT/TERM into a normal exit so the EXIT trap cleans up (dbus-run-session passes the signal on).
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -m 700 -- "$state/data" "$state/runtime"

# The inner script runs inside the private session. "$@" is CMD; $0 is a label for messages.
# shellcheck disable=SC2016 # expanded by the inner bash, not here
inner='
set -euo pipefail
# gnome-keyring-daemon prints GNOME_KEYRING_CONTROL=... on stdout; nothing needs it here.
printf %s "$KEYRING_PASSWORD" | gnome-keyring-daemon --unlock --components=secrets >/dev/null
unset KEYRING_PASSWORD

call() {
    dbus-send --session --print-reply=literal --reply-timeout=5000 "$@" 2>&1
}

# The daemon forks before it has claimed its bus name; wait for org.freedesktop.secrets (5 s max).
owned=""
for _ in $(seq 50); do
    owned="$(call --dest=org.freedesktop.DBus / org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets || true)"
    case "$owned" in *true*) break ;; esac
    sleep 0.1
done
case "$owned" in
    *true*) ;;
    *) echo "$0: gnome-keyring did not claim org.freedesktop.secrets on the private bus" >&2; exit 70 ;;
esac

# The default collection must exist and be unlocked, or keychain calls would try to prompt.
default="$(call --dest=org.freedesktop.secrets /org/freedesktop/secrets org.freedesktop.Secret.Service.ReadAlias string:default)"
default="$(printf %s "$default" | tr -d "[:space:]")"
if [[ -z "$default" || "$default" == "/" ]]; then
    echo "$0: the private Secret Service has no default collection (ReadAlias default: ${default:-nothing})" >&2
    exit 70
fi
locked="$(call --dest=org.freedesktop.secrets "$default" org.freedesktop.DBus.Properties.Get string:org.freedesktop.Secret.Collection string:Locked)"
case "$locked" in
    *false*) ;;
    *) echo "$0: the private Secret Service collection $default is locked: $locked" >&2; exit 70 ;;
esac

exec "$@"
'

set +e
env \
    XDG_DATA_HOME="$state/data" \
    XDG_RUNTIME_DIR="$state/runtime" \
    KEYRING_PASSWORD="clientele-test" \
    CLIENTELE_REQUIRE_KEYCHAIN=1 \
    dbus-run-session -- bash -c "$inner" with-secret-service.sh "$@"
status=$?
set -e
exit "$status"
