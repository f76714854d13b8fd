#!/usr/bin/env bash
# Regenerates rules.yaml and rules-cronjobs.yaml from the Helm chart (the deploy test checks they match it).
# Needs .tools/bin/helm (scripts/tools.sh) and the npm dependencies (for the yaml package).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
helm=.tools/bin/helm
[ -x "$helm" ] || { echo "render.sh: $helm is missing: run scripts/tools.sh" >&2; exit 2; }
groups() {
  node --input-type=module -e "
    import { parse, stringify } from 'yaml';
    let s = ''; process.stdin.on('data', (d) => (s += d)).on('end', () =>
      process.stdout.write(stringify({ groups: parse(s).spec.groups }, { lineWidth: 0 })));"
}
render() { # OUT DESCRIPTION HELM-ARGS...
  local out=$1 what=$2; shift 2
  {
    printf '# Generated from deploy/helm/tykdr (%s) by deploy/prometheus/render.sh:\n' "$what"
    printf '# edit the chart, not this file. test/integration/deploy.test.ts checks that the two agree.\n'
    "$helm" template tykdr deploy/helm/tykdr --namespace tyk --kube-version 1.31.0 --set prometheusRule.enabled=true "$@" \
      --show-only templates/prometheusrule.yaml | groups
  } > "deploy/prometheus/$out.tmp"
  mv "deploy/prometheus/$out.tmp" "deploy/prometheus/$out"
}
render rules.yaml 'mode daemon, for daemons scraped as job="tykdr": a VM install' --set-string 'prometheusRule.selector=job="tykdr"'
render rules-cronjobs.yaml 'mode cronjobs, release tykdr in namespace tyk, the default schedules' --set mode=cronjobs
echo "render.sh: wrote deploy/prometheus/rules.yaml and rules-cronjobs.yaml"
