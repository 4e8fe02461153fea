# Stand-in for nixpkgs (which cannot be fetched offline): see ../README.md.
{
  description = "nixpkgs stand-in for offline tests";

  outputs =
    { self }:
    let
      lib = import ./lib.nix;
    in
    {
      inherit lib;
      legacyPackages = lib.genAttrs lib.platforms.all (system: import ./pkgs.nix { inherit lib system; });
    };
}
