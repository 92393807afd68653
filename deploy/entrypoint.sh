#!/bin/sh
# The image's entrypoint: `parley-entrypoint COMMAND...` (the image's command: parley serve).
#
# Before `parley serve` only, the prestart step: wait up to PRESTART_DATABASE_WAIT_SECONDS
# (60) for the database, then migrate it to the newest schema (`parley migrate --wait`). It is
# safe when several replicas start at once: an advisory lock lets one migrate while the others
# wait, then find nothing to do. PRESTART_MIGRATE=false skips it (e.g. when a Kubernetes Job
# migrates once per release). Any other command (`parley migrate`, a shell) runs as given.
#
# Several workers (WEB_CONCURRENCY > 1) keep their metrics in PROMETHEUS_MULTIPROC_DIR
# (default $TMPDIR/parley-metrics, /tmp/parley-metrics in the image), whose files are wiped here before every start (README,
# "Metrics and logs").
set -eu

workers="${WEB_CONCURRENCY:-1}"
case "$workers" in
    '' | *[!0-9]* | 0)
        echo "WEB_CONCURRENCY must be a whole number of worker processes (1 or more), not '$workers'" >&2
        exit 2
        ;;
esac

if [ "$workers" -gt 1 ] && [ -z "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
    PROMETHEUS_MULTIPROC_DIR="${TMPDIR:-/tmp}/parley-metrics"
    export PROMETHEUS_MULTIPROC_DIR
fi
if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
    mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    # Only the metric files: the directory may be a mounted volume.
    find "$PROMETHEUS_MULTIPROC_DIR" -maxdepth 1 -type f -name '*.db' -delete
fi

if [ "$#" -ge 2 ] && [ "$1" = parley ] && [ "$2" = serve ]; then
    case "${PRESTART_MIGRATE:-true}" in
        true) parley migrate --wait "${PRESTART_DATABASE_WAIT_SECONDS:-60}" ;;
        false) ;;
        *)
            echo "PRESTART_MIGRATE must be true or false, not '${PRESTART_MIGRATE}'" >&2
            exit 2
            ;;
    esac
fi

exec "$@"
