"""Command lines read as the real tools read them: kubectl's flags and subcommands from its own
help, curl's options that take a value, the shared splitter the Helm, git clone, docker build and
docker compose models use, shell here-documents with quoted delimiters; and kubectl generators run
for real, offline."""

from __future__ import annotations

import base64
import os
import re
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from betrace_dist import REPO_ROOT, tools
from betrace_dist.gate.commands import flags, models
from betrace_dist.gate.commands import git as git_model
from betrace_dist.gate.commands import helm as helm_model
from betrace_dist.gate.commands import kubectl as kubectl_model
from betrace_dist.gate.commands import nix as nix_model
from betrace_dist.gate.commands.compose import build_options, compose_line
from betrace_dist.gate.commands.curl import curl
from betrace_dist.gate.commands.flags import CommandLine, parse_help
from betrace_dist.gate.commands.git import clone_line
from betrace_dist.gate.printf import printed
from betrace_dist.gate.session import CommandError, Session
from betrace_dist.gate.shellwords import SplitError, split
from betrace_dist.gate.world import Listener, World, pod_references
from betrace_dist.release import load_release_data

from .conftest import require_tool, run


@pytest.fixture(scope="module")
def kubectl() -> str:
    return require_tool("kubectl")


pytestmark = pytest.mark.gate_session(timeout=20)


# -- help texts ---------------------------------------------------------------------------------


def test_help_layouts_say_which_flags_take_a_value() -> None:
    curl_like = " -d, --data <data>  HTTP POST data\n -s, --silent       Silent mode\n"
    helm_like = (
        '  -n, --namespace string   ns\n      --wait   wait\n      --dry-run string[="unset"]  x\n'
    )
    kubectl_like = "    -f, --filename=[]:\n\tFiles\n    -w, --watch=false:\n\tWatch\n"
    curl_opts, helm_opts, kube_opts = map(parse_help, (curl_like, helm_like, kubectl_like))
    assert curl_opts.valued == {"-d", "--data"} and "--silent" in curl_opts.names
    assert helm_opts.valued == {"-n", "--namespace"}  # an optional value only attaches with =
    assert kube_opts.valued == {"-f", "--filename"} and "--watch" in kube_opts.names


# -- the shared command-line splitter ------------------------------------------------------------


def test_command_line_splits_subcommand_positionals_and_flags_in_order() -> None:
    line = CommandLine(
        [
            "repo",
            "add",
            "-n",
            "ns",
            "grafana",
            "--wait",
            "-f",
            "v.yaml",
            "https://x",
            "-f",
            "w.yaml",
        ],
        {"-n", "-f"},
        sub_arity=2,
    )
    assert line.sub == ["repo", "add"] and line.positional == ["grafana", "https://x"]
    assert line.flags == [("-n", "ns"), ("--wait", None), ("-f", "v.yaml"), ("-f", "w.yaml")]
    assert line.get("-f") == "w.yaml" and line.all("-f") == ["v.yaml", "w.yaml"]
    assert line.has("--wait") and not line.has("--atomic")
    assert line.namespace == "ns"
    assert CommandLine(["--namespace=betrace"], set()).namespace == "betrace"
    assert CommandLine(["list"], {"-n"}).namespace == "default"


def test_command_line_double_dash_ends_the_flags_and_a_lone_dash_is_a_word() -> None:
    line = CommandLine(["-", "--", "-x", "--y"], set())
    assert line.positional == ["-", "-x", "--y"] and line.flags == []


def test_command_line_names_a_flag_left_without_its_value() -> None:
    assert CommandLine(["--depth", "1", "url"], {"--depth"}).missing_value() is None
    assert CommandLine(["url", "--depth"], {"--depth"}).missing_value() == "--depth"
    assert CommandLine(["--depth="], {"--depth"}).missing_value() is None  # empty, not missing


def test_command_line_keeps_the_rest_verbatim_after_a_subcommand_or_service() -> None:
    top = CommandLine(["-f", "c.yml", "exec", "-T", "x"], {"-f"}, sub_arity=1, verbatim_after=0)
    assert top.sub == ["exec"] and top.positional == ["-T", "x"] and top.get("-f") == "c.yml"
    line = CommandLine(["-T", "backend", "ls", "-la"], set(), verbatim_after=1)
    assert line.flags == [("-T", None)] and line.positional == ["backend", "ls", "-la"]


def test_git_clone_line_reads_its_valued_options() -> None:
    line = clone_line(["-b", "v1.2.3", "--depth=2", "--single-branch", "https://x/y.git", "dir"])
    assert line.positional == ["https://x/y.git", "dir"]
    assert line.get("-b", "--branch") == "v1.2.3" and line.get("--depth") == "2"
    with pytest.raises(CommandError, match=r"^git clone: --branch needs a value$"):
        clone_line(["https://x/y.git", "--branch"])


def test_git_clone_refuses_an_option_git_does_not_have() -> None:
    with pytest.raises(CommandError, match=r"^git clone has no option '--dpeth'.*'--depth'"):
        clone_line(["--dpeth", "1", "https://x/y.git"])


@pytest.mark.parametrize("binary", ["helm", "helm3"])
def test_helm_lines_are_split_with_the_real_helms_flags(binary: str) -> None:
    """Which flags take a value is what each real Helm's help says, not a list of ours:
    `--history-max 5` (absent from the old hand list) takes its value."""
    path = require_tool(binary)
    words = ["upgrade", "--install", "r", "./c", "--history-max", "5", "-n", "x", "--atomic"]
    line = helm_model.command_line(words, path)
    assert line.sub == ["upgrade"] and line.positional == ["r", "./c"]
    assert line.get("--history-max") == "5" and line.namespace == "x" and line.has("--atomic")
    repo = helm_model.command_line(["repo", "add", "--username", "u", "g", "https://g"], path)
    assert repo.sub == ["repo", "add"] and repo.positional == ["g", "https://g"]


@pytest.mark.parametrize("binary", ["helm", "helm3"])
def test_helm_ignores_version_for_the_chart_of_a_clone(binary: str) -> None:
    """The Kubernetes guide and the security reference say Helm uses --version for a chart from
    a registry and ignores it for a clone's: each real Helm renders the clone's chart with a
    version it is not, every run (a fact re-observed, not typed once)."""
    done = subprocess.run(
        [require_tool(binary), "template", "b", str(REPO_ROOT / "helm" / "betrace"),
         "--version", "9.9.9", "--show-only", "templates/backend-service.yaml"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and "kind: Service" in done.stdout, done.stderr


def test_helm_4_warns_of_a_plain_dry_run_which_helm_3_alone_takes() -> None:
    """The existing-Grafana guide keeps `--dry-run` without a value and says Helm 4 warns of
    it while Helm 3 refuses `--dry-run=client`: each real Helm, every run (a client-side dry
    run of Helm 4 reaches no cluster; Helm 3 stops while it reads its flags)."""
    chart = str(REPO_ROOT / "helm" / "betrace")
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "KUBECONFIG": "/nonexistent"}

    def install(binary: str, dry_run: str) -> subprocess.CompletedProcess[str]:
        argv = [require_tool(binary), "install", "b", chart, dry_run]
        return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)

    helm4 = install("helm", "--dry-run")
    assert helm4.returncode == 0, helm4.stderr
    said = "--dry-run is deprecated and should be replaced with '--dry-run=client'"
    assert said in helm4.stderr
    helm3 = install("helm3", "--dry-run=client")
    assert helm3.returncode != 0 and 'invalid argument "client" for "--dry-run"' in helm3.stderr


def test_nix_lines_are_split_with_nixs_own_description_of_its_flags() -> None:
    """Nix describes its command line itself (`nix __dump-args`): `--override-input` takes two
    words, `-o` one, a setting such as `--extra-experimental-features` one."""
    require_tool("nix")
    words = ["build", "--override-input", "nixpkgs", "path:/x", "-o", "out", ".#backend"]
    words += ["--extra-experimental-features", "flakes", "-L"]
    line = nix_model.command_line(words)
    assert line.sub == ["build"] and line.positional == [".#backend"]
    assert line.get("--override-input") == "nixpkgs path:/x" and line.get("-o") == "out"
    flake = nix_model.command_line(["flake", "show", "--json", ".", "--", "ignored"])
    assert flake.sub == ["flake", "show"] and flake.positional == ["."]
    with pytest.raises(CommandError, match=r"^nix build has no flag '--out-lnk'.*'--out-link'"):
        nix_model.command_line(["build", ".#x", "--out-lnk", "y"])


def test_git_clone_model_refuses_a_bad_depth_and_another_tag(session: Session) -> None:
    repo = session.release.project.distribution_repository
    with pytest.raises(CommandError, match=r"git clone --depth 0: not a positive number"):
        run(session, f"git clone --depth 0 {repo}\n")
    with pytest.raises(CommandError, match=r"git clone --branch v0\.0\.1: the tag of this release"):
        run(session, f"git clone -b v0.0.1 {repo}\n")
    assert not (session.cwd / repo.rsplit("/", 1)[-1]).exists()


def test_docker_build_options_are_split_as_docker_splits_them() -> None:
    build = build_options(
        ["-t", "a:1", "--tag=b:1", "--target", "backend", "--build-arg", "X=1", "-f", "D", "ctx/"]
    )
    assert (build.context, build.tags, build.target) == ("ctx/", ["a:1", "b:1"], "backend")
    assert (build.build_args, build.file) == (["X=1"], "D")
    with pytest.raises(CommandError, match=r"^docker build: --target needs a value$"):
        build_options(["docker/", "--target"])
    with pytest.raises(CommandError, match=r"option '--squash' is not modelled \(--build-arg, "):
        build_options(["--squash", "docker/"])
    with pytest.raises(CommandError, match="exactly one context directory"):
        build_options(["-t", "a:1"])


@pytest.fixture(scope="module")
def compose_cli() -> str:
    return require_tool("docker-compose")


def test_compose_line_separates_composes_options_from_the_subcommands(compose_cli: str) -> None:
    line = compose_line(["-f", "a.yml", "--env-file", "e", "exec", "-T", "backend", "ls", "-la"])
    assert line.files == ["a.yml"] and line.options.get("--env-file") == "e"
    assert line.sub == "exec" and line.args.positional == ["backend", "ls", "-la"]
    assert line.args.flags == [("-T", None)]
    logs = compose_line(["logs", "-f", "--tail", "5", "grafana"])  # -f: follow, not a file
    assert logs.files == [] and logs.args.positional == ["grafana"]
    assert logs.args.get("--tail") == "5"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--nope", "up"], "docker compose: unknown option '--nope'"),
        (["up", "--nope"], "docker compose up: unknown option '--nope'"),
        (["-f", "a.yml"], "docker compose: no subcommand"),
        (["upp"], "docker compose: unknown subcommand 'upp', did you mean 'up'?"),
    ],
)
def test_compose_line_refuses_what_compose_would(
    compose_cli: str, args: list[str], message: str
) -> None:
    with pytest.raises(CommandError) as caught:
        compose_line(args)
    assert str(caught.value) == message


def test_no_model_takes_the_name_of_a_command_run_for_real(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    models()  # as shipped: no overlap
    monkeypatch.setattr(git_model, "MODELS", {**git_model.MODELS, "cat": git_model.git})
    with pytest.raises(AssertionError, match="cat"):
        models()


# -- kubectl argument parsing ---------------------------------------------------------------------


def test_kubectl_global_flags_before_the_subcommand_and_attached_short_values(kubectl: str) -> None:
    args = kubectl_model.parse(
        ["kubectl", "-n", "betrace", "get", "pods", "-l", "app=x", "-oyaml"], kubectl
    )
    assert args.path == ["get"] and args.positional == ["pods"]
    assert args.namespace == "betrace" and args.get("-l") == "app=x" and args.get("-o") == "yaml"


def test_kubectl_nested_subcommands_come_from_its_help(kubectl: str) -> None:
    args = kubectl_model.parse(
        ["kubectl", "rollout", "status", "deploy/x", "--namespace=betrace"], kubectl
    )
    assert args.path == ["rollout", "status"] and args.positional == ["deploy/x"]
    secret = kubectl_model.parse(
        ["kubectl", "create", "secret", "generic", "s", "--from-literal", "a=b"], kubectl
    )
    assert secret.path == ["create", "secret", "generic"] and secret.positional == ["s"]
    assert secret.all("--from-literal") == ["a=b"]


def test_kubectl_boolean_clusters_and_the_command_after_double_dash(kubectl: str) -> None:
    args = kubectl_model.parse(
        ["kubectl", "exec", "-it", "deploy/x", "--", "sh", "-c", "ls -l"], kubectl
    )
    assert ("-i", None) in args.flags and ("-t", None) in args.flags
    assert args.positional == ["deploy/x", "--", "sh", "-c", "ls -l"]  # -c is sh's, not kubectl's


def test_kubectl_flag_it_does_not_have_is_refused_with_the_closest(kubectl: str) -> None:
    with pytest.raises(CommandError, match=r"kubectl get has no flag '--namspace'.*'--namespace'"):
        kubectl_model.parse(["kubectl", "get", "pods", "--namspace", "betrace"], kubectl)
    with pytest.raises(CommandError, match="kubectl logs has no flag '--replicas'"):
        kubectl_model.parse(["kubectl", "logs", "deploy/x", "--replicas", "2"], kubectl)


def test_kubectl_remote_manifest_is_refused(session: Session, kubectl: str) -> None:
    with pytest.raises(CommandError, match="cannot check a remote manifest offline"):
        run(session, "kubectl apply -f https://example.com/all.yaml\n")


def test_kubectl_unmodelled_subcommand_says_so(session: Session, kubectl: str) -> None:
    with pytest.raises(CommandError, match="kubectl cordon is not modelled; modelled: apply"):
        run(session, "kubectl cordon node-1\n")


def _applied(manifest: str, flags: str = "") -> str:
    return f"cat > m.yaml <<'YAML'\n{manifest}YAML\nkubectl apply {flags}-f m.yaml\n"


@pytest.mark.parametrize(
    ("manifest", "said"),
    [
        ("apiVersion: 1\nkind: ConfigMap\nmetadata: {name: a}\n", r"document 1 .*apiVersion is 1"),
        ("apiVersion: v1\nkind: [ConfigMap]\nmetadata: {name: a}\n", r"document 1 .*kind is"),
        ("- apiVersion: v1\n- kind: ConfigMap\n", r"document 1 .*is a list, not a mapping"),
        ("just words\n", r"document 1 .*is a string, not a mapping"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n42\n", r"document 2 "),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: [a]\n", r"document 1 .*metadata is"),
    ],
    ids=["apiVersion-int", "kind-list", "list", "string", "second-scalar", "metadata-list"],
)
def test_a_manifest_document_of_the_wrong_shape_is_refused(
    session: Session, kubectl: str, manifest: str, said: str
) -> None:
    """The schema validator raised TypeError on an apiVersion not a string and on a document
    not a mapping: the page got a traceback where kubectl refuses the file."""
    with pytest.raises(CommandError, match=f"m.yaml: {said}"):
        run(session, _applied(manifest))


CONFIG_MAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: other}\n"


@pytest.mark.parametrize(
    "metadata",
    ["{}", "{labels: {a: b}}", "{name: ''}", "null"],
    ids=["empty", "no-name", "''", "null"],
)
def test_an_object_without_a_name_is_refused(session: Session, kubectl: str, metadata: str) -> None:
    with pytest.raises(CommandError, match="resource name may not be empty"):
        run(session, _applied(f"apiVersion: v1\nkind: ConfigMap\nmetadata: {metadata}\n"))


def test_an_objects_namespace_other_than_the_flags_is_refused(
    session: Session, kubectl: str
) -> None:
    """kubectl refuses an object whose metadata.namespace is not the one -n names (its own
    words, as the installed kubectl binary holds them)."""
    with pytest.raises(
        CommandError,
        match=re.escape(
            'the namespace from the provided object "other" does not match the namespace '
            "\"betrace\". You must pass '--namespace=other' to perform this operation."
        ),
    ):
        run(
            session,
            "kubectl create namespace betrace\nkubectl create namespace other\n"
            + _applied(CONFIG_MAP, "-n betrace "),
        )


def test_an_object_in_a_namespace_never_created_is_refused(session: Session, kubectl: str) -> None:
    with pytest.raises(CommandError, match=r"namespace 'other' does not exist.*NotFound"):
        run(session, _applied(CONFIG_MAP))
    # made earlier in the same file, it exists by then: kubectl applies the documents in order
    namespace = "apiVersion: v1\nkind: Namespace\nmetadata: {name: other}\n---\n"
    run(session, _applied(namespace + CONFIG_MAP))
    assert session.world.find("other", "ConfigMap", "a") is not None


def test_a_cluster_scoped_object_belongs_to_no_namespace(session: Session, kubectl: str) -> None:
    role = (
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
        "metadata: {name: reader, namespace: nowhere}\nrules: []\n"
    )
    run(session, "kubectl create namespace betrace\n" + _applied(role, "-n betrace "))
    (found,) = [o for o in session.world.objects if o.kind == "ClusterRole"]
    assert found.namespace == ""
    # the same object applied from another namespace is that object, not a second one
    run(session, _applied(role))
    assert [o.kind for o in session.world.objects].count("ClusterRole") == 1


# -- kubectl generators, for real -----------------------------------------------------------------


def test_kubectl_generators_run_for_real_and_join_the_world(session: Session, kubectl: str) -> None:
    run(
        session,
        "kubectl create namespace betrace\n"
        "kubectl create secret generic creds --namespace betrace --from-literal=admin-user=admin\n",
    )
    secret = session.world.find("betrace", "Secret", "creds")
    assert "betrace" in session.world.namespaces
    assert secret is not None and secret.doc["data"] == {"admin-user": "YWRtaW4="}  # real kubectl


def test_kubectl_generator_errors_are_kubectls_own(session: Session, kubectl: str) -> None:
    run(session, "kubectl create namespace betrace\n")
    with pytest.raises(
        CommandError, match=r"kubectl refuses it: error: error reading missing\.txt"
    ):
        run(session, "kubectl create secret generic s -n betrace --from-file=missing.txt\n")


def test_kubectl_dry_run_output_lands_in_the_redirect(session: Session, kubectl: str) -> None:
    run(
        session,
        "kubectl create configmap cfg --from-literal=a=b --dry-run=client -o yaml > cfg.yaml\n"
        "kubectl apply -f cfg.yaml\n",
    )
    assert "kind: ConfigMap" in (session.cwd / "cfg.yaml").read_text()
    assert session.world.find("default", "ConfigMap", "cfg") is not None  # from the apply


def test_kubectl_apply_reads_a_here_document_and_validates_it(
    session: Session, kubectl: str
) -> None:
    manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: b\n"
    run(session, f"kubectl apply -f - <<'EOF'\n{manifest}EOF\n")
    assert session.world.find("default", "ConfigMap", "c") is not None
    with pytest.raises(CommandError, match=r"spex|Additional properties"):
        run(session, f"kubectl apply -f - <<EOF\n{manifest}spex: 1\nEOF\n")


_WORKER = (
    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: worker}\nspec:\n"
    "  selector: {matchLabels: {app: worker}}\n  template:\n"
    "    metadata: {labels: {app: worker}}\n    spec:\n      restartPolicy: %s\n"
    "      containers:\n        - {name: worker, image: 'busybox:1.36', imagePullPolicy: %s}\n"
)


@pytest.mark.parametrize(
    ("restart", "pull", "said"),
    [
        ("Sometimes", "Always", r'restartPolicy: Unsupported value: "Sometimes": supported '),
        (
            "OnFailure",
            "Always",
            r'restartPolicy: Unsupported value: "OnFailure": supported values: "Always"$',
        ),
        (
            "Always",
            "Sometimes",
            r'spec.template.spec.containers\[0\].imagePullPolicy: Unsupported value: "Sometimes": '
            r'supported values: "Always", "IfNotPresent", "Never"$',
        ),
    ],
    ids=["restart-unknown", "restart-not-for-a-deployment", "pull-unknown"],
)
def test_kubectl_apply_refuses_a_value_the_api_server_does_not_support(
    session: Session, kubectl: str, restart: str, pull: str, said: str
) -> None:
    """The schemas have no enums: the API server's set of values is checked besides them, and
    the refusal names the file, the object and the field, in the API server's words."""
    with pytest.raises(CommandError, match=f"^m.yaml: m.yaml Deployment/worker: .*{said}"):
        run(session, _applied(_WORKER % (restart, pull)))
    run(session, _applied(_WORKER % ("Always", "IfNotPresent")))
    assert session.world.find("default", "Deployment", "worker") is not None


_MANIFEST = (
    "cat > secret.yaml <<'YAML'\n"
    "apiVersion: v1\nkind: Secret\nmetadata: {name: key}\nstringData: {signature-key: one}\n"
    "YAML\n"
)


def test_kubectl_create_of_an_object_that_exists_is_refused(session: Session, kubectl: str) -> None:
    """`kubectl create -f` of an object made before answers AlreadyExists; the model replaced
    it, as kubectl apply would."""
    with pytest.raises(CommandError, match=r"Secret 'key' exists already .* AlreadyExists"):
        run(session, _MANIFEST + "kubectl create -f secret.yaml\nkubectl create -f secret.yaml\n")


def test_kubectl_apply_over_what_kubectl_create_made_is_refused(
    session: Session, kubectl: str
) -> None:
    """Without --save-config, kubectl create leaves no last-applied configuration: a later
    kubectl apply merges its manifest into the object (the keys it drops stay), where the model
    took the object for the manifest."""
    with pytest.raises(CommandError, match="made by kubectl create without --save-config"):
        run(session, _MANIFEST + "kubectl create -f secret.yaml\nkubectl apply -f secret.yaml\n")


@pytest.mark.parametrize(
    "make", ["kubectl apply -f secret.yaml\n", "kubectl create --save-config -f secret.yaml\n"]
)
def test_kubectl_apply_replaces_what_kubectl_apply_made(
    session: Session, kubectl: str, make: str
) -> None:
    """Applied again, an object kubectl apply (or create --save-config) made is the manifest:
    a key the new one drops is gone."""
    other = _MANIFEST.replace("signature-key: one", "other: two")
    run(session, _MANIFEST + make + other + "kubectl apply -f secret.yaml\n")
    secret = session.world.find("default", "Secret", "key")
    assert secret is not None and secret.doc["stringData"] == {"other": "two"}
    assert [o.name for o in session.world.objects] == ["key"]


# -- shell and curl ---------------------------------------------------------------------------


def test_quoted_here_documents_are_read() -> None:
    for delimiter in ("'EOF'", '"EOF"', "\\EOF", "-'EOF'"):
        commands = split(f"echo a\ncat > f <<{delimiter}\nx $y\nEOF\necho b\n")
        assert [c.line for c in commands] == [1, 2, 5], delimiter
        assert commands[1].text == f"cat > f <<{delimiter}\nx $y\nEOF", delimiter


def test_unclosed_here_document_is_reported_at_its_opening_line() -> None:
    with pytest.raises(SplitError) as caught:
        split("echo a\ncat > f <<'EOF'\nx\ny\n")
    assert caught.value.line == 2 and "never closed" in caught.value.reason


@pytest.mark.parametrize(
    ("script", "line", "said"),
    [
        ("echo ok\nif then\n", 2, "unexpected token 'then'"),
        ("echo a\n\n\n\necho b\necho c | | d\necho e\n", 6, "unexpected token '|'"),
        ('echo ok\necho "unclosed\n', 2, "unexpected EOF while looking for matching"),
        ("echo ok; if then\n", 1, "unexpected token 'then'"),
        ("if then\necho ok\n", 1, "unexpected token 'then'"),
    ],
)  # fmt: skip
def test_a_parse_error_is_reported_at_its_own_line(script: str, line: int, said: str) -> None:
    """bashlex counts an error's position from the line it was reading: taken as a position
    in the script, the first three were reported at line 1."""
    with pytest.raises(SplitError) as caught:
        split(script)
    assert (caught.value.line, said in caught.value.reason) == (line, True), caught.value
    with pytest.raises(SplitError) as shifted:  # a console step's line shift applies too
        split(script, first_line=10)
    assert shifted.value.line == line + 9


def test_curl_option_values_are_not_read_as_urls() -> None:
    argv = ["curl", "--noproxy", "*", "-fsS", "https://example.com/"]
    inv = SimpleNamespace(
        argv=argv,
        command=SimpleNamespace(argv=argv),
        session=SimpleNamespace(world=World(), release=load_release_data()),
    )
    # an off-machine URL, no path of the backend's: nothing to check; '*' is --noproxy's value
    curl(inv)
    inv.argv = inv.command.argv = ["curl", "--noproxy", "*"]
    with pytest.raises(CommandError, match="no URL"):
        curl(inv)


@pytest.mark.parametrize("host", ["127.1", "0", "localhost.", "[0:0:0:0:0:0:0:1]"])
def test_curl_to_loopback_written_otherwise_is_checked(host: str) -> None:
    """Other spellings of this machine skipped every check as if they were off the machine."""
    with pytest.raises(CommandError, match="serves no /v1/nothing"):
        _curl_at_backend("-fsS", f"http://{host}:PORT/v1/nothing")


def test_curl_to_a_url_it_cannot_read_names_the_url() -> None:
    with pytest.raises(CommandError, match=r"'http://\[::1/v1/health' is not a URL curl can read"):
        _curl_at_backend("-fsS", "http://[::1/v1/health")


def test_curl_to_a_port_that_is_not_a_number_says_so() -> None:
    """Read as a number by urllib, the port raised ValueError, which the gate reported as a
    fault of its own instead of the page's mistake."""
    with pytest.raises(CommandError, match=r"'http://localhost:abc/v1/health': the port is not a"):
        _curl_at_backend("-fsS", "http://localhost:abc/v1/health")


def _inv(argv: list[str], session: object) -> SimpleNamespace:
    """An invocation of a model as the session makes one: its words, also as written."""
    return SimpleNamespace(argv=argv, command=SimpleNamespace(argv=argv), session=session)


def _curl_at_backend(*args: str) -> str | None:
    """curl's model on a command line, with the backend answering on its HTTP port."""
    release = load_release_data()
    port = release.current.backend.ports["http"].port
    world = World()
    world.listeners[port] = Listener(
        port, "backend", port, "compose service backend", role="backend"
    )
    session = SimpleNamespace(world=world, release=release, live=None)
    argv = ["curl", *(a.replace("PORT", str(port)) for a in args)]
    return curl(_inv(argv, session))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-X", "PUT", "https://betrace-api.example.com/v1/violations"],
         "the backend serves /v1/violations with GET, not PUT"),
        (["https://betrace-api.example.com/v1/violations?rule_name=x"],
         "no query parameter 'rule_name'"),
        (["--json", '{"name": "x", "expr": "when { a } always { b }"}',
          "https://betrace-api.example.com/v1/rules"], "no field 'expr'"),
    ],
)  # fmt: skip
def test_a_backend_path_on_the_reader_s_own_host_is_checked_as_the_backend_s(
    args: list[str], message: str
) -> None:
    """A review passed these calls to an ingress host: the model checked nothing off this
    machine. A path the backend serves is now the backend's, behind the reader's ingress."""
    with pytest.raises(CommandError, match=re.escape(message)):
        _curl_at_backend(*args)


def test_another_service_s_path_on_the_reader_s_host_is_left_alone() -> None:
    assert _curl_at_backend("--json", "{}", "https://otel.example.com/v1/traces") is None
    assert _curl_at_backend("https://betrace-api.example.com/v1/health") is None
    # paths other services share with the backend (the review's cases)
    assert _curl_at_backend("-X", "POST", "https://prometheus.example.com/metrics") is None
    assert _curl_at_backend("https://otel.example.com:13133/v1/health?verbose=1") is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-fsW", "http://localhost:PORT/v1/health"], "curl has no option '-W'"),
        (["--jsn", "{}", "http://localhost:PORT/v1/rules"], "curl has no option '--jsn'"),
        (["-X", "DELETE", "http://localhost:PORT/v1/health"], "with GET, not DELETE"),
        # a short option's value may follow it in the same argument, after other options too
        (["-XDELETE", "http://localhost:PORT/v1/health"], "with GET, not DELETE"),
        (["-fsSXDELETE", "http://localhost:PORT/v1/health"], "with GET, not DELETE"),
        (["--request=PUT", "http://localhost:PORT/v1/health"], "with GET, not PUT"),
        (["-d", "x", "http://localhost:PORT/v1/health"], "with GET, not POST"),
        (["--json", "{bad", "http://localhost:PORT/v1/rules"], "request body is not JSON"),
        (["-H", "content-type: application/json", "http://localhost:PORT/v1/rules", "-d"],
         "request body is not JSON: Expecting value"),
        (["-H", "Content-Type: application/json", "--data-raw", '{"nme": "r"}',
          "http://localhost:PORT/v1/rules"], "no field 'nme'"),
        # span attributes map names to strings (the probe attribute-values: a number is 400)
        (["--json", '{"spans": [{"traceId": "t", "spanId": "s", "name": "n", "attributes": '
          '{"ok": "yes", "amount": 1500}}]}', "http://localhost:PORT/v1/spans"],
         "POST /v1/spans spans[0]: 'attributes' maps names to JSON strings, and 'amount' is "
         "1500: the backend refuses the whole request (400)"),
    ],
)  # fmt: skip
def test_curl_reads_its_options_as_curl_does(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=re.escape(message)):
        _curl_at_backend(*args)


def _curl_through_grafana(*args: str) -> str | None:
    """curl's model with Grafana answering on 3000 (the app's proxy routes: the patched
    plugin.json, read from upstream's manifest and the patch series)."""
    release = load_release_data()
    world = World()
    world.listeners[3000] = Listener(
        3000, "grafana", 3000, "kubectl port-forward svc/grafana", role="grafana"
    )
    session = SimpleNamespace(world=world, release=release, live=None)
    return curl(_inv(["curl", "-fsS", "-u", "admin", *args], session))


def test_a_call_through_the_apps_proxy_route_reaches_a_backend_endpoint() -> None:
    app = load_release_data().current.plugin.id
    base = f"http://localhost:3000/api/plugin-proxy/{app}"
    _curl_through_grafana(f"{base}/backend/v1/health")
    _curl_through_grafana("-X", "DELETE", f"{base}/backend/v1/rules/r")  # the route for Editors
    with pytest.raises(CommandError, match=r"to the backend's /v1/helth .*did you mean"):
        _curl_through_grafana(f"{base}/backend/v1/helth")
    with pytest.raises(CommandError, match=r"404 'plugin route match not found'.*GET backend/\*"):
        _curl_through_grafana(f"{base}/api/v1/health")  # the app's routes start with backend/
    with pytest.raises(CommandError, match="404 'plugin route match not found'"):
        _curl_through_grafana(f"{base}/backend")  # backend/* needs something below it
    with pytest.raises(CommandError, match=f"no app 'betrace'.*the app's id is {app}"):
        _curl_through_grafana("http://localhost:3000/api/plugin-proxy/betrace/backend/v1/health")
    # what the backend gets is checked as a direct call is: its query, its body
    with pytest.raises(CommandError, match="no query parameter 'rule_name'"):
        _curl_through_grafana(f"{base}/backend/v1/violations?rule_name=x")
    with pytest.raises(CommandError, match="no field 'expresion'"):
        _curl_through_grafana(
            "-X", "POST", "--json", '{"name": "a", "expresion": "x"}', f"{base}/backend/v1/rules"
        )


def test_a_call_through_the_apps_proxy_route_needs_a_signed_in_user() -> None:
    app = load_release_data().current.plugin.id
    url = f"http://localhost:3000/api/plugin-proxy/{app}/backend/v1/health"
    release = load_release_data()
    world = World()
    world.listeners[3000] = Listener(
        3000, "grafana", 3000, "kubectl port-forward svc/grafana", role="grafana"
    )
    session = SimpleNamespace(world=world, release=release, live=None)
    with pytest.raises(CommandError, match="Grafana answers 401"):
        curl(_inv(["curl", "-fsS", url], session))
    curl(_inv(["curl", "-fsS", "-H", "Authorization: Bearer t", url], session))
    # -u's value in the same argument, alone or after other options, as curl reads it
    for signed_in in (["-uadmin"], ["-fsSuadmin"], ["--user", "admin"], ["--user=admin:$PW"]):
        curl(_inv(["curl", *signed_in, url], session))
    # a password written into the page is no Grafana's of these guides
    # (the review found a literal password after a variable user, and one in the URL, passing)
    written_url = url.replace("http://", "http://admin:admin@")
    for written in (
        ["-u", "admin:admin"],
        ["--user='admin:p'"],
        ["-fsSuadmin:secret"],
        ["-u", '"$GRAFANA_USER:admin"'],
    ):
        with pytest.raises(CommandError, match="with a password written into the page"):
            curl(_inv(["curl", *written, url], session))
    with pytest.raises(CommandError, match="with a password written into the page"):
        curl(_inv(["curl", "-fsS", written_url], session))
    # the review found one typed into a variable first, and one in a Basic header, passing
    world.typed_variables["CREDS"] = "admin:admin"
    basic = "Authorization: Basic " + base64.b64encode(b"admin:admin").decode()
    for written in (["-u", '"$CREDS"'], ["-u", "${CREDS}"], ["-H", basic]):
        with pytest.raises(CommandError, match=r"written into the page \(admin:admin\)"):
            curl(_inv(["curl", *written, url], session))
    # the review of that: through printf and base64, in single quotes
    world.typed_variables["AUTH"] = "$(printf admin:admin | base64)"
    for written in (
        ["-H", '"Authorization: Basic $(printf admin:admin | base64)"'],
        ["-H", "\"Authorization: Basic $(echo -n 'admin:admin' | base64)\""],
        ["-H", '"Authorization: Basic $AUTH"'],
        ["-u", "'admin:$ecret'"],
        # and through printf's format, with the password as its argument (the last reviews)
        ["-H", "\"Authorization: Basic $(printf 'admin:%s' 'hunter2' | base64)\""],
        ["-H", "\"Authorization: Basic $(printf '%s:%s' admin hunter2 | base64)\""],
        ["-H", "\"Authorization: Basic $(printf -- 'admin:%.7s' hunter2 | base64)\""],
        ["-H", "\"Authorization: Basic $(printf '%b' 'admin:hunter2\\n' | base64)\""],
        ["-H", "\"Authorization: Basic $(printf '%s' admin:hunter2 '' | base64)\""],
        ["-H", "\"Authorization: Basic $(printf 'admin:%d' 7 | base64)\""],  # not modelled
    ):
        with pytest.raises(CommandError, match="with a password written into the page"):
            curl(_inv(["curl", *written, url], session))
    world.typed_variables.clear()  # the reader's own value: the page did not type it
    for reader_s in (
        ["-u", '"$CREDS"'],
        ["-H", "Authorization: Basic $TOKEN"],
        ["-H", 'Authorization: Basic $(printf \'%s:%s\' "$U" "$P" | base64)'],
        ["-u", "'admin:'$PW'x'"],  # quoted parts around a variable the shell expands
    ):
        curl(_inv(["curl", *reader_s, url], session))


FORMAT_PIECES = ["admin", ":", "%s", "%b", "%c", "%%", "%.3s", "%-4s", "%5s", "%*s", "%.*s"]
FORMAT_PIECES += ["%-*s", "%.s", "%05s", "%'s", "\\n", "\\t", "\\072", "\\0072", "\\x3a"]
FORMAT_PIECES += ["\\u003a", "\\U0001F600", "\\c", "\\?", "\\e", "\\8", "|"]
ARGUMENTS = ["pw", "hunter2", "", "a\\tb", "x y", "3", "-2", "+4", "abc", "é", "a\\cb", "\\072"]
ARGUMENTS += ["\\0072", "\\x3az", "\\", "\\0", "\\01234"]


def test_a_printf_the_model_does_not_cover_gives_its_words() -> None:
    """A conversion other than %s, %b and %c, a `%` that starts none, or a width written longer
    than the output is kept: the words joined (the page's text all the same), never an error,
    also for digits past what Python turns into a number (the review's crash)."""
    assert printed(["admin:%d", "7"]) == "admin:%d 7"
    assert printed(["admin:pw%"]) == "admin:pw%"
    assert printed(["%" + "9" * 5000 + "s", "x"]).endswith("s x")


@given(
    st.booleans(),
    st.lists(st.sampled_from(FORMAT_PIECES), min_size=1, max_size=6),
    st.lists(st.sampled_from(ARGUMENTS), max_size=5),
)
@settings(max_examples=150, deadline=None)
def test_printf_is_modelled_as_bash_prints(
    dashes: bool, pieces: list[str], args: list[str]
) -> None:
    """gate/printf.py, which the written-password check reads a `$(printf ... | base64)` with,
    against bash's own printf (run here): `--`, the escapes of the format and of `%b` (`\\c`
    ending all output), `%s`, `%b`, `%c`, `%%`, widths and precisions written or taken (`*`),
    and the format used again while words remain."""
    words = [*(["--"] if dashes else []), "".join(pieces), *args]
    bash = subprocess.run(
        ["bash", "-c", 'printf "$@"', "printf", *words], capture_output=True, check=False
    )
    assert printed(words) == bash.stdout.decode("utf-8", errors="surrogateescape")


def test_the_page_s_typed_variables_are_known_by_how_they_were_written(session: Session) -> None:
    """A value typed into the page is the page's (World.typed_variables); one the shell expands
    is the reader's, and a later expanded assignment takes the name back."""
    run(session, 'A=one\nB="$A"\nexport C=\'three\' D="$(printf four)"\nA=$(pwd)\n')
    assert session.world.typed_variables == {"B": "one", "C": "three"}
    # the review: through a typed variable, in single quotes, a printf of the page's text
    run(session, "PW=hunter2\nCREDS=\"admin:$PW\"\nQ='a$b'\nAUTH=$(printf admin:x | base64)\n")
    typed = session.world.typed_variables
    assert typed["CREDS"] == "admin:hunter2" and typed["Q"] == "a$b"
    assert typed["AUTH"] == "$(printf admin:x | base64)"


def test_curl_checks_a_body_only_when_it_is_sent_as_json() -> None:
    url = "http://localhost:PORT/v1/rules"
    assert _curl_at_backend("-d", "{bad", url) is None
    assert _curl_at_backend("-H", "Content-Type: text/plain", "-d", "{bad", url) is None
    assert _curl_at_backend("-H", "Accept: application/json", "-d", "{bad", url) is None


def test_a_pipeline_fails_when_any_member_fails(session: Session) -> None:
    run(session, "printf 'a\\nb\\n' | wc -l\n")
    with pytest.raises(CommandError, match="exit code"):
        run(session, "cat no-such-file.txt | wc -l\n")  # wc succeeds; cat's failure counts


# -- console transcripts --------------------------------------------------------------------


def test_console_steps_and_output_comparison() -> None:
    from betrace_dist.gate.checkers import CheckFailure
    from betrace_dist.gate.checkers.shell import compare, steps

    found = steps("$ printf 'a\\nb\\n' \\\n    | head -1\na\n$ cd /tmp\n")
    assert [(s.line, s.output, s.output_line) for s in found] == [(1, ["a"], 3), (4, None, 5)]
    assert found[0].script.startswith("printf") and found[1].script == "cd /tmp\n"
    compare(found[0], "a\n")
    with pytest.raises(CheckFailure, match="shows 'a' as output, but the command printed 'b'") as e:
        compare(found[0], "b\n")
    assert e.value.body_line == 3


def test_a_model_that_returns_output_has_it_compared(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    """The hook a live backend uses: a model returning what the command printed."""
    from betrace_dist.gate.checkers import CheckFailure, Context, shell
    from betrace_dist.gate.lexer import blocks

    ctx = Context(page=tmp_path, site_root=tmp_path)  # type: ignore[arg-type]
    checker = shell.ShellChecker(table={"greet": lambda inv: "hello\n"})
    (good,) = blocks("```console\n$ greet\nhello\n```\n")
    (bad,) = blocks("```console\n$ greet\ngoodbye\n```\n")
    try:
        assert checker.plan(good) == (
            "modelled",
            "checked against a model of 'greet'; the output shown is not compared",
        )  # statically the ledger cannot know a model will answer: it says less, never more
        checker.check(good, ctx)
        with pytest.raises(CheckFailure, match="printed 'hello'"):
            checker.check(bad, ctx)
    finally:
        ctx.state["session"].close()


@pytest.mark.parametrize(
    ("body", "message", "line"),
    [
        ("```console\nhello\n```\n",
         "a console block needs at least one command line starting with '$ '", None),
        ("```bash\necho a\necho b\nif then\n```\n",
         "shell syntax error: syntax error near unexpected token `then'", 3),
        ("```bash\necho a\necho $1\ncat $2\n```\n",
         "ShellCheck SC2086 (info): Double quote to prevent globbing and word splitting. "
         "(+1 more)", 2),
        ("```console\n$ python3 x.py\nout\n```\n",
         "the output shown cannot be compared: a command's model gave no output", 1),
    ],
)  # fmt: skip
def test_a_shell_block_fails_at_the_first_check_it_breaks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, body: str, message: str, line: int | None
) -> None:
    """Checks in order: a console block's commands, bash -n, ShellCheck, then running it."""
    from betrace_dist.gate.checkers import CheckFailure, Context, shell
    from betrace_dist.gate.lexer import blocks

    require_tool("shellcheck")
    checker = shell.ShellChecker(table={"python3": lambda inv: None, "greet": lambda inv: None})
    ctx = Context(page=tmp_path, site_root=tmp_path)
    (block,) = blocks(body)
    try:
        with pytest.raises(CheckFailure) as caught:
            checker.check(block, ctx)
        assert (caught.value.reason, caught.value.body_line) == (message, line)
        # a model's command may show output it cannot give: reported "modelled", not failed
        (modelled,) = blocks("```console\n$ greet\nhello\n```\n")
        checker.check(modelled, ctx)
    finally:
        if "session" in ctx.state:
            ctx.state["session"].close()


def test_no_block_runs_once_the_page_s_time_is_up(tmp_path: Path) -> None:
    """The attack found a page of 220 content tabs over 90,000 files using 575 s of the gate's
    own work (each tab's restore), which the jail's deadline, checked per command, never saw.
    Once the page's time is up, no further block runs, whatever it would make the gate do."""
    from betrace_dist.gate.checkers import CheckFailure, Context, shell
    from betrace_dist.gate.lexer import blocks

    ctx = Context(page=tmp_path, site_root=tmp_path)
    ctx.state["session"] = Session(page_timeout=0.0)
    (block,) = blocks("```bash\necho a\n```\n")
    try:
        with pytest.raises(CheckFailure, match=r"^the page used up its time limit \(0 s, the gate"):
            shell.ShellChecker().check(block, ctx)
    finally:
        ctx.state["session"].close()


def test_a_shell_block_without_shellcheck_installed_fails_saying_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from betrace_dist.gate.checkers import CheckFailure, Context, shell
    from betrace_dist.gate.lexer import blocks

    found = shell.tools.find
    monkeypatch.setattr(
        shell.tools, "find", lambda name: None if name == "shellcheck" else found(name)
    )
    (block,) = blocks("```bash\necho a\n```\n")
    with pytest.raises(CheckFailure, match=r"^ShellCheck is not installed \(pip install"):
        shell.ShellChecker().check(block, Context(page=tmp_path, site_root=tmp_path))


def test_help_texts_are_kept_between_runs_while_the_program_file_is_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A program of the test's own counts how often its help is asked for: the kept text is keyed
    by the program file's content, so a reinstalled (changed) program is asked again."""
    from betrace_dist.gate.commands import flags

    calls = tmp_path / "calls"
    program = tmp_path / "tool"
    program.write_text(f'#!/bin/sh\necho x >> {calls}\necho "  -n, --name string   a name"\n')
    program.chmod(0o755)
    monkeypatch.setattr(flags, "HELP_STORE", tmp_path / "help")

    def ask() -> frozenset[str]:
        flags.help_text.cache_clear()  # a new run: nothing in memory
        flags.options.cache_clear()
        return flags.options(str(program), "sub").valued

    assert ask() == {"-n", "--name"}
    assert ask() == {"-n", "--name"}
    assert len(calls.read_text().splitlines()) == 1  # the second run read the kept text
    program.write_text(program.read_text() + "# reinstalled\n")
    assert ask() == {"-n", "--name"}
    assert len(calls.read_text().splitlines()) == 2  # another program file: asked again
    os.utime(program, ns=(1, 1))  # same content, another time stamp: still the kept text
    assert ask() == {"-n", "--name"}
    assert len(calls.read_text().splitlines()) == 2
    monkeypatch.setattr(flags, "HELP_STORE", None)
    ask()
    assert len(calls.read_text().splitlines()) == 3  # no store: always asked
    flags.help_text.cache_clear()
    flags.options.cache_clear()


# -- helm install of the third-party Grafana chart (modelled) -----------------------------------


def _grafana_repo(session: Session) -> str:
    chart = session.release.current.grafana_chart
    return f"helm repo add {chart.repo_name} {chart.repo_url}\n"


def test_helm_install_of_a_repository_not_added_is_refused(session: Session) -> None:
    with pytest.raises(
        CommandError, match=r"no Helm repository 'grafana' was added earlier on this page"
    ):
        run(session, "helm install grafana grafana/grafana\n")


def test_helm_install_of_an_unmodelled_chart_is_refused(session: Session) -> None:
    chart = session.release.current.grafana_chart
    with pytest.raises(CommandError, match=rf"'{chart.repo_name}/loki' cannot be checked offline"):
        run(session, _grafana_repo(session) + f"helm install loki {chart.repo_name}/loki\n")


def test_helm_install_of_another_chart_version_is_refused(session: Session) -> None:
    chart = session.release.current.grafana_chart
    with pytest.raises(CommandError, match=rf"checked against .*{chart.version}, not 0\.0\.1$"):
        run(
            session,
            _grafana_repo(session)
            + f"helm install grafana {chart.repo_name}/grafana --version 0.0.1\n",
        )


def test_helm_install_with_an_unknown_set_key_is_refused(session: Session) -> None:
    chart = session.release.current.grafana_chart
    with pytest.raises(CommandError, match=r"^--set service\.prot=80: "):
        run(
            session,
            _grafana_repo(session)
            + f"helm install grafana {chart.repo_name}/grafana --set service.prot=80\n",
        )


def test_helm_install_with_a_values_alias_bomb_is_refused(session: Session) -> None:
    chart = session.release.current.grafana_chart
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{n}: &{n} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, n in zip("abcdefgh", "bcdefghi", strict=True)
    )
    (session.cwd / "v.yaml").write_text(bomb, encoding="utf-8")
    with pytest.raises(CommandError, match=r"v\.yaml:\d+: YAML refused: the document"):
        run(
            session,
            _grafana_repo(session) + f"helm install grafana {chart.repo_name}/grafana -f v.yaml\n",
        )


def test_helm_install_with_an_unknown_values_key_is_refused(session: Session) -> None:
    chart = session.release.current.grafana_chart
    (session.cwd / "v.yaml").write_text("adminUser: a\nadminPasword: x\n", encoding="utf-8")
    with pytest.raises(CommandError, match=r"^v\.yaml:2: .*adminPasword"):
        run(
            session,
            _grafana_repo(session) + f"helm install grafana {chart.repo_name}/grafana -f v.yaml\n",
        )


@pytest.mark.parametrize(
    "flags",
    [
        "--set admin.existingSecret=grafana-admn",
        "--set-string admin.existingSecret=grafana-admn",
        '--set-json admin=\'{"existingSecret": "grafana-admn"}\'',
        "--set admin.existingSecret=grafana-admin --set admin.existingSecret=grafana-admn",
    ],
)
def test_set_values_of_the_grafana_chart_count_over_the_files(session: Session, flags: str) -> None:
    """--set overrides -f (Helm's MergeValues): a Secret named only by --set was checked as a
    key and its value dropped, so the pod's missing Secret went unseen."""
    chart = session.release.current.grafana_chart
    (session.cwd / "v.yaml").write_text("admin:\n  existingSecret: grafana-admin\n", "utf-8")
    admin = (
        "kubectl create secret generic grafana-admin -n monitoring --from-literal=admin-user=a "
        "--from-literal=admin-password=b\n"
    )
    install = f"helm install grafana {chart.repo_name}/grafana -n monitoring -f v.yaml"
    run(session, _grafana_repo(session) + "kubectl create namespace monitoring\n" + admin)
    with pytest.raises(CommandError, match="needs Secret 'grafana-admn', which neither"):
        run(session, f"{install} {flags}\n")
    run(session, f"{install} --set admin.existingSecret=grafana-admin\n")


@pytest.mark.parametrize(
    ("assignment", "flag", "merged"),
    [
        ("a.b=true", "--set", {"a": {"b": True}}),
        ("a.b=TRUE", "--set", {"a": {"b": True}}),
        ("a=0", "--set", {"a": 0}),
        ("a=012", "--set", {"a": "012"}),
        ("a=-5", "--set", {"a": -5}),
        ("a=true", "--set-string", {"a": "true"}),
        ("a={x,2}", "--set", {"a": ["x", 2]}),
        ("a\\.b.c=x", "--set", {"a.b": {"c": "x"}}),
        ("a=null", "--set", {"a": 1}),
        ("a[0]=x", "--set", {"a": 1}),
    ],
)
def test_a_set_value_is_typed_as_helm_types_it(
    assignment: str, flag: str, merged: dict[str, object]
) -> None:
    """typedVal and the key splitting of pkg/strvals/parser.go, helm v4.1.4."""
    from betrace_dist.gate.commands.helm import _set_into

    key, _, raw = assignment.partition("=")
    assert _set_into({"a": 1}, key, raw, flag) == ({"a": 1} | merged)


def test_a_set_value_nested_past_reading_is_refused_not_a_crash() -> None:
    """A page's --set-json or dotted key can nest deeper than Python recurses: a clear refusal,
    never an internal error of the gate."""
    from betrace_dist.gate.commands.helm import _set_into

    with pytest.raises(CommandError, match="nested too deep"):
        _set_into({}, "affinity", "[" * 5000 + "]" * 5000, "--set-json")
    deep = "affinity." + ".".join(["a"] * 5000)
    with pytest.raises(CommandError, match="nested too deep"):
        _set_into(_set_into({}, deep, "x", "--set"), deep, "y", "--set")


def test_helm_install_of_the_grafana_chart_models_its_objects(session: Session) -> None:
    chart = session.release.current.grafana_chart
    (session.cwd / "v.yaml").write_text(
        "fullnameOverride: dash\nservice:\n  port: 8080\nadmin:\n  existingSecret: admin\n",
        encoding="utf-8",
    )
    install = f"helm install grafana {chart.repo_name}/grafana -n monitoring -f v.yaml\n"
    run(session, _grafana_repo(session) + "kubectl create namespace monitoring\n")
    with pytest.raises(CommandError, match="needs Secret 'admin', which neither the release"):
        run(session, install)  # the chart's pod reads the admin keys of the Secret the values name
    run(
        session,
        "kubectl create secret generic admin -n monitoring --from-literal=admin-user=a "
        "--from-literal=admin-password=b\n" + install,
    )
    release = session.world.releases[("monitoring", "grafana")]
    assert release.modelled
    kinds = {(o.kind, o.name) for o in release.objects}
    assert kinds == {("Service", "dash"), ("Deployment", "dash")}  # no Secret: an existing one
    service = next(o for o in release.objects if o.kind == "Service")
    assert service.doc["spec"]["ports"] == [{"name": "service", "port": 8080, "targetPort": 3000}]


def test_kubectl_apply_over_the_modelled_grafanas_objects_is_refused(
    session: Session, kubectl: str
) -> None:
    """The modelled Grafana chart's objects had no apiVersion, so a page's manifest of its
    Deployment (apps/v1) was taken for another object and joined the world beside it."""
    chart = session.release.current.grafana_chart
    deployment = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: grafana}\nspec:\n"
        "  selector: {matchLabels: {app: g}}\n  template:\n    metadata: {labels: {app: g}}\n"
        "    spec: {containers: [{name: grafana, image: nginx:1.27}]}\n"
    )
    with pytest.raises(
        CommandError, match="Deployment 'grafana' belongs to Helm release 'grafana'"
    ):
        run(
            session,
            _grafana_repo(session)
            + f"helm install grafana {chart.repo_name}/grafana\n"
            + f"kubectl apply -f - <<'YAML'\n{deployment}YAML\n",
        )


def test_helm_install_with_a_values_file_that_is_not_yaml_names_its_line(
    session: Session,
) -> None:
    chart = session.release.current.grafana_chart
    (session.cwd / "v.yaml").write_text("service:\n  type: [ClusterIP\n", encoding="utf-8")
    with pytest.raises(CommandError, match=r"v\.yaml:\d+: .*(flow sequence|expected)"):
        run(
            session,
            _grafana_repo(session) + f"helm install grafana {chart.repo_name}/grafana -f v.yaml\n",
        )


# -- helm install and upgrade of a chart of the page's own (the real Helm) ----------------------


@pytest.fixture(scope="module")
def helm4() -> str:
    helm = require_tool("helm")
    if helm_model._major(helm) < 4:
        pytest.skip(f"{helm} is not Helm 4: the client-side dry run is Helm 4's (make tools)")
    return helm


def _chart(session: Session, **templates: str) -> str:
    """A chart written by the page in ./mychart, with the given templates; its reference."""
    root = session.cwd / "mychart"
    (root / "templates").mkdir(parents=True, exist_ok=True)
    (root / "Chart.yaml").write_text("apiVersion: v2\nname: mychart\nversion: 0.1.0\n")
    for name, text in templates.items():
        (root / "templates" / f"{name}.yaml").write_text(text, encoding="utf-8")
    return "./mychart"


_CONFIG = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: b\n"


def _deployment(container: str) -> str:
    """A Deployment named d whose one container is `container` (YAML at its list indent)."""
    return (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\nspec:\n  selector:\n"
        "    matchLabels: {app: d}\n  template:\n    metadata:\n      labels: {app: d}\n"
        f"    spec:\n      containers:\n{container}"
    )


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("helm install r\n", "helm install takes a release name and a chart, got ['r']"),
        ("helm upgrade r ./mychart\n",
         "helm upgrade: no release 'r' in namespace 'default' (no releases at all); add --install"),
        ("helm install r ./mychart\nhelm install r ./mychart\n",
         "helm install: release 'r' already exists in 'default'; use helm upgrade"),
        ("helm install r ./mychart -n nowhere\n", "namespace 'nowhere' does not exist yet"),
        ("helm install r ./mychart --craete-namespace\n",
         "helm install has no flag '--craete-namespace'"),
    ],
)  # fmt: skip
def test_helm_install_and_upgrade_check_the_release_first(
    session: Session, helm4: str, script: str, message: str
) -> None:
    _chart(session, config=_CONFIG)
    with pytest.raises(CommandError, match=re.escape(message)):
        run(session, script)


def test_helm_upgrade_counts_revisions_and_install_makes_the_first(
    session: Session, helm4: str
) -> None:
    _chart(session, config=_CONFIG)
    run(session, "helm upgrade --install r ./mychart\n")
    assert session.world.releases[("default", "r")].revision == 1
    run(session, "helm upgrade r ./mychart\nhelm upgrade r ./mychart\n")
    release = session.world.releases[("default", "r")]
    assert release.revision == 3 and [(o.kind, o.name) for o in release.objects] == [
        ("ConfigMap", "c")
    ]


def test_helm_install_is_dry_run_by_helm_4_and_upgrade_only_rendered(
    session: Session, helm4: str
) -> None:
    _chart(session, broken='{{ fail "the chart refuses" }}\n')
    with pytest.raises(CommandError, match=r"^Helm 4 rejects it: .*the chart refuses"):
        run(session, "helm install r ./mychart\n")
    with pytest.raises(CommandError, match=r"^Helm rejects it: .*the chart refuses"):
        run(session, "helm upgrade --install r ./mychart\n")


def test_helm_install_checks_the_backend_variables_it_renders(session: Session, helm4: str) -> None:
    image = f"{session.release.project.registry}/backend:1"
    env = '        env:\n        - {name: OTEL_EXPORTER_OTLP_ENDPOINT, value: "http://c:4317"}\n'
    _chart(session, backend=_deployment(f"      - name: backend\n        image: {image}\n{env}"))
    with pytest.raises(
        CommandError,
        match=r"^the release would give the backend Deployment/d container backend: "
        r"OTEL_EXPORTER_OTLP_ENDPOINT is 'http://c:4317': the backend wants host:port",
    ):
        run(session, "helm install r ./mychart\n")


@pytest.mark.parametrize(
    ("container", "message"),
    [
        ("        envFrom:\n        - secretRef: {name: s}\n",
         "Deployment 'd' needs Secret 's', which neither the release nor an earlier step "
         "creates in namespace 'default'"),
        ("        env:\n        - name: X\n          valueFrom:\n"
         "            configMapKeyRef: {name: c, key: nope}\n",
         "Deployment 'd' reads key 'nope' of ConfigMap 'c', which has only: a"),
    ],
)  # fmt: skip
def test_helm_install_needs_what_its_pods_reference(
    session: Session, helm4: str, container: str, message: str
) -> None:
    pod = _deployment(f"      - name: app\n        image: app:1\n{container}")
    _chart(session, config=_CONFIG, app=pod)
    with pytest.raises(CommandError, match=re.escape(message)):
        run(session, "helm install r ./mychart\n")


def test_references_of_a_pod_are_its_volumes_then_each_containers_env() -> None:
    pod = {
        "volumes": [
            {"name": "a", "secret": {"secretName": "vs"}},
            {"name": "b", "configMap": {"name": "vc"}},
            {"name": "c", "persistentVolumeClaim": {"claimName": "pvc"}},
        ],
        "containers": [
            {
                "env": [
                    {"name": "A", "valueFrom": {"secretKeyRef": {"name": "es", "key": "k"}}},
                    {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "ec", "key": "j"}}},
                    {"name": "C", "valueFrom": {"secretKeyRef": {"name": "o", "optional": True}}},
                    {"name": "D", "value": "literal"},
                ],
                "envFrom": [
                    {"configMapRef": {"name": "fc"}},
                    {"secretRef": {"name": "fs"}},
                    {"secretRef": {"name": "fo", "optional": True}},
                ],
            }
        ],
        "initContainers": [{"envFrom": [{"secretRef": {"name": "init"}}]}],
    }
    assert pod_references(pod) == [
        ("Secret", "vs", ""),
        ("ConfigMap", "vc", ""),
        ("PersistentVolumeClaim", "pvc", ""),
        ("Secret", "init", ""),
        ("Secret", "es", "k"),
        ("ConfigMap", "ec", "j"),
        ("ConfigMap", "fc", ""),
        ("Secret", "fs", ""),
    ]


#: A block of chained assignments: ShellCheck needs about 0.7 GB for 500 of them.
MEMORY_HOG = "\n".join(["v0=x", *(f"v{i}=$v{i - 1}x" for i in range(1, 500))]) + "\n"


def test_shellcheck_out_of_its_memory_fails_the_block_never_passes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ShellCheck runs with the gate's rights, so within CHECK_MEMORY; one that ran out of it
    printed nothing, which once read as "no comments" and passed the block."""
    from betrace_dist.gate.checkers import CheckFailure, shell

    require_tool("shellcheck")
    monkeypatch.setattr(tools, "CHECK_MEMORY", 256 * 1024 * 1024)
    with pytest.raises(CheckFailure, match=r"^ShellCheck could not check this block: .*memory"):
        shell._check_shellcheck("bash", MEMORY_HOG + "# out-of-memory case\n")
    monkeypatch.setattr(tools, "CHECK_MEMORY", 2 * 1024 * 1024 * 1024)
    with pytest.raises(CheckFailure, match=r"^ShellCheck SC2034"):  # with room: its comments
        shell._check_shellcheck("bash", MEMORY_HOG + "# enough-memory case\n")


def test_bash_n_that_fails_for_want_of_memory_is_not_a_syntax_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from betrace_dist.gate.checkers import CheckFailure, shell

    monkeypatch.setattr(tools, "CHECK_MEMORY", 2 * 1024 * 1024)  # bash cannot even start
    with pytest.raises(CheckFailure, match=r"^bash -n could not check this block"):
        shell._check_syntax("echo small-memory-case\n")


def test_a_check_past_its_time_is_a_failure_that_says_so() -> None:
    """Not a traceback: the block fails with what ran out (sleep 30 never ends in 0.5 s)."""
    from betrace_dist.gate.checkers import CheckFailure, shell

    with pytest.raises(CheckFailure, match=r"^sleep did not finish within 0.5 s on this block$"):
        shell._limited(["sleep", "30"], "", 0.5)


def test_a_page_whose_shell_checks_used_up_their_time_is_stopped_there(tmp_path: Path) -> None:
    """The gate's own share of a page is bounded too: past PAGE_CHECK_SECONDS of bash -n and
    ShellCheck, a block fails instead of being checked."""
    from betrace_dist.gate.checkers import CheckFailure, Context, shell
    from betrace_dist.gate.lexer import blocks

    (block,) = blocks("```bash\necho page-budget-case\n```\n")
    ctx = Context(page=tmp_path / "p.md", site_root=tmp_path)
    ctx.state["shell_check_seconds"] = shell.PAGE_CHECK_SECONDS + 1
    with pytest.raises(CheckFailure, match=r"used up their 120 s; later blocks were not checked"):
        shell.ShellChecker().check(block, ctx)
    fresh = Context(page=tmp_path / "q.md", site_root=tmp_path)
    shell._checked_in_time(fresh.state, "echo page-budget-case\n", "bash")
    assert 0 < fresh.state["shell_check_seconds"] < shell.PAGE_CHECK_SECONDS  # it is counted


def test_a_render_too_big_to_load_is_refused(session: Session, helm4: str) -> None:
    """The render of a page's own chart is parsed by the gate itself: three template lines that
    render one document of megabytes (about 800 MB of the gate's memory per such render, kept
    for the whole run) are refused as any YAML the project reads is."""
    big = _CONFIG.replace("data:\n  a: b\n", 'data:\n  a: "{{ repeat 1100000 "ab" }}"\n')
    _chart(session, big=big)
    with pytest.raises(CommandError, match="YAML refused: the document is 2,200,"):
        run(session, "helm upgrade --install r ./mychart\n")


def test_an_optional_configmap_mount_of_the_grafana_chart_may_be_missing(
    session: Session,
) -> None:
    """The chart writes `optional:` into the volume (templates/_pod.tpl); Kubernetes then starts
    the pod without the ConfigMap, so only the mount that is not optional is refused."""
    chart = session.release.current.grafana_chart
    mount = "extraConfigmapMounts:\n  - {name: x, configMap: absent, mountPath: /x%s}\n"
    install = f"helm install grafana {chart.repo_name}/grafana -n monitoring -f v.yaml\n"
    run(session, _grafana_repo(session) + "kubectl create namespace monitoring\n")
    (session.cwd / "v.yaml").write_text(mount % "", encoding="utf-8")
    with pytest.raises(CommandError, match="needs ConfigMap 'absent'"):
        run(session, install)
    (session.cwd / "v.yaml").write_text(mount % ", optional: true", encoding="utf-8")
    run(session, install)


def test_kubectl_delete_refuses_what_a_remaining_workload_still_uses(session: Session) -> None:
    """A claim and the Job that mounts it go together (one -f file, or both named); a ConfigMap
    still mounted is refused whichever way the kinds are written."""
    manifest = """\
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cm}
data: {a: b}
---
apiVersion: batch/v1
kind: Job
metadata: {name: load}
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: c
          image: busybox:1.36
          volumeMounts: [{name: d, mountPath: /d}, {name: c, mountPath: /c}]
      volumes:
        - {name: d, persistentVolumeClaim: {claimName: data}}
        - {name: c, configMap: {name: cm}}
"""
    (session.cwd / "m.yaml").write_text(manifest, encoding="utf-8")
    run(session, "kubectl create namespace x\nkubectl apply -f m.yaml -n x\n")
    for words in ("pvc/data", "configmap cm", "pvc data", "cm/cm"):
        with pytest.raises(CommandError, match=r"Job 'load' .* still uses"):
            run(session, f"kubectl delete {words} -n x\n")
    with pytest.raises(CommandError, match="no Secret 'cm'"):  # each kind is looked up by name
        run(session, "kubectl delete configmap,secret cm -n x\n")
    run(session, "kubectl delete pvc/data job/load -n x\n")  # together: nothing is left using it
    run(session, "kubectl apply -f m.yaml -n x\nkubectl delete -f m.yaml -n x\n")


def test_a_wait_for_a_condition_a_job_never_has_times_out(session: Session) -> None:
    """A Job's conditions are Suspended, Complete, Failed, FailureTarget and
    SuccessCriteriaMet (JobConditionType, k8s.io/api v0.35.0 batch/v1): a wait for Ready on
    one waits until its --timeout and fails; for complete it returns once the pod has run."""
    manifest = (
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: load}\nspec:\n  template:\n"
        "    spec:\n      restartPolicy: Never\n"
        "      containers: [{name: c, image: busybox:1.36}]\n"
    )
    (session.cwd / "job.yaml").write_text(manifest, encoding="utf-8")
    run(session, "kubectl create namespace x\nkubectl apply -f job.yaml -n x\n")
    with pytest.raises(CommandError, match=r"Job 'load' never has a condition 'ready' .*"
                       r"wait with condition=complete"):  # fmt: skip
        run(session, "kubectl wait --for=condition=Ready job/load -n x --timeout=5m\n")
    run(session, "kubectl wait --for=condition=complete job/load -n x --timeout=5m\n")


def test_a_templated_admin_secret_of_the_grafana_chart_is_not_guessed(session: Session) -> None:
    """The chart resolves `admin.existingSecret` with tpl; the gate does not, so it neither
    invents the chart's own Secret nor refuses the page."""
    chart = session.release.current.grafana_chart
    (session.cwd / "v.yaml").write_text(
        'admin:\n  existingSecret: "{{ .Release.Name }}-admin"\n', encoding="utf-8"
    )
    run(
        session,
        _grafana_repo(session)
        + f"helm install grafana {chart.repo_name}/grafana -n monitoring --create-namespace "
        "-f v.yaml\n",
    )


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("http://backend:12011", None),
        ("http://grafana:3000", "the service 'grafana' does not run the backend of this release"),
        ("http://backnd:12011", "did you mean 'backend'?"),
        ("http://backend:12012", "the backend service listens on 12011, not 12012"),
        ("http://backend:12011 port=abc", "BETRACE_PORT_BACKEND is 'abc', not a port"),
    ],
)
def test_a_started_projects_backend_url_names_the_backend_service(
    url: str, said: str | None
) -> None:
    from betrace_dist.gate.commands.compose import _stack_problem

    url, _, port = url.partition(" port=")  # a backend port variable the page set, if any
    data = load_release_data()
    image = f"{data.project.registry}/backend:{data.current.version}"
    net = {"default": None}
    services = {  # grafana checked before the backend
        "grafana": {"environment": {"BETRACE_BACKEND_URL": url}, "networks": net},
        "backend": {
            "image": image,
            "environment": {"BETRACE_PORT_BACKEND": port} if port else {},
            "networks": net,
        },
    }
    found = _stack_problem(services, data)
    assert (found is None) if said is None else (said in str(found)), found


#: what Pod Security "restricted" asks of a container (the Grafana model holds init
#: containers to it)
RESTRICTED = (
    "securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}, "
    "seccompProfile: {type: RuntimeDefault}, runAsNonRoot: true, runAsUser: 472}"
)


def test_a_grafana_init_container_that_cannot_start_fails_a_wait(session: Session) -> None:
    """The chart writes extraInitContainers into Grafana's pod as given; the model kept their
    names only, so an image that is no image reference (a `$REGISTRY` a quoted sed left)
    passed a `--wait`. Without --wait the install itself passes, as Helm's does."""
    chart = session.release.current.grafana_chart
    container = f"{{name: copy, image: $REGISTRY/plugin-init:1, {RESTRICTED}}}"
    values = f"cat > v.yaml <<'YAML'\nextraInitContainers: [{container}]\nYAML\n"
    install = (
        f"helm install grafana {chart.repo_name}/grafana --version {chart.version} "
        "-n monitoring --create-namespace -f v.yaml"
    )
    run(session, _grafana_repo(session) + values + install + "\n")
    with pytest.raises(
        CommandError,
        match=r"helm upgrade grafana --wait: Deployment .*container 'copy': "
        r"'\$REGISTRY/plugin-init:1' is no valid image reference",
    ):
        run(session, install.replace("helm install", "helm upgrade") + " --wait\n")
    fixed = values.replace("$REGISTRY", "registry.example.com")
    run(session, fixed + install.replace("helm install", "helm upgrade") + " --wait\n")


@pytest.mark.parametrize(
    ("argv", "path", "asked"),
    [
        (
            ["kubectl", "-n", "x", "get", "pods", "-n"],
            ["get"],
            ["kubectl", "-n", "x", "get", "--help", "pods", "-n"],
        ),
        (
            ["helm", "repo", "add", "a", "u", "--username"],
            ["repo", "add"],
            ["helm", "repo", "add", "--help", "a", "u", "--username"],
        ),
        (
            ["kubectl", "exec", "-i", "p", "--", "sh", "--help"],
            ["exec"],
            ["kubectl", "exec", "--help", "-i", "p", "--", "sh", "--help"],
        ),
    ],
)
def test_the_flag_value_check_asks_for_help_right_after_the_subcommand(
    argv: list[str], path: list[str], asked: list[str]
) -> None:
    """--help appended at the end became the value of a flag the page left without one
    (`-n --help`), and the real tool then ran the command (it contacted an API server)."""
    seen: list[list[str]] = []

    def process(words: list[str]) -> Any:
        seen.append(words)
        return subprocess.CompletedProcess(words, 0, "", "")

    assert flags.value_problem(process, argv, path) is None
    assert seen == [asked]


def test_the_real_kubectl_refuses_a_value_with_help_after_the_subcommand(tool: Any) -> None:
    kubectl = tool("kubectl")

    def process(words: list[str]) -> Any:
        return subprocess.run(words, capture_output=True, text=True, timeout=30, check=False)

    argv = [kubectl, "--kubeconfig=/dev/null", "rollout", "status", "x", "--timeout=5"]
    problem = flags.value_problem(process, argv, ["rollout", "status"])
    assert problem is not None and 'invalid argument "5" for "--timeout" flag' in problem
    assert flags.value_problem(process, [*argv[:-1], "--timeout=5m"], ["rollout", "status"]) is None


def test_a_grafana_init_container_as_root_fails_under_the_charts_pod_context(
    session: Session,
) -> None:
    """The chart's pod securityContext says runAsNonRoot: true (values.yaml at the pinned
    commit); an init container that sets runAsUser: 0 alone (the usual chown) never starts,
    and passed: the model kept no pod-level context."""
    chart = session.release.current.grafana_chart
    context = RESTRICTED.replace("runAsNonRoot: true, runAsUser: 472", "runAsUser: 0")
    container = f"{{name: chown, image: docker.io/library/busybox:1.37, {context}}}"
    values = f"cat > v.yaml <<'YAML'\nextraInitContainers: [{container}]\nYAML\n"
    install = (
        f"helm install grafana {chart.repo_name}/grafana --version {chart.version} "
        "-n monitoring --create-namespace -f v.yaml --wait"
    )
    with pytest.raises(CommandError, match=r"container 'chown' runs as user 0 under runAsNonRoot"):
        run(session, _grafana_repo(session) + values + install + "\n")
    allowed = values.replace("runAsUser: 0", "runAsUser: 0, runAsNonRoot: false")
    run(session, allowed + install + "\n")
