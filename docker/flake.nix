# OCI images of BeTrace, built from the packages the BeTrace source flake exports.
#
# Application code exports packages; this flake only consumes them (the project's ADR-011).
# Linux only: dockerTools builds Linux images.
#
# The Nix alternative, not what the release publishes: the images workflow builds
# docker/Dockerfile. Upstream's grafana-plugin package runs a plain `npm install` in its build
# (grafana-betrace-app/flake.nix at the pinned commit), and Nix builds on Linux in a sandbox
# without network, so grafana-plugin-image and plugin-init-image, which carry that package, fail
# to build at this commit. Read from upstream's flake, not run. backend-image does not need it.
#
# Examples (from the repository root):
#
#   nix build ./docker#backend-image          # docker-archive tarball in ./result
#   nix run ./docker#load-backend-image       # docker load
#   nix run ./docker#push-backend-image -- VERSION-amd64
#   nix run ./docker#build-all                # build every image, print the store paths
{
  description = "OCI images of BeTrace: backend, Grafana with the BeTrace app, plugin-init";

  inputs = {
    # The BeTrace commit this release packages (releases.yaml releases[0].upstream.commit; upstream
    # has no tags yet). Never the default branch: tests/artefacts/test_dockerfiles.py holds this
    # URL to the release data; docker/Dockerfile and docker-compose.yml pin the same commit.
    betrace.url = "github:betrace-hq/betrace/c5f17ae4a572472e1afa62fa32a6f5fbecb1718d";
    # Upstream's flake names a dev-tools input, path:./dev-tools, that its commit does not have:
    # Nix 2.26 and later cannot lock this flake unless that input follows another (known issue
    # flake-input-dev-tools-missing). BeTrace's outputs never use it.
    betrace.inputs.dev-tools.follows = "betrace/nixpkgs";
    # One nixpkgs for the packages and the images: the one BeTrace itself is built with.
    nixpkgs.follows = "betrace/nixpkgs";
    # The distribution's patch series for the backend and the Grafana app (patches/README.md of
    # this repository), a path input relative to this flake (relative path inputs need
    # Nix >= 2.26).
    patches = {
      url = "path:../patches";
      flake = false;
    };
  };

  outputs =
    {
      self,
      betrace,
      nixpkgs,
      patches,
    }:
    let
      # The release these images belong to, in ONE place. releases.yaml is the record:
      # `python -m betrace_dist.bump` rewrites this block and tests/artefacts/test_nix.py proves it
      # equals releases.yaml (version, registry, ports, plugin id).
      release = {
        version = "2.0.0";
        # The BeTrace commit inputs.betrace.url pins (tests/artefacts/test_dockerfiles.py).
        upstreamCommit = "c5f17ae4a572472e1afa62fa32a6f5fbecb1718d";
        registry = "ghcr.io/betrace-hq/betrace";
        # org.opencontainers.image.source: this repository, which GHCR links pushed images to
        # (the comment on the labels in docker/Dockerfile says why).
        source = "https://github.com/betrace-hq/distribution";
        license = "MIT";
        ports = {
          http = 12011;
          grpc = 12012;
        };
        dataDir = "/var/lib/betrace";
        # The patch series the backend is built with, in order (releases.yaml backend.patches).
        backendPatches = [
          "0001-dsl-read-the-keyword-false-as-false.patch"
          "0002-dsl-match-quoted-list-items-without-their-quotes.patch"
          "0003-rules-give-recovered-rules-their-state-machine.patch"
          "0004-rules-leave-a-rule-as-it-was-when-its-expression-does-not-compile.patch"
          "0005-rules-leave-a-rule-as-it-was-when-the-store-refuses-it.patch"
          "0006-rules-answer-404-for-an-unknown-rule-and-keep-no-state-for-it.patch"
          "0007-rules-refuse-a-name-the-rules-url-cannot-carry.patch"
          "0008-dsl-guard-the-pattern-cache-against-concurrent-use.patch"
        ];
        plugin = {
          id = "betrace-app";
          pluginsDir = "/var/lib/grafana/plugins";
          # Where plugin-init copies the plugin unless told otherwise (argument 1 or env).
          initTarget = "/plugins/betrace-app";
          # The patch series the app is built with, in order (releases.yaml plugin.patches).
          patches = [
            "0001-webpack-externalise-react-jsx-runtime.patch"
            "0002-call-the-backend-through-grafana-plugin-proxy.patch"
            "0003-use-the-backend-paths-and-answers.patch"
            "0004-fetch-the-signals-page-violations-once-per-interval.patch"
            "0005-test-rule-expressions-by-the-rule-language-not-older-keywords.patch"
          ];
        };
      };

      linuxSystems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      otherSystems = [
        "x86_64-darwin"
        "aarch64-darwin"
      ];
      inherit (nixpkgs) lib;

      labels = title: {
        "org.opencontainers.image.title" = title;
        "org.opencontainers.image.version" = release.version;
        "org.opencontainers.image.source" = release.source;
        "org.opencontainers.image.licenses" = release.license;
      };

      imagesFor =
        system:
        let
          pkgs = nixpkgs.legacyPackages.${system};
          # Upstream's backend with the distribution's patch series, in order; -p2 because the
          # patches' paths start at upstream's repository root, one level above the backend's
          # source (upstream's backend/flake.nix builds `src = ./.`).
          backend = betrace.packages.${system}.backend.overrideAttrs (old: {
            patches =
              (old.patches or [ ])
              ++ map (name: "${patches}/betrace-backend/${name}") release.backendPatches;
            patchFlags = [ "-p2" ];
          });
          # Upstream's app with the distribution's patch series, in order; -p2 because the
          # patches' paths start at upstream's repository root, one level above the app's source.
          plugin = betrace.packages.${system}.grafana-plugin.overrideAttrs (old: {
            patches =
              (old.patches or [ ])
              ++ map (name: "${patches}/grafana-betrace-app/${name}") release.plugin.patches;
            patchFlags = [ "-p2" ];
          });
          pluginDir = "${release.plugin.pluginsDir}/${release.plugin.id}";

          # Fixed numeric ids: Kubernetes `runAsNonRoot` needs a number, not a name.
          backendUid = "10001";
          grafanaUid = "472"; # the uid of Grafana's own images, so volumes move between them
          nobody = "65534";

          backendNss = pkgs.dockerTools.fakeNss.override {
            extraPasswdLines = [ "betrace:x:${backendUid}:${backendUid}:BeTrace:${release.dataDir}:/sbin/nologin" ];
            extraGroupLines = [ "betrace:x:${backendUid}:" ];
          };
          grafanaNss = pkgs.dockerTools.fakeNss.override {
            extraPasswdLines = [ "grafana:x:${grafanaUid}:0:Grafana:/var/lib/grafana:/sbin/nologin" ];
          };

          # The init container's whole job: copy the plugin directory (the grafana-plugin package,
          # with plugin.json and module.js) into a shared volume. It refuses to run if the payload
          # is not a plugin, so an image built with an empty payload fails loudly, not silently.
          pluginInit = pkgs.writeShellApplication {
            name = "betrace-plugin-init";
            runtimeInputs = [ pkgs.coreutils ];
            text = ''
              payload="${plugin}"
              target="''${1:-''${BETRACE_PLUGIN_TARGET:-${release.plugin.initTarget}}}"
              for required in plugin.json module.js; do
                if [ ! -f "$payload/$required" ]; then
                  echo "plugin-init: $payload has no $required: this image carries no plugin" >&2
                  exit 1
                fi
              done
              mkdir -p "$target"
              # Copy contents, not the read-only store modes, so Grafana (another user) reads them
              # and the next start can overwrite them with a newer plugin.
              cp -R --no-preserve=mode,ownership "$payload/." "$target/"
              echo "plugin-init: copied ${release.plugin.id} to $target"
            '';
          };
        in
        {
          backend-image = pkgs.dockerTools.buildLayeredImage {
            name = "${release.registry}/backend";
            tag = release.version;
            contents = [ backendNss ];
            extraCommands = ''
              mkdir -p .${release.dataDir} tmp
              chmod 1777 tmp
            '';
            # The data directory must be writable by the non-root user (rules.json lives there).
            fakeRootCommands = ''
              chown -R ${backendUid}:${backendUid} .${release.dataDir}
            '';
            config = {
              User = "${backendUid}:${backendUid}";
              Entrypoint = [ "${backend}/bin/betrace-backend" ];
              WorkingDir = release.dataDir;
              Env = [
                "BETRACE_DATA_DIR=${release.dataDir}"
                "BETRACE_PORT_BACKEND=${toString release.ports.http}"
                "BETRACE_PORT_GRPC=${toString release.ports.grpc}"
              ];
              ExposedPorts = {
                "${toString release.ports.http}/tcp" = { };
                "${toString release.ports.grpc}/tcp" = { };
              };
              Volumes = {
                "${release.dataDir}" = { };
              };
              Labels = labels "BeTrace backend";
            };
          };

          grafana-plugin-image = pkgs.dockerTools.buildLayeredImage {
            name = "${release.registry}/grafana-plugin";
            tag = release.version;
            contents = [ grafanaNss ];
            # Real files, not links into the store: Grafana's plugin scanner then sees a plain
            # directory whatever its version does with symbolic links.
            extraCommands = ''
              # var/lib/grafana/data: Compose mounts Grafana's data volume there (GF_PATHS_DATA),
              # beside the plugins directory; a fresh volume takes this directory's owner.
              mkdir -p .${release.plugin.pluginsDir} var/lib/grafana/data var/log/grafana tmp
              chmod 1777 tmp
              cp -R --no-preserve=mode,ownership ${plugin} .${pluginDir}
            '';
            fakeRootCommands = ''
              chown -R ${grafanaUid}:0 var/lib/grafana var/log/grafana
            '';
            config = {
              User = "${grafanaUid}:0";
              Entrypoint = [
                "${pkgs.grafana}/bin/grafana"
                "server"
                "--homepath"
                "${pkgs.grafana}/share/grafana"
              ];
              WorkingDir = "/var/lib/grafana";
              Env = [
                "GF_PATHS_DATA=/var/lib/grafana"
                "GF_PATHS_PLUGINS=${release.plugin.pluginsDir}"
                "GF_PATHS_LOGS=/var/log/grafana"
                # The plugin is unsigned: allow exactly this id, nothing else.
                "GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS=${release.plugin.id}"
              ];
              ExposedPorts = {
                "3000/tcp" = { };
              };
              Labels = labels "Grafana with the BeTrace app plugin";
            };
          };

          plugin-init-image = pkgs.dockerTools.buildLayeredImage {
            name = "${release.registry}/plugin-init";
            tag = release.version;
            # The payload travels in the closure of the entrypoint (it names the plugin's path).
            contents = [ pluginInit ];
            # A fresh Docker volume mounted on /plugins takes this directory's owner.
            extraCommands = ''
              mkdir -p plugins
            '';
            fakeRootCommands = ''
              chown ${nobody}:${nobody} plugins
            '';
            config = {
              User = "${nobody}:${nobody}";
              Entrypoint = [ "${pluginInit}/bin/betrace-plugin-init" ];
              Env = [
                "BETRACE_PLUGIN_TARGET=${release.plugin.initTarget}"
                "BETRACE_PLUGIN_SOURCE=${plugin}"
              ];
              Labels = labels "BeTrace plugin-init: copies the BeTrace app plugin into a volume";
            };
          };
        };

      appsFor =
        system:
        let
          pkgs = nixpkgs.legacyPackages.${system};
          images = imagesFor system;
          app = description: drv: {
            type = "app";
            program = "${drv}/bin/${drv.meta.mainProgram}";
            meta = { inherit description; };
          };
          perImage =
            verb: description: mkText:
            lib.mapAttrs' (
              name: image:
              lib.nameValuePair "${verb}-${name}" (
                app "${description} ${image.imageName}" (
                  pkgs.writeShellApplication {
                    name = "${verb}-${name}";
                    runtimeInputs = if verb == "push" then [ pkgs.skopeo ] else [ pkgs.docker-client ];
                    text = mkText image;
                  }
                )
              )
            ) images;
        in
        {
          build-all = app "Build every BeTrace image and print its store path" (
            pkgs.writeShellApplication {
              name = "build-all";
              # Referencing the images makes building this script build them.
              text = lib.concatMapStringsSep "\n" (name: ''echo "${name} ${images.${name}}"'') (
                builtins.attrNames images
              );
            }
          );
        }
        // perImage "load" "Load into the local Docker engine:" (image: ''
          docker load --input "${image}"
        '')
        // perImage "push" "Push to the registry:" (image: ''
          # Usage: push-<image> [TAG]; TAG defaults to ${image.imageTag}. CI pushes one tag per
          # architecture (VERSION-amd64) and joins them into a multi-arch index afterwards.
          # With DIGEST_FILE set, skopeo writes the pushed manifest digest there.
          tag="''${1:-${image.imageTag}}"
          extra=()
          if [ -n "''${DIGEST_FILE:-}" ]; then
            extra+=(--digestfile "$DIGEST_FILE")
          fi
          skopeo copy "''${extra[@]}" "docker-archive:${image}" "docker://${image.imageName}:$tag"
          echo "pushed ${image.imageName}:$tag"
        '');

      # On macOS the apps exist so that `nix run` explains itself instead of "attribute missing".
      linuxOnlyApps =
        system:
        lib.genAttrs (builtins.attrNames (appsFor "x86_64-linux")) (name: {
          type = "app";
          program = throw (
            "docker/flake.nix: '${name}' builds OCI images, which are Linux-only, and ${system} is not "
            + "Linux; its script runs Linux programs, so no app of this flake runs here. With a Linux "
            + "builder (for example nix-darwin's nix.linux-builder), build an image instead: "
            + "nix build ./docker#packages.aarch64-linux.backend-image, then docker load < result"
          );
        });
    in
    {
      # Read by tests (tests/artefacts/test_nix.py); not a nixpkgs-style library.
      lib = { inherit release; };

      packages = lib.genAttrs linuxSystems imagesFor;

      apps = lib.genAttrs linuxSystems appsFor // lib.genAttrs otherSystems linuxOnlyApps;
    };
}
