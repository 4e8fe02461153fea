# Stand-in for github:numtide/flake-utils (which cannot be fetched offline): see ../README.md.
# Only what upstream's flake and a consumer that follows its flake-utils call: the four default
# systems and eachSystem / eachDefaultSystem, which turn `system -> { NAME = value; }` into
# `{ NAME.<system> = value; }` for every system.
{
  description = "flake-utils stand-in for offline tests";

  outputs =
    { self }:
    let
      defaultSystems = [
        "aarch64-linux"
        "aarch64-darwin"
        "x86_64-darwin"
        "x86_64-linux"
      ];
      perSystem =
        system: out: acc:
        builtins.foldl' (
          a: name: a // { ${name} = (a.${name} or { }) // { ${system} = out.${name}; }; }
        ) acc (builtins.attrNames out);
      eachSystem =
        systems: f: builtins.foldl' (acc: system: perSystem system (f system) acc) { } systems;
    in
    {
      lib = {
        inherit defaultSystems eachSystem;
        eachDefaultSystem = eachSystem defaultSystems;
      };
    };
}
