# nixpkgs expression for the BeTrace Grafana app plugin (plugin id betrace-app).
#
# Where it goes: nixpkgs' grafanaPlugins set (pkgs/servers/monitoring/grafana/plugins) is built
# with `grafanaPlugin`, which downloads signed zips from the grafana.com catalog. This plugin is not
# in the catalog, so it is built from source and, like every new top-level package, lives in
# pkgs/by-name/gr/grafana-betrace-app/package.nix. The result is the plugin directory itself
# (plugin.json, module.js, img/): it fits services.grafana.declarativePlugins and can be copied to
# <plugins dir>/betrace-app. Grafana, in its default production mode, loads it only with
# allow_loading_unsigned_plugins = betrace-app (it is unsigned).
{
  lib,
  buildNpmPackage,
  fetchFromGitHub,
  nix-update-script,
}:

buildNpmPackage (finalAttrs: {
  pname = "grafana-betrace-app";
  # This is plugin 0.1.0 by its plugin.json, but upstream has no tags or releases: like the
  # backend, this is a snapshot of a commit, versioned the nixpkgs way.
  # The commit is the one the release data of BeTrace Distribution pins; a test keeps them equal.
  version = "0-unstable-2026-01-08";

  src = fetchFromGitHub {
    owner = "betrace-hq";
    repo = "betrace";
    rev = "c5f17ae4a572472e1afa62fa32a6f5fbecb1718d";
    # Filled in on submission; the same value as in ../../be/betrace-backend (same source).
    hash = lib.fakeHash;
  };

  sourceRoot = "${finalAttrs.src.name}/grafana-betrace-app";

  # The app cannot work in Grafana without these (see each file's header): the JSX runtime taken
  # from Grafana (React 19 in Grafana 13.1 and later), backend calls through Grafana's plugin proxy,
  # the backend's real API, a Signals tab that asks for violations once per interval, not in a
  # loop, and a Rules tab whose Test button knows the rule language. Not yet merged upstream. Their paths start at the repository root
  # (grafana-betrace-app/...), one level above sourceRoot: hence -p2.
  patches = [
    ./0001-webpack-externalise-react-jsx-runtime.patch
    ./0002-call-the-backend-through-grafana-plugin-proxy.patch
    ./0003-use-the-backend-paths-and-answers.patch
    ./0004-fetch-the-signals-page-violations-once-per-interval.patch
    ./0005-test-rule-expressions-by-the-rule-language-not-older-keywords.patch
  ];
  patchFlags = [ "-p2" ];

  # Filled in on submission: the first build computes it from grafana-betrace-app/package-lock.json.
  npmDepsHash = lib.fakeHash;

  # `npm run build` (buildNpmPackage's default build script) writes the plugin to dist/.
  installPhase = ''
    runHook preInstall
    cp -R dist $out
    runHook postInstall
  '';

  passthru = {
    pluginId = "betrace-app";
    # No tags upstream: follow the default branch; nix-update refreshes npmDepsHash as well,
    # which gitUpdater and unstableGitUpdater do not.
    updateScript = nix-update-script { extraArgs = [ "--version=branch" ]; };
  };

  meta = {
    description = "Grafana app plugin for BeTrace, behavioural assurance for OpenTelemetry traces";
    homepage = "https://github.com/betrace-hq/betrace";
    license = lib.licenses.mit;
    # Add the submitter's handle (maintainers/maintainer-list.nix) when opening the nixpkgs PR.
    maintainers = with lib.maintainers; [ ];
    # A frontend plugin: JavaScript and assets, the same on every platform.
    platforms = lib.platforms.all;
  };
})
