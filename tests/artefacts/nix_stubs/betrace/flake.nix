# Stand-in for the BeTrace source flake (github:betrace-hq/betrace), which cannot be fetched in
# offline tests. See ../README.md.
#
# Its outputs are the ones of the real flake.nix at the commit the release data pins
# (c5f17ae4a572472e1afa62fa32a6f5fbecb1718d, releases.yaml releases[0].upstream.commit): the same
# names under packages, apps and devShells, for flake-utils' four default systems. Only `backend`
# and `grafana-plugin` have the shape of the real packages; every other output is an empty
# placeholder. The apps matter to the doc gate: `nix run <flake>#backend` resolves apps before
# packages, and upstream's `apps.<system>.backend` is a development script
# (`cd backend && go run ./cmd/betrace-backend`) that works only inside a source checkout.
{
  description = "BeTrace source flake stand-in for offline tests";

  # The real flake's input; tests override it with the nixpkgs stand-in.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixpkgs-unstable";
  # Upstream's too, so that a consumer may follow it (`betrace/flake-utils`); overridden with
  # the flake-utils stand-in. Upstream's path:./bff, ./backend and ./grafana-betrace-app
  # inputs are not declared: a consumer that follows one of them is refused here.
  inputs.flake-utils.url = "github:numtide/flake-utils";
  # Upstream declares `dev-tools = { url = "path:./dev-tools"; }`, a folder its commit does not
  # have (tests/artefacts/test_nix_stubs.py reads upstream's flake.lock and source for it). Nix
  # 2.26 and later read that folder's flake.nix when a flake takes BeTrace as an input, and fail
  # (computeLocks, from Nix's source; not run here): a path that does not exist makes the Nix
  # of the tests fail the same way, unless the consumer makes the input follow another.
  inputs.dev-tools.url = "path:/nonexistent/betrace-dev-tools";

  outputs =
    { self, nixpkgs, ... }:
    let
      inherit (nixpkgs) lib;
      forAllSystems = lib.genAttrs lib.platforms.all;
      placeholder = pkgs: name: pkgs.runCommand "stand-in-${name}" { } "mkdir $out";
      # What each upstream app runs, in short: the stand-in script only says so.
      upstreamApps = {
        dev = "prints how to start the services with Flox";
        frontend = "cd bff && npm run dev (needs a source checkout)";
        backend = "cd backend && go run ./cmd/betrace-backend (needs a source checkout)";
        serve = "caddy for the frontend plus the backend binary";
        build = "nix build .#all (in a source checkout)";
        status = "prints the project's commands";
        test-grafana-e2e = "end-to-end tests";
        test-backend = "backend integration tests";
        test-monaco = "editor tests";
        test-backend-api = "API tests";
        check-coverage-gates = "coverage gate";
      };
    in
    {
      packages = forAllSystems (
        system:
        let
          pkgs = nixpkgs.legacyPackages.${system};
          # A stand-in package whose overrideAttrs works as on a real derivation for `patches`
          # and `patchFlags`: it applies nothing, but reads every patch it was given (a missing
          # file fails the build) and its script writes their names, in order ("$names"), and
          # the flags ("$patchFlags") where the tests look.
          patchable =
            pname: version: script:
            let
              build =
                attrs:
                pkgs.runCommand "${pname}-${version}" {
                  patches = attrs.patches or [ ];
                  patchFlags = attrs.patchFlags or [ ];
                } (''
                  names=""
                  for patch in $patches; do
                    head -n 1 "$patch" > /dev/null
                    names="$names ''${patch##*/}"
                  done
                '' + script "$names")
                // {
                  inherit pname version;
                  overrideAttrs = f: build (attrs // f attrs);
                };
            in
            build { };
          others = [
            "frontend"
            "container-backend"
            "container-frontend"
            "container-grafana"
            "container-loki"
            "container-tempo"
            "container-prometheus"
            "containers-all"
            "cosign-keygen"
            "docker-compose"
            "loki-wrapped"
            "tempo-wrapped"
            "prometheus-wrapped"
            "pyroscope-wrapped"
            "alloy-wrapped"
            "grafana-wrapped"
          ];
        in
        lib.genAttrs others (placeholder pkgs)
        // rec {
          # Upstream builds it with buildGoModule (backend/flake.nix, `src = ./.`); the stand-in
          # records its patches and flags in share/betrace-backend/patches.
          backend = patchable "betrace-backend" "2.0.0" (names: ''
            mkdir -p $out/bin $out/share/betrace-backend
            printf '#!/bin/sh\necho betrace-backend stand-in\n' > $out/bin/betrace-backend
            chmod +x $out/bin/betrace-backend
            printf 'patches:%s\nflags: %s\n' "${names}" "$patchFlags" > $out/share/betrace-backend/patches
          '');
          # What `npm run build` leaves in grafana-betrace-app/dist; upstream builds it with
          # stdenv.mkDerivation, pname betrace-grafana-plugin. The stand-in records its patches
          # and flags in module.js.
          grafana-plugin = patchable "betrace-grafana-plugin" "0.1.0" (names: ''
            mkdir -p $out/img
            printf '{"id": "betrace-app", "type": "app", "info": {"version": "0.1.0"}}\n' > $out/plugin.json
            printf '/* module stand-in; patches:%s; flags: %s */\n' "${names}" "$patchFlags" > $out/module.js
            printf '<svg xmlns="http://www.w3.org/2000/svg"/>\n' > $out/img/logo.svg
          '');
          # upstream: symlinkJoin of frontend and backend
          all = placeholder pkgs "betrace-complete";
          default = all;
        }
      );

      apps = forAllSystems (
        system:
        let
          pkgs = nixpkgs.legacyPackages.${system};
          app = name: what: {
            type = "app";
            program = "${
              pkgs.writeShellApplication {
                name = "${name}-stand-in";
                text = "echo 'upstream app ${name}: ${what}' >&2; exit 1";
              }
            }/bin/${name}-stand-in";
          };
        in
        lib.mapAttrs' (name: what: lib.nameValuePair name (app name what)) upstreamApps
        // {
          default = app "dev" upstreamApps.dev;
        }
      );

      devShells = forAllSystems (
        system:
        lib.genAttrs [
          "default"
          "frontend"
          "backend"
        ] (placeholder nixpkgs.legacyPackages.${system})
      );
    };
}
