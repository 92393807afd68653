#!/usr/bin/env bash
# Deploy one overlay in the order a release needs (README "Deploy to Kubernetes"):
#   1. everything the migration needs (namespace, ConfigMap, account, policies) and the
#      migration Job itself, after deleting the previous release's Job (a Job cannot be changed);
#   2. wait for the Job: on failure, show its logs and stop, leaving the running pods as they are;
#   3. everything else (the Deployment rolls out pod by pod), and wait for the rollout.
# Usage: deploy/kubernetes/deploy.sh deploy/kubernetes/overlays/production
# KUBECTL names the kubectl to use (default: kubectl); its current context is the target cluster.
set -euo pipefail

overlay=${1:?usage: deploy.sh <overlay directory, e.g. deploy/kubernetes/overlays/production>}
kubectl=${KUBECTL:-kubectl}
job=parley-migrate
# How long the migration may take; the Job's own activeDeadlineSeconds is 900.
wait_seconds=${MIGRATION_WAIT_SECONDS:-960}

rendered=$(mktemp)
trap 'rm -f "$rendered"' EXIT
"$kubectl" kustomize "$overlay" >"$rendered"
# The Job's namespace, as the overlay set it (kustomize prints keys sorted: kind before metadata).
namespace=$(awk '/^---$/ {job = 0} /^kind: Job$/ {job = 1} job && /^  namespace: / {print $2; exit}' "$rendered")
if [[ -z "$namespace" ]]; then
    echo "deploy.sh: no namespaced Job $job in $overlay" >&2
    exit 2
fi

"$kubectl" -n "$namespace" delete job "$job" --ignore-not-found
# Objects without the api component label: the namespace, ConfigMap, account, policies and the Job.
"$kubectl" apply -f "$rendered" --selector 'app.kubernetes.io/component!=api'

echo "Waiting for job/$job in $namespace (up to ${wait_seconds}s)..."
deadline=$((SECONDS + wait_seconds))
while :; do
    state=$("$kubectl" -n "$namespace" get job "$job" \
        -o jsonpath='{.status.conditions[?(@.status=="True")].type}')
    case " $state " in
        *" Complete "*) break ;;
        *" Failed "*)
            echo "deploy.sh: the migration failed; the running release is untouched. Its logs:" >&2
            "$kubectl" -n "$namespace" logs "job/$job" --tail=100 >&2 || true
            exit 1
            ;;
    esac
    if ((SECONDS >= deadline)); then
        echo "deploy.sh: job/$job did not finish within ${wait_seconds}s" >&2
        exit 1
    fi
    sleep 5
done

"$kubectl" apply -f "$rendered"
"$kubectl" -n "$namespace" rollout status deployment/parley --timeout=10m
