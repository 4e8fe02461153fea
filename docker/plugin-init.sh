#!/bin/sh
# Entrypoint of the plugin-init image: copy the BeTrace app plugin into a shared volume, so that
# Grafana (another container) loads it from there. Target: argument 1, else BETRACE_PLUGIN_TARGET.
# It refuses to run when its payload is not a plugin, so an image built with an empty payload
# fails loudly instead of leaving Grafana without the app.
set -eu
source_dir="${BETRACE_PLUGIN_SOURCE:-/opt/betrace/betrace-app}"
target="${1:-${BETRACE_PLUGIN_TARGET:-/plugins/betrace-app}}"
for required in plugin.json module.js; do
  if [ ! -f "$source_dir/$required" ]; then
    echo "plugin-init: $source_dir has no $required: this image carries no plugin" >&2
    exit 1
  fi
done
mkdir -p "$target"
cp -R "$source_dir/." "$target/"
echo "plugin-init: copied betrace-app to $target"
