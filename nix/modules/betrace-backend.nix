# NixOS module: the BeTrace backend as a systemd service, with its rules kept as code.
#
#   imports = [ "${distribution}/nix/modules/betrace-backend.nix" ];
#   services.betrace-backend = {
#     enable = true;
#     package = betrace.packages.${system}.backend;
#     signatureKeyFile = "/etc/betrace/signature-key";
#     rules = [ { name = "..."; expression = "when { ... } never { ... }"; } ];
#   };
#
# Facts it relies on (upstream commit in releases.yaml): the backend reads only environment
# variables (no flags); it loads rules.json from BETRACE_DATA_DIR at start-up
# (backend/internal/storage/rule_store_disk.go), whose format `rulesJson` below writes; it binds
# every interface, so the firewall stays closed unless `openFirewall` is set.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.services.betrace-backend;

  # rules.json as upstream's disk store reads it: an object keyed by rule id, each a models.Rule
  # (backend/pkg/models/rule.go); the id is the name, as CreateRule sets it.
  # The distribution's `betrace-dist rules json` and its chart's ConfigMap write the same shape.
  stored = rule: {
    id = rule.name;
    inherit (rule)
      name
      expression
      description
      severity
      enabled
      tags
      ;
    luaCode = "";
    created_at = "0001-01-01T00:00:00Z";
    updated_at = "0001-01-01T00:00:00Z";
  };
  # keyed by name: listToAttrs keeps the first rule of a name, so a repeated one is refused below
  byName = builtins.listToAttrs (map (r: lib.nameValuePair r.name (stored r)) cfg.rules);
  repeated = builtins.filter (
    n: builtins.length (builtins.filter (r: r.name == n) cfg.rules) > 1
  ) (builtins.attrNames byName);
  rulesJson = builtins.toJSON byName;

  # The backend reads its key from BETRACE_SIGNATURE_KEY only: the key file reaches it through
  # systemd's credentials, never through the Nix store.
  start = pkgs.writeShellScript "betrace-backend-start" ''
    ${lib.optionalString (cfg.signatureKeyFile != null) ''
      BETRACE_SIGNATURE_KEY="$(cat "$CREDENTIALS_DIRECTORY/signature-key")"
      export BETRACE_SIGNATURE_KEY
    ''}
    exec ${lib.getExe' cfg.package "betrace-backend"}
  '';

  # a port below 1024 needs CAP_NET_BIND_SERVICE, which the service's dynamic user lacks
  privilegedPort = cfg.httpPort < 1024 || cfg.grpcPort < 1024;

  ruleType = lib.types.submodule {
    options = {
      name = lib.mkOption {
        type = lib.types.strMatching "[A-Za-z0-9][A-Za-z0-9._-]*";
        description = "The rule's name, which is also its id.";
      };
      expression = lib.mkOption {
        type = lib.types.str;
        description = "The rule in BeTrace's rule language (when { ... } always/never { ... }).";
      };
      description = lib.mkOption {
        type = lib.types.str;
        default = "";
        description = "What the rule is for.";
      };
      severity = lib.mkOption {
        # the four the Grafana app knows; the backend stores any text
        type = lib.types.enum [ "" "LOW" "MEDIUM" "HIGH" "CRITICAL" ];
        default = "";
        description = "Severity recorded with its violations; empty, the app shows MEDIUM.";
      };
      enabled = lib.mkOption {
        type = lib.types.bool;
        default = true;
        description = "Whether the rule is evaluated.";
      };
      tags = lib.mkOption {
        type = lib.types.listOf lib.types.str;
        default = [ ];
        description = "Free-form tags.";
      };
    };
  };
in
{
  # Add the submitter's handle (maintainers/maintainer-list.nix) when proposing it to nixpkgs.
  meta.maintainers = with lib.maintainers; [ ];

  options.services.betrace-backend = {
    enable = lib.mkEnableOption "the BeTrace backend";
    # pkgs.betrace-backend once nixpkgs has it; before that, the flake guide's patchedBackend
    package = lib.mkPackageOption pkgs "betrace-backend" { };
    httpPort = lib.mkOption {
      type = lib.types.port;
      default = 12011;
      description = "Port of the REST API, health, readiness and /metrics (BETRACE_PORT_BACKEND).";
    };
    grpcPort = lib.mkOption {
      type = lib.types.port;
      default = 12012;
      description = "Port of the gRPC API (BETRACE_PORT_GRPC).";
    };
    dataDir = lib.mkOption {
      # systemd's StateDirectory= takes a path below /var/lib and ignores an absolute one,
      # which left the backend no writable directory (ProtectSystem=strict): only /var/lib/...
      type = lib.types.strMatching "/var/lib/[A-Za-z0-9_][A-Za-z0-9._-]*(/[A-Za-z0-9_][A-Za-z0-9._-]*)*";
      default = "/var/lib/betrace";
      description = "Where rules.json lives (BETRACE_DATA_DIR): a directory under /var/lib, which systemd creates for the service's dynamic user.";
    };
    otlpEndpoint = lib.mkOption {
      # host:port; not 4318, the port of OTLP over HTTP: the backend exports over gRPC only
      type = lib.types.strMatching "[^:/]+:([1-9][0-9]{0,2}|[1-35-9][0-9]{3}|4[0-24-9][0-9]{2}|43[02-9][0-9]|431[0-79]|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])";
      default = "localhost:4317";
      description = "host:port, no scheme, of an OpenTelemetry Collector for the backend's own telemetry.";
    };
    otlpExportTimeout = lib.mkOption {
      type = lib.types.ints.positive;
      # the SDK's own 10000 made a stop without a collector take 10 s or more; 1000, a few seconds
      # (the distribution's release data, backend env OTEL_EXPORTER_OTLP_TIMEOUT, probe stop-time)
      default = 1000;
      description = "Milliseconds per export of the backend's own telemetry (OTEL_EXPORTER_OTLP_TIMEOUT).";
    };
    signatureKeyFile = lib.mkOption {
      # A string, not a path: a Nix path literal (./key) would be copied into the world-readable
      # Nix store when the unit is written.
      type = lib.types.nullOr (lib.types.strMatching "/.+");
      default = null;
      example = "/etc/betrace/signature-key";
      description = "Absolute path, as a string, of the file holding the key that signs violations (read through systemd's credentials, never copied into the Nix store); null keeps the backend's insecure development key.";
    };
    rules = lib.mkOption {
      type = lib.types.listOf ruleType;
      default = [ ];
      description = ''
        Rules written into dataDir as rules.json before each start. The file wins: rules created,
        changed or deleted through the API since the last start are replaced. Each name once.
        Empty: rules.json is left alone and rules are managed through the API, so emptying the
        list keeps the rules it last wrote; to remove every rule, delete them through the API.
      '';
    };
    openFirewall = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = "Open httpPort and grpcPort; the API has no authentication.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = repeated == [ ];
        message = "services.betrace-backend.rules: more than one rule is named ${builtins.concatStringsSep ", " repeated}; a rule's name is its id, so each name may come once.";
      }
    ];

    # The rules as the deployment wants them, readable on the host (they are not secret, and the
    # service's dynamic user must read them); copied into dataDir before each start, and a change
    # of them restarts the service.
    environment.etc."betrace-backend/rules.json" = lib.mkIf (cfg.rules != [ ]) { text = rulesJson; };

    systemd.services.betrace-backend = {
      description = "BeTrace backend";
      restartTriggers = [ rulesJson ];
      wantedBy = [ "multi-user.target" ];
      after = [ "network.target" ];
      environment = {
        BETRACE_PORT_BACKEND = toString cfg.httpPort;
        BETRACE_PORT_GRPC = toString cfg.grpcPort;
        BETRACE_DATA_DIR = cfg.dataDir;
        OTEL_EXPORTER_OTLP_ENDPOINT = cfg.otlpEndpoint;
        OTEL_EXPORTER_OTLP_TIMEOUT = toString cfg.otlpExportTimeout;
      };
      serviceConfig = {
        ExecStart = start;
        ExecStartPre = lib.optional (
          cfg.rules != [ ]
        ) "${pkgs.coreutils}/bin/install -m 0600 /etc/betrace-backend/rules.json ${cfg.dataDir}/rules.json";
        LoadCredential = lib.optional (cfg.signatureKeyFile != null) "signature-key:${cfg.signatureKeyFile}";
        DynamicUser = true;
        StateDirectory = lib.removePrefix "/var/lib/" cfg.dataDir;
        WorkingDirectory = cfg.dataDir;
        Restart = "on-failure";
        TimeoutStopSec = "30s";
        # Hardening: the set the Grafana module gives Grafana, another Go server with gRPC and
        # OpenTelemetry (services/monitoring/grafana.nix at NixOS/nixpkgs@88c82ee3); DynamicUser
        # adds ProtectSystem=strict.
        # The distribution tests the unit without systemd: systemd-analyze security scores it, and its programs run under strace, their system calls and sockets held to these lists.
        AmbientCapabilities = lib.optional privilegedPort "CAP_NET_BIND_SERVICE";
        CapabilityBoundingSet = if privilegedPort then [ "CAP_NET_BIND_SERVICE" ] else [ "" ];
        DeviceAllow = [ "" ];
        LockPersonality = true;
        NoNewPrivileges = true;
        PrivateDevices = true;
        PrivateTmp = true;
        ProtectClock = true;
        ProtectControlGroups = true;
        ProtectHome = true;
        ProtectHostname = true;
        ProtectKernelLogs = true;
        ProtectKernelModules = true;
        ProtectKernelTunables = true;
        ProtectProc = "invisible";
        RemoveIPC = true;
        RestrictAddressFamilies = [
          "AF_INET"
          "AF_INET6"
          "AF_UNIX"
        ];
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        SystemCallArchitectures = "native";
        SystemCallFilter = [
          "@system-service"
          "~@privileged"
        ];
        UMask = "0077";
      };
    };
    networking.firewall.allowedTCPPorts = lib.mkIf cfg.openFirewall [
      cfg.httpPort
      cfg.grpcPort
    ];
  };
}
