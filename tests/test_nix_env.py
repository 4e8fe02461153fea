"""The backend's environment as a Nix block sets it: found with its attribute path and line, and
held to the release data like a Compose file's environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from betrace_dist import REPO_ROOT
from betrace_dist.gate import nix_env
from betrace_dist.gate.failure import CheckFailure
from betrace_dist.release import ReleaseData

MODULE = """\
{ pkgs, ... }:
let
  inherit (pkgs) hello; # a comment with { a brace
in
{
  systemd.services.betrace-backend = {
    environment = {
      BETRACE_DATA_DIR = "/var/lib/betrace";
      OTEL_EXPORTER_OTLP_ENDPOINT = "collector:4317";
    };
    serviceConfig.ExecStart = "${hello}/bin/hello --flag=${toString 1}";
  };
  systemd.services.grafana.environment.PORT = "3000";
  systemd.services.betrace-backend.environment.BETRACE_DEBUG = ''
    on
  '';
}
"""


def test_assignments_carry_their_full_attribute_path_and_line() -> None:
    found = {".".join(a.path): (a.line, a.value) for a in nix_env.assignments(MODULE)}
    assert found["systemd.services.betrace-backend.environment.BETRACE_DATA_DIR"] == (
        8,
        "/var/lib/betrace",
    )
    assert found["systemd.services.betrace-backend.serviceConfig.ExecStart"] == (11, None)
    assert found["systemd.services.grafana.environment.PORT"] == (13, "3000")
    assert found["systemd.services.betrace-backend.environment.BETRACE_DEBUG"][0] == 14


def test_only_the_backends_environment_is_held_to_the_release_data(
    release_data: ReleaseData,
) -> None:
    names = [a.path[-1] for a in nix_env.backend_env(MODULE, "betrace-backend")]
    assert names == ["BETRACE_DATA_DIR", "OTEL_EXPORTER_OTLP_ENDPOINT", "BETRACE_DEBUG"]
    assert nix_env.problems(MODULE, release_data) == []


def test_a_url_for_the_otlp_endpoint_is_reported_at_its_line(release_data: ReleaseData) -> None:
    broken = MODULE.replace('"collector:4317"', '"http://collector:4317"')
    assert nix_env.problems(broken, release_data) == [
        (
            9,
            "systemd.services.betrace-backend.environment.OTEL_EXPORTER_OTLP_ENDPOINT is "
            "'http://collector:4317': the backend wants host:port with no scheme, "
            "e.g. 'collector:4317' (with a scheme its exporter fails: too many colons in address)",
        )
    ]


def test_a_variable_the_backend_never_reads_is_reported(release_data: ReleaseData) -> None:
    broken = MODULE.replace("BETRACE_DATA_DIR =", "BETRACE_STORAGE_PATH =")
    ((line, reason),) = nix_env.problems(broken, release_data)
    assert line == 8
    assert "BETRACE_STORAGE_PATH is not read by the backend" in reason


def test_an_unknown_variable_names_the_ones_it_reads(release_data: ReleaseData) -> None:
    broken = MODULE.replace("BETRACE_DATA_DIR =", "BETRACE_DATADIR =")
    ((_, reason),) = nix_env.problems(broken, release_data)
    assert "BETRACE_DATADIR is not a variable the backend reads" in reason
    assert "BETRACE_DATA_DIR" in reason


def test_a_value_the_backend_misreads_is_reported(release_data: ReleaseData) -> None:
    """BETRACE_DEBUG=false turns debug logging on: the shared rule, applied to a Nix block."""
    broken = MODULE.replace('BETRACE_DATA_DIR = "/var/lib/betrace";', 'BETRACE_DEBUG = "false";')
    ((line, reason),) = nix_env.problems(broken, release_data)
    assert line == 8
    assert "which turns debug logging ON" in reason


HOST = """\
{ pkgs, ... }:
{
  services.betrace-backend = {
    enable = true;
    otlpEndpoint = "localhost:4317";
    rules = [ { name = "a"; expression = "x"; } ];
  };
  services.betrace-backend.openFirewall = false;
}
"""


def test_module_options_a_host_sets_are_the_modules_own() -> None:
    """The options are read from nix/modules/betrace-backend.nix, so the expected names below
    are the module's, not a list kept beside the check."""
    assert nix_env.option_problems(HOST) == []
    bad = HOST.replace("rules = [", "rulez = [")
    ((line, message),) = nix_env.option_problems(bad)
    assert line == 6
    assert "services.betrace-backend.rulez is not an option" in message
    assert "did you mean 'rules'?" in message and "signatureKeyFile" in message


def test_the_otlp_endpoint_option_follows_the_backends_rule() -> None:
    for value, said in (
        ("http://collector:4317", "no scheme"),
        ("collector:4318", "the port of OTLP over HTTP"),
    ):
        ((line, message),) = nix_env.option_problems(HOST.replace("localhost:4317", value))
        assert line == 5 and said in message, message


def test_options_inside_common_nix_forms_are_found() -> None:
    """mkIf, with, if-then-else, mkMerge and a top-level config: an attribute set inside the
    value of a binding continues its path (read statically; nothing is evaluated)."""
    forms = [
        "services.betrace-backend = lib.mkIf cfg.on { enble = true; };",
        "services.betrace-backend = with lib; { enble = true; };",
        "services.betrace-backend = if on then { enble = true; } else { };",
        "services.betrace-backend = lib.mkMerge [ { enble = true; } ];",
        "config = { services.betrace-backend.enble = true; };",
    ]
    for form in forms:
        found = nix_env.option_problems("{ lib, cfg, on, ... }:\n{\n  " + form + "\n}\n")
        assert [line for line, _ in found] == [3], (form, found)
        assert "services.betrace-backend.enble is not an option" in found[0][1], form


def _series(data: ReleaseData, field: str) -> list[str]:
    return [p.file for p in getattr(data.current, field).patches]


def _flake_naming(files: list[str]) -> str:
    items = "\n".join(f'    "${{distribution}}/{f}"' for f in files)
    return f"{{ distribution }}:\n{{\n  patches = [\n{items}\n  ];\n}}\n"


def test_files_of_the_repository_and_the_whole_series_pass(release_data: ReleaseData) -> None:
    files = ["nix/modules/betrace-backend.nix", *_series(release_data, "backend")]
    assert nix_env.distribution_file_problems(_flake_naming(files), release_data) == []


def test_a_file_the_repository_does_not_have_is_named_with_its_line(
    release_data: ReleaseData,
) -> None:
    text = _flake_naming(["nix/modules/betrace.nix"])
    assert nix_env.distribution_file_problems(text, release_data) == [
        (
            4,
            "${distribution}/nix/modules/betrace.nix: the repository has no such file, "
            "did you mean nix/modules/betrace-backend.nix?",
        )
    ]


def test_a_path_out_of_the_repository_is_refused_without_looking(
    release_data: ReleaseData,
) -> None:
    (problem,) = nix_env.distribution_file_problems(
        _flake_naming(["nix/../../../etc/passwd"]), release_data
    )
    assert problem == (
        4,
        "${distribution}/nix/../../../etc/passwd is not a plain path of the repository",
    )


def test_a_series_missing_a_patch_or_out_of_order_is_reported(release_data: ReleaseData) -> None:
    series = _series(release_data, "plugin")
    for files in (series[:-1], list(reversed(series))):
        problems = nix_env.distribution_file_problems(_flake_naming(files), release_data)
        assert problems and problems[0][0] == 4, problems
        for _, problem in problems:
            assert "the release carries" in problem and "releases.yaml plugin.patches" in problem
            assert Path(series[-1]).name in problem


def _series_block(release_data: ReleaseData, lines: list[str]) -> list[tuple[int, str]]:
    return nix_env.distribution_file_problems("\n".join(lines) + "\n", release_data)


def test_what_hides_a_patch_from_a_text_search_is_read_as_nix_reads_it(
    release_data: ReleaseData,
) -> None:
    """Found by an attack on the first version, a search of the raw text: a commented-out patch
    passed for applied, a link's path or an interpolated one was not counted, an indented string
    was not read; a comment naming one patch was refused as an incomplete series."""
    series = _series(release_data, "backend")
    full = [f'"${{distribution}}/{f}"' for f in series]
    commented = [full[0], f"# {full[1]}", *full[2:]]
    (problem,) = _series_block(release_data, commented)
    assert "the release carries" in problem[1] and Path(series[1]).name in problem[1]
    assert _series_block(release_data, ["# " + full[0], "x = 1;"]) == []
    link = f'"${{distribution}}/nix/pkgs/by-name/be/betrace-backend/{Path(series[0]).name}"'
    (problem,) = _series_block(release_data, [link])
    assert "the release carries" in problem[1]
    indented = "''${distribution}/nix/modules/betrace.nix''"
    (problem,) = _series_block(release_data, [indented])
    assert "the repository has no such file" in problem[1]
    for unread in ('"${distribution}/patches/betrace-backend/${p}"', 'distribution + "/x"'):
        (problem,) = _series_block(release_data, [unread])
        assert "whose path the gate cannot read" in problem[1], unread


def test_other_files_folders_and_a_series_on_two_packages_pass(release_data: ReleaseData) -> None:
    series = _series(release_data, "backend")
    full = [f'"${{distribution}}/{f}"' for f in series]
    named = [
        '"${distribution}/releases.yaml"',
        '"${distribution}/docker/Dockerfile"',
        '"${distribution}/patches/betrace-backend"',
        '"${distribution}/./nix/modules/betrace-backend.nix"',
    ]
    assert _series_block(release_data, [*named, *full, *full]) == []


def test_only_the_first_unknown_paths_get_a_hint(release_data: ReleaseData) -> None:
    """Each hint searches every file's name: a block of thousands of misspelt paths would spend
    the block's time budget on hints nobody reads (only the first problem is shown)."""
    lines = [f'"${{distribution}}/nix/modules/betrace-{i}.nix"' for i in range(10)]
    problems = _series_block(release_data, lines)
    assert sum("did you mean" in p for _, p in problems) == 3


HOST_FLAKE = "Host flake: BeTrace backend and Grafana"


def _host_flake() -> str:
    from betrace_dist.gate.lexer import blocks
    from betrace_dist.gate.render import Site

    page = REPO_ROOT / "docs" / "guides" / "use-betrace-from-a-nix-flake.md"
    text = Site(REPO_ROOT / "mkdocs.yml").render(page).text
    (found,) = [b.body for b in blocks(text) if b.attrs.get("title") == HOST_FLAKE]
    return str(found)


@pytest.mark.parametrize(
    ("old", "new", "said"),
    [
        (
            "enable = true;\n                package",
            "package",
            "services.betrace-backend is configured but not enabled",
        ),
        (
            "enable = true;\n                package",
            "enable = false;\n                package",
            "is configured but not enabled",
        ),
        (
            "package = patchedBackend;",
            "package = backend;",
            "package is backend, not the backend this block patches (patchedBackend)",
        ),
        ('patchFlags = [ "-p2" ];', 'patchFlags = [ "-p1" ];', "without patchFlags"),
        ('patchFlags = [ "-p2" ];', "", "without patchFlags"),
    ],
    ids=["enable-left-out", "enable-false", "unpatched-package", "p1", "no-flags"],
)
def test_a_host_flake_that_runs_no_patched_backend_is_refused(
    release_data: ReleaseData, old: str, new: str, said: str
) -> None:
    """The Nix guide's host flake with its enable line left out, or the upstream package in
    place of the patched one, or the patches' strip level changed, passed: read statically,
    the module's options and the patches' files were all there."""
    body = _host_flake()
    assert nix_env.host_problems(body, release_data) == []
    assert body.count(old) == 1, old
    (found,) = nix_env.host_problems(body.replace(old, new, 1), release_data)
    assert said in found[1], found


def test_the_rules_a_block_gives_the_module_are_read_in_order() -> None:
    text = (
        "{ services.betrace-backend = { enable = true; rules = [\n"
        '  { name = "a"; expression = "when { x } never { y }"; severity = "HIGH"; }\n'
        '  { name = "b";\n    expression = "when { p } always { q }"; }\n'
        '  { name = "c"; expression = "when { ${x} }"; }\n'
        "]; }; }\n"
    )
    assert nix_env.module_rules(text) == [
        (2, {"name": "a", "expression": "when { x } never { y }", "severity": "HIGH"}),
        (4, {"name": "b", "expression": "when { p } always { q }"}),
    ]


def test_a_module_rule_that_does_not_compile_fails_at_its_line(
    backend_program: Path, tmp_path: Path
) -> None:
    """The host flake's rule with a hyphen in a span name passed: the module's rules were
    never sent to the engine, and the backend skips such a rule at its start."""
    from betrace_dist.gate.checkers import CheckFailure, Context
    from betrace_dist.gate.checkers.nix import _rules_compile
    from betrace_dist.gate.lexer import blocks
    from betrace_dist.gate.live import LiveTier

    body = _host_flake().replace("payment.charge.where", "payment-charge.where", 1)
    (block,) = blocks(f'```nix title="{HOST_FLAKE}"\n{body}```\n')
    live = LiveTier(program=backend_program, off_reason=None)
    ctx = Context(page=tmp_path / "page.md", site_root=tmp_path, live=live)
    with pytest.raises(CheckFailure, match=r"refused rule 'no-fraud-skip-on-large-charge' \(400\)"):
        _rules_compile(block, ctx)
    fixed = blocks(f'```nix title="{HOST_FLAKE}"\n{_host_flake()}```\n')[0]
    _rules_compile(fixed, ctx)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (
            "enable = true;\n                package",
            "enable = lib.mkDefault true;\n                package",
        ),
        ('patchFlags = [ "-p2" ];', 'patchFlags = [ "-p2" "-F3" ];'),
        ("package = patchedBackend;", "package = backend.overrideAttrs (old: { });"),
    ],
    ids=["mkDefault", "more-flags", "inline-override"],
)
def test_a_host_flake_written_otherwise_but_rightly_passes(
    release_data: ReleaseData, old: str, new: str
) -> None:
    body = _host_flake()
    assert body.count(old) == 1, old
    assert nix_env.host_problems(body.replace(old, new, 1), release_data) == []


def test_a_fragment_that_adds_one_option_is_not_asked_for_enable(release_data: ReleaseData) -> None:
    fragment = '{ services.betrace-backend.otlpEndpoint = "localhost:4317"; }\n'
    assert nix_env.host_problems(fragment, release_data) == []


HOST_GRAFANA = """{
  services.grafana = {
    enable = true;
    declarativePlugins = lib.mkIf withPlugin [ grafana-plugin ];
    settings = {
      server.http_addr = "127.0.0.1";
      plugins.allow_loading_unsigned_plugins = "betrace-app";
    };
  };
}
"""


@pytest.mark.parametrize(
    "value",
    ['"betrace-app"', '"other-panel,betrace-app"', '[ "other-panel" "betrace-app" ]'],
)
def test_a_host_grafana_given_the_app_and_allowed_to_load_it_passes(
    value: str, release_data: ReleaseData
) -> None:
    text = HOST_GRAFANA.replace('"betrace-app"', value)
    assert nix_env.grafana_problems(text, release_data) == []


@pytest.mark.parametrize(
    ("old", "new", "said"),
    [
        (
            "allow_loading_unsigned_plugins",
            "allow_unsigned_plugins",
            "the block sets settings.plugins.allow_unsigned_plugins, which Grafana does not read",
        ),
        ('"betrace-app"', '"betrace"', "does not name it"),
        ('"betrace-app"', '[ "other-panel" ]', "does not name it"),
    ],
)
def test_a_host_grafana_given_the_app_but_not_allowed_to_load_it_fails(
    old: str, new: str, said: str, release_data: ReleaseData
) -> None:
    """Grafana skips an unsigned plugin its settings do not allow: a host flake that gives
    Grafana the app (declarativePlugins) must allow the app's id."""
    problems = nix_env.grafana_problems(HOST_GRAFANA.replace(old, new), release_data)
    assert problems and said in problems[0][1], problems
    assert problems[0][0] in (4, 7), problems
    # the chart's values are judged by the same sentence (grafana_settings.unsigned_sentence)
    assert "Grafana skips the app and logs a signature error" in problems[0][1], problems


def test_a_host_grafana_without_the_app_or_with_a_computed_list_is_not_judged(
    release_data: ReleaseData,
) -> None:
    """A review found both refused: Grafana given other plugins only, and a list holding a
    variable (`[ appId ]`), which the gate cannot read."""
    without = HOST_GRAFANA.replace("declarativePlugins", "declarativeThings").replace(
        '"betrace-app"', '"x"'
    )
    assert nix_env.grafana_problems(without, release_data) == []
    others = HOST_GRAFANA.replace(
        "lib.mkIf withPlugin [ grafana-plugin ]",
        "with pkgs.grafanaPlugins; [ grafana-piechart-panel ]",
    ).replace('"betrace-app"', '"x"')
    assert nix_env.grafana_problems(others, release_data) == []
    for computed in ('lib.concatStringsSep "," ids', "[ appId ]", '[ "other" appId ]'):
        text = HOST_GRAFANA.replace('"betrace-app"', computed)
        assert nix_env.grafana_problems(text, release_data) == [], computed


def test_a_credential_is_read_from_the_folder_of_the_unit_given_it() -> None:
    """The attack moved the host flake's credential reads to /run/credentials/grafana and to
    grafana-server.service's folder, and both passed: systemd hands a unit its credentials in
    /run/credentials/UNITNAME alone (systemd.exec(5), systemd 252)."""
    block = (
        '{\n  systemd.services.grafana.serviceConfig.LoadCredential = [ "k:/etc/k" ];\n'
        '  services.grafana.settings.security.secret_key = "$__file{/run/credentials/%s/k}";\n}'
    )
    assert nix_env.credential_problems(block % "grafana.service") == []
    ((line, bare),) = nix_env.credential_problems(block % "grafana")
    assert line == 3 and "/run/credentials/grafana names no unit" in bare
    ((_, other),) = nix_env.credential_problems(block % "grafana-server.service")
    assert "LoadCredential hands it to grafana.service" in other


def test_systemds_own_credential_folders_are_not_read_as_units() -> None:
    """The review found /run/credentials/@system told to be @system.service."""
    block = (
        '{ services.grafana.settings.security.secret_key = "$__file{/run/credentials/@system/k}"; }'
    )
    assert nix_env.credential_problems(block) == []


def test_a_path_or_nesting_past_the_bound_fails_at_its_line() -> None:
    """An attack on the gate's parsers found a 384 KB block (180,000 path components under
    1,500 nested sets) taking 6.5 GB of the gate's memory: each set copied its path."""
    long_path = "{\n  " + ".".join(["x"] * (nix_env.MAX_PATH + 1)) + " = 1;\n}\n"
    with pytest.raises(CheckFailure, match=r"components") as long:
        nix_env.assignments(long_path)
    assert long.value.body_line == 2
    deep = (
        "{ a = "
        + "[ { b = " * (nix_env.MAX_DEPTH + 1)
        + "1"
        + "; } ]" * (nix_env.MAX_DEPTH + 1)
        + "; }"
    )
    with pytest.raises(CheckFailure, match=r"sets deep"):
        nix_env.assignments(deep)
    fine = "{ services.betrace-backend.settings.a.b.c = 1; }"
    assert [a.path[-1] for a in nix_env.assignments(fine)] == ["c"]


def test_a_go_runtime_value_that_stops_the_backend_is_reported(release_data: ReleaseData) -> None:
    """GOMEMLIMIT as a Kubernetes quantity stops the backend at start (probe go-runtime-env);
    the Go runtime's own forms pass."""
    setting = 'BETRACE_DATA_DIR = "/var/lib/betrace";'
    broken = MODULE.replace(setting, 'GOMEMLIMIT = "512Mi";')
    ((line, reason),) = nix_env.problems(broken, release_data)
    assert line == 8 and "malformed GOMEMLIMIT" in reason, reason
    right = MODULE.replace(setting, 'GOMEMLIMIT = "512MiB"; GOMAXPROCS = "2";')
    assert not nix_env.problems(right, release_data)
