# A flake that uses BeTrace from FlakeHub. "=X.Y.Z" pins exactly that release; "X.Y.*" would
# follow its patch releases on `nix flake update`. It resolves only once the release's tag has run
# this repository's flakehub workflow, which pushes the pinned BeTrace commit under that version.
# That FlakeHub accepts BeTrace's flake pushed from this repository has not been tried: if it
# does not resolve, use the GitHub input (nix/examples/github).
{
  description = "Example: the BeTrace backend from FlakeHub";

  inputs = {
    nixpkgs.url = "https://flakehub.com/f/NixOS/nixpkgs/0.1.*.tar.gz";
    betrace = {
      url = "https://flakehub.com/f/betrace-hq/betrace/=2.0.0.tar.gz";
      # One nixpkgs for your system and BeTrace: no second copy to download and build.
      inputs.nixpkgs.follows = "nixpkgs";
      # Upstream's flake names a dev-tools input, path:./dev-tools, that its commit does not have:
      # Nix 2.26 and later cannot lock a flake that takes BeTrace as an input unless it follows
      # another (known issue flake-input-dev-tools-missing). BeTrace's outputs never use it.
      inputs.dev-tools.follows = "nixpkgs";
    };
  };

  outputs =
    {
      self,
      nixpkgs,
      betrace,
    }:
    let
      forAllSystems = nixpkgs.lib.genAttrs [
        "x86_64-linux"
        "aarch64-linux"
        "x86_64-darwin"
        "aarch64-darwin"
      ];
    in
    {
      packages = forAllSystems (system: {
        betrace-backend = betrace.packages.${system}.backend;
        default = self.packages.${system}.betrace-backend;
      });
    };
}
