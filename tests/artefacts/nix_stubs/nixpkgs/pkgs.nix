# legacyPackages.<system> of the nixpkgs stand-in (see ../README.md). Every builder records its
# arguments in `.recorded` and returns a real derivation that `/bin/sh` can build on the host.
{ lib, system }:
let
  mkDrv =
    name: script: env:
    derivation (
      {
        inherit name system;
        builder = "/bin/sh";
        args = [
          "-e"
          "-c"
          script
        ];
        PATH = "/usr/bin:/bin";
      }
      // env
    );

  record = function: args: drv: drv // { recorded = { inherit function; args = lib.sanitize args; }; };

  # `f` may be attrs or a function of the final attrs (the finalAttrs pattern).
  fix = f: if builtins.isFunction f then (let final = f final; in final) else f;

  emptyBin = name: mkDrv name "mkdir -p $out/bin" { };

  buildPackage =
    function: f:
    let
      attrs = fix f;
    in
    record function attrs (mkDrv "${attrs.pname}-${attrs.version}" "mkdir -p $out" { })
    // {
      inherit (attrs) pname version;
      meta = attrs.meta or { };
    };

  pkgs = {
    inherit lib system;

    callPackage =
      fn: overrides:
      let
        f = if builtins.isFunction fn then fn else import fn;
      in
      f (builtins.intersectAttrs (builtins.functionArgs f) pkgs // overrides);

    fetchFromGitHub = args: { name = "source"; fetcher = "fetchFromGitHub"; } // args;

    # The real one returns an update script; the stand-in returns what it was given.
    nix-update-script = args: {
      updater = "nix-update-script";
      inherit args;
    };

    buildGoModule = buildPackage "buildGoModule";
    buildNpmPackage = buildPackage "buildNpmPackage";

    runCommand = name: env: script: record "runCommand" { inherit name env script; } (mkDrv name script env);

    # A development shell: what it was given, recorded; its packages are inputs of the
    # derivation, as nativeBuildInputs are of the real one, so evaluating it evaluates them.
    # `nix develop` itself is not run.
    mkShell =
      args:
      record "mkShell" args (
        mkDrv (args.name or "shell") "mkdir $out" { packages = args.packages or [ ]; }
      );

    writeShellApplication =
      args@{
        name,
        text,
        runtimeInputs ? [ ],
        ...
      }:
      let
        script =
          "#!/bin/bash\nset -o errexit\nset -o nounset\nset -o pipefail\n"
          + (if runtimeInputs == [ ] then "" else "export PATH=\"${lib.makeBinPath runtimeInputs}:$PATH\"\n")
          + text;
      in
      record "writeShellApplication" args (
        mkDrv name ''mkdir -p $out/bin && printf '%s' "$script" > "$out/bin/${name}" && chmod +x "$out/bin/${name}"'' {
          inherit script;
        }
      )
      // {
        meta = {
          mainProgram = name;
        };
      };

    coreutils = emptyBin "coreutils";
    skopeo = emptyBin "skopeo";
    docker-client = emptyBin "docker-client";

    grafana =
      mkDrv "grafana-12.0.0" ''
        mkdir -p $out/bin $out/share/grafana/conf
        printf '#!/bin/sh\necho grafana stand-in "$@"\n' > $out/bin/grafana
        chmod +x $out/bin/grafana
        : > $out/share/grafana/conf/defaults.ini
      '' { }
      // {
        version = "12.0.0";
      };

    dockerTools = {
      fakeNss = lib.makeOverridable (
        args@{
          extraPasswdLines ? [ ],
          extraGroupLines ? [ ],
        }:
        record "dockerTools.fakeNss" args (
          mkDrv "fake-nss" ''
            mkdir -p $out/etc
            printf '%s\n' "$passwd" > $out/etc/passwd
            printf '%s\n' "$group" > $out/etc/group
          '' {
            passwd = builtins.concatStringsSep "\n" (
              [
                "root:x:0:0:root:/root:/bin/sh"
                "nobody:x:65534:65534:nobody:/var/empty:/bin/sh"
              ]
              ++ extraPasswdLines
            );
            group = builtins.concatStringsSep "\n" (
              [
                "root:x:0:"
                "nobody:x:65534:"
              ]
              ++ extraGroupLines
            );
          }
        )
      ) { };

      # Builds a directory, not a tarball: rootfs/ holds the contents (copied, where the real
      # function links them) after extraCommands ran in it; config.json is the image config.
      buildLayeredImage =
        args@{
          name,
          tag ? "latest",
          contents ? [ ],
          config ? { },
          extraCommands ? "",
          fakeRootCommands ? "",
          ...
        }:
        record "dockerTools.buildLayeredImage" args (
          mkDrv "image-${baseNameOf name}-${tag}"
            ''
              mkdir -p $out/rootfs
              for c in $contents; do
                cp -R "$c/." $out/rootfs/
                chmod -R u+w $out/rootfs
              done
              printf '%s' "$configJson" > $out/config.json
              cd $out/rootfs
              ${extraCommands}
            ''
            {
              contents = if builtins.isList contents then contents else [ contents ];
              configJson = builtins.toJSON config;
            }
        )
        // {
          imageName = name;
          imageTag = tag;
        };
    };
  };
in
pkgs
