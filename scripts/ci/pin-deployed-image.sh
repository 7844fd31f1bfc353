#!/usr/bin/env bash
# Before a preview (pull request, drift): set muse:imageTag in the working copy's stack file to the image the
# stack runs now, so the preview shows only what the code changes and not "image: digest -> default".
# Deploys set the tag to the pushed digest instead (main.yml); this never writes state.
#   scripts/ci/pin-deployed-image.sh dev
set -euo pipefail

stack="${1:?usage: pin-deployed-image.sh <stack>}"
here="$(cd "$(dirname "$0")" && pwd)"
state="$(mktemp)"
trap 'rm -f "$state"' EXIT

pulumi stack export --stack "$stack" --file "$state"
tag="$(python3 "$here/deployed_image_tag.py" "$state")"
if [[ -z "$tag" ]]; then
  echo "::notice title=Image tag::stack $stack runs no Muse Deployment yet; previewing with the committed muse:imageTag"
  exit 0
fi
pulumi config set --stack "$stack" muse:imageTag "$tag"
echo "Previewing $stack with the deployed image tag $tag"
