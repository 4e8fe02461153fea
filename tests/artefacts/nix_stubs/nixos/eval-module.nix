# Stand-in for NixOS's module system (nixpkgs' lib.evalModules cannot be fetched offline): enough
# of it to evaluate one service module the way NixOS would for the settings a test gives. Option
# declarations with mkOption, types that check values (a wrong value fails with the option's
# name), defaults, submodules in lists, mkIf, and assertions. Everything else of NixOS is absent, so this
# shows what the module writes into systemd and /etc, not that NixOS accepts the whole system.
{
  module,
  settings,
  system ? "x86_64-linux",
}:
let
  base = import ../nixpkgs/lib.nix;
  stubPkgs = import ../nixpkgs/pkgs.nix { lib = base; inherit system; };

  type = name: check: { inherit name check; };
  types = rec {
    str = type "string" builtins.isString;
    bool = type "boolean" builtins.isBool;
    path = type "path" (v: builtins.isPath v || (builtins.isString v && builtins.substring 0 1 v == "/"));
    package = type "package" (v: builtins.isAttrs v && (v.type or null) == "derivation");
    port = type "16 bit unsigned integer" (v: builtins.isInt v && v >= 0 && v <= 65535);
    ints.positive = type "positive integer" (v: builtins.isInt v && v > 0);
    strMatching = re: type "string matching ${re}" (v: builtins.isString v && builtins.match re v != null);
    nullOr = t: type "null or ${t.name}" (v: v == null || t.check v);
    enum = values: type "one of ${builtins.concatStringsSep ", " (map builtins.toJSON values)}" (v: builtins.elem v values);
    listOf = t: (type "list of ${t.name}" builtins.isList) // { elem = t; };
    submodule = m: (type "submodule" builtins.isAttrs) // { options = m.options; };
  };

  lib = base // {
    inherit types;
    mkOption = args: args // { _type = "option"; };
    mkEnableOption = what: {
      _type = "option";
      type = types.bool;
      default = false;
      description = "Whether to enable ${what}.";
    };
    mkIf = condition: content: { _type = "if"; inherit condition content; };
    # nixpkgs' lib.mkPackageOption (lib/options.nix): a package option whose default is
    # pkgs.NAME, and an error naming it where pkgs has none
    mkPackageOption = pkgs': name: _: {
      _type = "option";
      type = types.package;
      default = pkgs'.${name} or (throw "${name} cannot be found in pkgs");
      description = "The ${name} package to use.";
    };
    optional = cond: x: if cond then [ x ] else [ ];
    optionalString = cond: s: if cond then s else "";
    removePrefix =
      p: s:
      let
        n = builtins.stringLength p;
      in
      if builtins.substring 0 n s == p then builtins.substring n (-1) s else s;
  };

  pkgs = stubPkgs // {
    coreutils = stubPkgs.runCommand "coreutils" { } "mkdir -p $out/bin";
    writeShellScript = name: text: stubPkgs.runCommand name { inherit text; } "echo \"$text\" > $out";
  };

  isFalseIf = v: builtins.isAttrs v && (v._type or null) == "if" && !v.condition;
  isOption = v: builtins.isAttrs v && (v._type or null) == "option";

  # the value of each declared option: the setting if given (checked), else the default
  evalOptions =
    where: decls: given:
    let
      unknown = builtins.filter (n: !(decls ? ${n})) (builtins.attrNames given);
    in
    if unknown != [ ] then
      throw "The option `${where}.${builtins.head unknown}' does not exist."
    else
      builtins.mapAttrs (
        name: decl:
        let
          at = "${where}.${name}";
        in
        if isOption decl then
          evalValue at decl.type (
            if given ? ${name} then
              given.${name}
            else if decl ? default then
              decl.default
            else
              throw "The option `${at}' is used but not defined."
          )
        else
          evalOptions at decl (given.${name} or { })
      ) decls;

  evalValue =
    at: t: v:
    if !(t.check v) then
      throw "A definition for option `${at}' is not of type `${t.name}'."
    else if t ? elem then
      builtins.genList (i: evalValue "${at}.[${toString i}]" t.elem (builtins.elemAt v i)) (builtins.length v)
    else if t ? options then
      evalOptions at t.options v
    else
      v;

  resolve =
    v:
    if builtins.isAttrs v && (v._type or null) == "if" then
      (if v.condition then resolve v.content else { })
    else if builtins.isAttrs v && (v.type or null) != "derivation" then
      # an attribute whose value is mkIf false is not defined at all, as in NixOS
      builtins.mapAttrs (_: resolve) (
        builtins.removeAttrs v (
          builtins.filter (n: isFalseIf v.${n}) (builtins.attrNames v)
        )
      )
    else
      v;

  declared = (import module { config = final; inherit lib pkgs; }).options;
  final = {
    services = evalOptions "services" declared.services (settings.services or { });
  };
  out = resolve (import module { config = final; inherit lib pkgs; }).config;
  # as NixOS does when it builds the system (nixos/modules/system/activation/top-level.nix):
  # a failed assertion stops the evaluation with its message
  failed = map (a: a.message) (builtins.filter (a: !a.assertion) (out.assertions or [ ]));
  checked =
    if failed == [ ] then
      out
    else
      throw "\nFailed assertions:\n${builtins.concatStringsSep "\n" (map (m: "- ${m}") failed)}";
in
{
  config = checked;
  options = final;
}
