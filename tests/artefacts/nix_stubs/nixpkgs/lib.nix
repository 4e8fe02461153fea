# The few nixpkgs `lib` attributes the flakes and package expressions use (stand-in, see ../README.md).
let
  linux = [
    "x86_64-linux"
    "aarch64-linux"
  ];
  darwin = [
    "x86_64-darwin"
    "aarch64-darwin"
  ];
in
rec {
  genAttrs = names: f: builtins.listToAttrs (map (name: { inherit name; value = f name; }) names);
  nameValuePair = name: value: { inherit name value; };
  mapAttrs' = f: set: builtins.listToAttrs (map (n: f n set.${n}) (builtins.attrNames set));
  concatMapStringsSep = sep: f: list: builtins.concatStringsSep sep (map f list);
  makeBinPath = paths: concatMapStringsSep ":" (p: "${p}/bin") paths;
  getExe = drv: "${drv}/bin/${drv.meta.mainProgram}";
  getExe' = drv: name: "${drv}/bin/${name}";
  fakeHash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

  licenses = {
    mit = {
      spdxId = "MIT";
      shortName = "mit";
      fullName = "MIT License";
      free = true;
    };
    asl20 = {
      spdxId = "Apache-2.0";
      shortName = "asl20";
      fullName = "Apache License 2.0";
      free = true;
    };
  };

  # The real set holds every nixpkgs maintainer; tests only need the attribute to exist.
  maintainers = { };

  platforms = {
    inherit linux darwin;
    unix = linux ++ darwin;
    all = linux ++ darwin;
  };

  # Functions become "<function>" and derivations "<derivation NAME>", so `recorded` is JSON.
  sanitize =
    value:
    if builtins.isFunction value then
      "<function>"
    else if builtins.isAttrs value then
      (if (value.type or null) == "derivation" then "<derivation ${value.name}>" else builtins.mapAttrs (_: sanitize) value)
    else if builtins.isList value then
      map sanitize value
    else if builtins.isPath value then
      toString value
    else
      value;

  makeOverridable =
    f: args:
    f args
    // {
      override = more: makeOverridable f (args // more);
    };
}
