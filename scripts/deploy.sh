#!/usr/bin/env bash
# Ship the already built certsas package (dist/certsas.zip, from `make package`) to a
# Function App provisioned from infra/. The one deployment method, used by `make deploy`
# and by azd's postprovision hook alike:
#
#   scripts/deploy.sh RESOURCE_GROUP FUNCTION_APP_NAME
#
# The app runs from a package at a blob URL (WEBSITE_RUN_FROM_PACKAGE, fetched with the
# app's user-assigned identity; see docs/deploy.md). The Bicep owns that URL; this script
# reads it back from the app, uploads the zip there with your Entra identity
# (`--auth-mode login`; the storage account takes no keys), restarts the app so it mounts
# the new package, and syncs triggers, as Microsoft documents for a package updated in
# place at the same URL.
#
# Needs: az login as an identity with Storage Blob Data Contributor on the deployment
# container (operatorPrincipalId gets it) and rights to restart the app (Website
# Contributor or Contributor). PACKAGE overrides the zip path.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 RESOURCE_GROUP FUNCTION_APP_NAME" >&2
  exit 2
fi
resource_group=$1
app_name=$2

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
package=${PACKAGE:-$repo_root/dist/certsas.zip}

if [[ ! -f "$package" ]]; then
  echo "error: $package does not exist; build it first with: make package" >&2
  exit 1
fi

package_url=$(az functionapp config appsettings list \
  --resource-group "$resource_group" --name "$app_name" \
  --query "[?name=='WEBSITE_RUN_FROM_PACKAGE'].value | [0]" --output tsv)

# Only a plain blob URL, as infra/ writes it: https://ACCOUNT.blob.SUFFIX/CONTAINER/BLOB.
# Anything else (unset, "1", a SAS URL) means the app was not provisioned from infra/.
url_pattern='^https://([a-z0-9]{3,24})\.blob\.([a-z0-9.-]+)/([a-z0-9-]{3,63})/([A-Za-z0-9._/-]+\.zip)$'
if [[ ! "$package_url" =~ $url_pattern ]]; then
  echo "error: $app_name does not run from a blob URL (WEBSITE_RUN_FROM_PACKAGE='$package_url');" >&2
  echo "       provision it from infra/ first (docs/deploy.md, section 2)" >&2
  exit 1
fi
account=${BASH_REMATCH[1]}
container=${BASH_REMATCH[3]}
blob=${BASH_REMATCH[4]}

echo "==> uploading $package to $package_url"
az storage blob upload \
  --auth-mode login \
  --account-name "$account" \
  --container-name "$container" \
  --name "$blob" \
  --file "$package" \
  --content-type application/zip \
  --overwrite true \
  --only-show-errors \
  --output none

echo "==> restarting $app_name so it mounts the new package"
az functionapp restart --resource-group "$resource_group" --name "$app_name" --output none

echo "==> syncing triggers"
app_id=$(az functionapp show --resource-group "$resource_group" --name "$app_name" --query id --output tsv)
az rest --method post --url "${app_id}/syncfunctiontriggers?api-version=2023-12-01" --output none

host=$(az functionapp show --resource-group "$resource_group" --name "$app_name" \
  --query defaultHostName --output tsv)
echo "deployed $package to $app_name; health: https://$host/api/health (needs your client certificate)"
