# nixpkgs expression for the BeTrace backend, written to be submitted as
# pkgs/by-name/be/betrace-backend/package.nix (by-name shard = first two letters of the name).
{
  lib,
  buildGoModule,
  fetchFromGitHub,
}:

buildGoModule (finalAttrs: {
  pname = "betrace-backend";
  version = "2.0.0";

  src = fetchFromGitHub {
    owner = "betrace-hq";
    repo = "betrace";
    tag = "v${finalAttrs.version}";
    # Placeholder until the tag exists upstream (nothing is published yet): the first build
    # fails with "hash mismatch ... got: sha256-..."; put that value here. `nix-prefetch-github
    # betrace-hq betrace --rev v<version>` prints it too. nixpkgs does not accept lib.fakeHash.
    hash = lib.fakeHash;
  };

  # The Go module is backend/ of the repository, not its root.
  modRoot = "backend";

  # backend/vendor/ is committed upstream, so there is no module download to pin.
  vendorHash = null;

  subPackages = [ "cmd/betrace-backend" ];

  ldflags = [
    "-s"
    "-w"
    "-X main.version=${finalAttrs.version}"
  ];

  meta = {
    description = "Behavioural assurance for OpenTelemetry traces: rule engine and API";
    longDescription = ''
      Evaluates rules written in the BeTrace DSL over OpenTelemetry spans and records the
      violations. Serves REST, health and Prometheus metrics on port 12011 and gRPC on 12012;
      keeps rules in BETRACE_DATA_DIR. The user interface is the grafana-betrace-app plugin.
    '';
    homepage = "https://github.com/betrace-hq/betrace";
    license = lib.licenses.mit;
    # Add the submitter's handle (maintainers/maintainer-list.nix) when opening the nixpkgs PR.
    maintainers = with lib.maintainers; [ ];
    mainProgram = "betrace-backend";
    platforms = lib.platforms.unix;
  };
})
