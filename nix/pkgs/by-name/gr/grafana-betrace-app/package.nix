# nixpkgs expression for the BeTrace Grafana app plugin (plugin id betrace-app).
#
# Where it goes: nixpkgs' grafanaPlugins set (pkgs/servers/monitoring/grafana/plugins) is built
# with `grafanaPlugin`, which downloads signed zips from the grafana.com catalog. This plugin is not
# in the catalog, so it is built from source and, like every new top-level package, lives in
# pkgs/by-name/gr/grafana-betrace-app/package.nix. The result is the plugin directory itself
# (plugin.json, module.js, img/): it fits services.grafana.declarativePlugins and can be copied to
# <plugins dir>/betrace-app. Grafana loads it only with
# allow_loading_unsigned_plugins = betrace-app (it is unsigned).
{
  lib,
  buildNpmPackage,
  fetchFromGitHub,
}:

let
  # The plugin has its own version (plugin.json), but it ships in the BeTrace repository, tagged
  # with the BeTrace release: this is the tag the source is taken from.
  betraceRelease = "2.0.0";
in
buildNpmPackage (finalAttrs: {
  pname = "grafana-betrace-app";
  version = "0.1.0";

  src = fetchFromGitHub {
    owner = "betrace-hq";
    repo = "betrace";
    tag = "v${betraceRelease}";
    # Placeholder until the tag exists upstream; see the note in ../../be/betrace-backend.
    hash = lib.fakeHash;
  };

  sourceRoot = "${finalAttrs.src.name}/grafana-betrace-app";

  # Computed from grafana-betrace-app/package-lock.json by the first build (or prefetch-npm-deps).
  npmDepsHash = lib.fakeHash;

  # The plugin's dependency tree has peer-dependency conflicts that npm >= 7 rejects by default.
  npmFlags = [ "--legacy-peer-deps" ];

  # `npm run build` (buildNpmPackage's default build script) writes the plugin to dist/.
  installPhase = ''
    runHook preInstall
    cp -R dist $out
    runHook postInstall
  '';

  passthru.pluginId = "betrace-app";

  meta = {
    description = "Grafana app plugin for BeTrace: write rules and review violations in Grafana";
    homepage = "https://github.com/betrace-hq/betrace";
    license = lib.licenses.mit;
    # Add the submitter's handle (maintainers/maintainer-list.nix) when opening the nixpkgs PR.
    maintainers = with lib.maintainers; [ ];
    # A frontend plugin: JavaScript and assets, the same on every platform.
    platforms = lib.platforms.all;
  };
})
