# Stand-in for github:numtide/flake-utils (which cannot be fetched offline): see ../README.md.
# What upstream's flake and a consumer that follows its flake-utils call, as flake-utils' lib.nix
# describes them (commit 15194da4): the four default systems; eachSystem / eachDefaultSystem,
# which turn `system -> { NAME = value; }` into `{ NAME.<system> = value; }` for every system
# (without its hydraJobs special case); eachSystemMap; mkApp; and flattenTree (derivations, and
# the sets marked recurseForDerivations, with "/"-joined names).
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
      eachSystemMap =
        systems: f:
        builtins.listToAttrs (map (system: { name = system; value = f system; }) systems);
      isDerivation = x: builtins.isAttrs x && (x.type or "") == "derivation";
      flattenUnder =
        prefix: tree:
        builtins.foldl' (
          acc: name:
          let
            value = tree.${name};
            key = if prefix == "" then name else "${prefix}/${name}";
          in
          if isDerivation value then
            acc // { ${key} = value; }
          else if builtins.isAttrs value && (value.recurseForDerivations or false) then
            acc // flattenUnder key value
          else
            acc
        ) { } (builtins.attrNames tree);
      mkApp =
        {
          drv,
          name ? drv.pname or drv.name,
          exePath ? drv.passthru.exePath or "/bin/${name}",
        }:
        {
          type = "app";
          program = "${drv}${exePath}";
        };
    in
    {
      lib = {
        inherit
          defaultSystems
          eachSystem
          eachSystemMap
          mkApp
          ;
        systems = defaultSystems;
        eachDefaultSystem = eachSystem defaultSystems;
        eachDefaultSystemMap = eachSystemMap defaultSystems;
        flattenTree = flattenUnder "";
      };
    };
}
