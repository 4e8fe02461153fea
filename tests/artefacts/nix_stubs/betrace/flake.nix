# Stand-in for the BeTrace source flake (github:betrace-hq/betrace), which cannot be fetched in
# offline tests: packages with the shape of the real ones. See ../README.md.
{
  description = "BeTrace source flake stand-in for offline tests";

  # The real flake's input; tests override it with the nixpkgs stand-in.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    {
      packages = nixpkgs.lib.genAttrs nixpkgs.lib.platforms.all (
        system:
        let
          pkgs = nixpkgs.legacyPackages.${system};
        in
        rec {
          backend = pkgs.runCommand "betrace-backend-2.0.0" { } ''
            mkdir -p $out/bin
            printf '#!/bin/sh\necho betrace-backend stand-in\n' > $out/bin/betrace-backend
            chmod +x $out/bin/betrace-backend
          '';
          # What `npm run build` leaves in grafana-betrace-app/dist.
          grafana-plugin = pkgs.runCommand "betrace-grafana-plugin-0.1.0" { } ''
            mkdir -p $out/img
            printf '{"id": "betrace-app", "type": "app", "info": {"version": "0.1.0"}}\n' > $out/plugin.json
            printf '/* module stand-in */\n' > $out/module.js
            printf '<svg xmlns="http://www.w3.org/2000/svg"/>\n' > $out/img/logo.svg
          '';
          default = backend;
        }
      );
    };
}
