#!/usr/bin/env bash
# Build the certsas deployment package and push it to an existing Function App.
#
#   scripts/deploy.sh RESOURCE_GROUP FUNCTION_APP_NAME
#
# The package carries its dependencies (pip-installed for Linux x86_64 / CPython 3.11 into
# .python_packages/lib/site-packages), so the app must not run a remote build: the Bicep
# default remoteBuild=false keeps SCM_DO_BUILD_DURING_DEPLOYMENT off.
# Needs: az login with rights to deploy to the app (basic-auth publishing is disabled, so
# az uses your Entra ID token), python3 with pip.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 RESOURCE_GROUP FUNCTION_APP_NAME" >&2
  exit 2
fi
resource_group=$1
app_name=$2

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
package="$repo_root/dist/certsas.zip"
python=${PYTHON:-python3}

"$python" "$repo_root/scripts/build_package.py" --root "$repo_root" --out "$package"

az functionapp deploy \
  --resource-group "$resource_group" \
  --name "$app_name" \
  --src-path "$package" \
  --type zip

echo "deployed $package to $app_name; health: https://$(az functionapp show \
  --resource-group "$resource_group" --name "$app_name" \
  --query defaultHostName --output tsv)/api/health (needs your client certificate)"
