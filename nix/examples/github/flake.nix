# A flake that uses BeTrace straight from GitHub. Upstream has no tags yet, so the input pins the
# commit this release packages (releases.yaml releases[0].upstream.commit).
{
  description = "Example: the BeTrace backend from GitHub";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    betrace = {
      url = "github:betrace-hq/betrace/c5f17ae4a572472e1afa62fa32a6f5fbecb1718d";
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
