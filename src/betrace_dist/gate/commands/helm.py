"""`helm`: the real Helm checks every command offline; releases join the page's world.

- install / upgrade / template / lint / show / package of the BeTrace chart (a local path, or the
  published OCI reference, which stands for the chart in this repository) run with the real Helm
  (install as `--dry-run=client`, and with Helm 3 too where it is installed); the objects
  `helm template` renders become the release's objects. An upgrade renders with the values Helm
  gives it: with --reuse-values, the previous revision's under the new ones.
- the Grafana Helm chart cannot be fetched offline: its values (-f files and --set keys) are
  checked against the JSON Schema kept in the repository, and its Service/Deployment/Secret are
  modelled from the chart's naming rule. kube-prometheus-stack is read as the stack reads its
  values: the Grafana chart's keys under `grafana:` (grafana_stack.py).
- test / rollback / uninstall / status / history / get need the release installed earlier
  (rollback, status, history and get also take one `helm uninstall --keep-history` removed,
  whose revisions Helm keeps, and whose name install takes only with --replace);
  the chart's test pods exist only once `helm test` made them, and only as long as their delete
  policy leaves them: `helm test` is modelled as passing, so hook-succeeded deletes them, and
  `helm test --logs`, which Helm 3 runs after that deletion, is refused there.
- each upgrade and rollback keeps the release's newest revisions as --history-max (else
  HELM_MAX_HISTORY, else 10) says; a rollback to one it pruned fails.
- a release makes no object that exists outside it (a page's, another release's), but takes
  over what an uninstall of it kept (helm.sh/resource-policy: keep), as Helm does.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from collections.abc import Callable
from dataclasses import replace
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from ... import backend_env, tools, yamlio
from ...artefacts import ingress_nginx, kube_enums
from ...artefacts.chart_policy import HelmError, Manifest, parse_manifests
from ...errors import ProblemsError
from ...names import GO_TRUE, GoNumberError, closest, go_int, go_quote
from .. import grafana_app, grafana_chart, grafana_stack, missing
from ..grafana_stack import rolling_volume_problem, stack
from ..session import CommandError, Invocation, Session
from ..world import HelmRelease, K8sObject, World, listing
from .flags import CommandLine, accepted, options, subcommands, value_problem

#: install/upgrade flags a render (`helm template`) is not given, whatever Helm's template takes
_NOT_RENDERED = frozenset({"-n", "--namespace", "--version", "--dry-run"})
#: the flags that give a release its values (Helm's values.Options)
_VALUE_FLAGS = frozenset(
    {"-f", "--values", "--set", "--set-string", "--set-json", "--set-file", "--set-literal"}
)
#: A chart whose one template prints the values it is given: Helm merges a command line's -f
#: files and --set flags for it as for any chart, and prints what it merged
_ECHO_CHART = (
    ("Chart.yaml", "apiVersion: v2\nname: values\nversion: 0.0.0\n"),
    ("templates/values.json", "{{ toJson .Values }}\n"),
)


def _helm(session: Session, binary: str, args: list[str]) -> str:
    done = session.process([binary, *args])
    if done.returncode != 0:
        raise HelmError((done.stderr or done.stdout).strip())
    return done.stdout


def render_text(session: Session, chart: Path, release: str, namespace: str, values: Path) -> str:
    """`helm template` of a chart with one values file, by the real Helm (HelmError if refused)."""
    binary = tools.find("helm")
    if binary is None:
        raise CommandError("helm is not installed (make tools)")
    args = ["template", release, str(chart), "--namespace", namespace, "-f", str(values)]
    return _helm(session, binary, args)


def _check_flags(binary: str, sub: list[str], parsed: CommandLine) -> None:
    known = accepted(binary, *sub)
    for name, _ in parsed.flags:
        if name not in known:
            raise CommandError(
                f"helm {' '.join(sub)} has no flag '{name}'{closest(name, sorted(known))}"
            )


def _oci_chart(session: Session) -> str:
    data = session.release
    return f"{data.chart_oci}/{data.current.chart.name}"


def _local_chart(inv: Invocation, ref: str, parsed: CommandLine) -> Path | None:
    """The BeTrace chart directory a reference stands for, or None for a remote chart."""
    session = inv.session
    if ref.startswith("oci://"):
        expected = _oci_chart(session)
        if ref != expected:
            raise CommandError(
                f"'{ref}' is not where the BeTrace chart is published; it is {expected}"
            )
        if not session.release.current.published:
            raise CommandError(
                f"the chart of release {session.release.current.version} is not published yet "
                f"(releases.yaml has no image digests), so {expected} cannot be pulled: install "
                "./helm/betrace from a clone, or show the command only {% if release.published %}"
            )
        version = parsed.get("--version")
        want = session.release.current.chart.version
        if version is not None and version != want:
            raise CommandError(
                f"the BeTrace chart of this release is version {want}, not {version}"
            )
        return session.repo / "helm" / session.release.current.chart.name
    if "/" in ref and not ref.startswith((".", "/")) and not session.where(ref).exists():
        return None
    path = session.where(ref)
    if not session.beneath(path / "Chart.yaml", "read").is_file():
        raise CommandError(
            f"there is no chart at '{ref}' from '{session.reader_path(session.cwd)}'"
        )
    return path


def _values_paths(inv: Invocation, parsed: CommandLine) -> list[Path]:
    paths = []
    for value in parsed.all("-f", "--values"):
        path = inv.session.where(value)
        if not path.is_file():
            raise CommandError(
                f"the values file '{value}' does not exist at this point of the page"
            )
        paths.append(path)
    return paths


def _render(
    inv: Invocation,
    chart: Path,
    name: str,
    parsed: CommandLine,
    binary: str,
    values: Path | None = None,
) -> list[K8sObject]:
    """The objects `helm template` renders with the command line's flags; with `values` (a
    file of the values worked out for an upgrade), that file instead of the line's own values."""
    args = ["template", name, str(chart), "--namespace", parsed.namespace]
    renders = accepted(binary, "template")  # the rest (--install, --history-max...) is runtime's
    skipped = _NOT_RENDERED | (_VALUE_FLAGS if values is not None else frozenset())
    for flag, value in parsed.flags:
        if flag in skipped or flag not in renders:
            continue
        args += [flag] if value is None else [flag, value]
    args += ["-f", str(values)] if values is not None else []
    try:
        out = _helm(inv.session, binary, args)
        manifests = _parsed(out)
    except HelmError as exc:
        raise CommandError(f"Helm rejects it: {_first(str(exc))}") from None
    return [
        K8sObject(
            m.kind,
            m.name,
            (m.doc.get("metadata") or {}).get("namespace") or parsed.namespace,
            m.doc,
            f"helm release {name}",
            helm=(parsed.namespace, name),
        )
        for m in manifests
    ]


@lru_cache(maxsize=16)
def _parse_once(out: str) -> tuple[Manifest, ...]:
    """Speed: parsing a render (libyaml, a few ms; ~80 ms without it) is done once per distinct
    output, a pure function of it; pages install, upgrade and template the same chart with the
    same values. A HelmError is raised each time, never kept."""
    return tuple(parse_manifests(out))


#: Renders kept parsed are at most this long (the BeTrace chart's is about 25 KB): a page's own
#: chart can render megabytes, each document bounded by yamlio, but not kept for the whole run.
KEPT_RENDER = 512 * 1024


def _parsed(out: str) -> list[Manifest]:
    """Each caller gets its own copy of the objects, as from a fresh parse."""
    if len(out) > KEPT_RENDER:
        return parse_manifests(out)
    return [Manifest(m.source, copy.deepcopy(m.doc)) for m in _parse_once(out)]


def _first(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return " ".join(lines[:4])


def _modelled_chart(inv: Invocation, ref: str, parsed: CommandLine) -> bool:
    """The third-party charts the gate models: the Grafana chart, and kube-prometheus-stack,
    which installs it as its dependency. True for the stack."""
    session = inv.session
    alias, _, chart = ref.partition("/")
    gc = session.release.current.grafana_chart
    if alias not in session.world.helm_repos:
        known = listing("repositories added", list(session.world.helm_repos))
        raise CommandError(f"no Helm repository '{alias}' was added earlier on this page ({known})")
    url = session.world.helm_repos[alias]
    if url == stack().repository and chart == stack().chart:
        # the stack's own version is the reader's (from helm list): its Grafana keys are
        # checked against the Grafana chart the stack bundles at the version data names
        return True
    if url != gc.repo_url or chart != gc.chart:
        raise CommandError(
            f"'{ref}' cannot be checked offline: only {gc.repo_name}/{gc.chart} ({gc.repo_url}) "
            f"and {stack().chart} ({stack().repository}) are modelled"
        )
    version = parsed.get("--version")
    if version is not None and version != gc.version:
        raise CommandError(
            f"the guides are checked against {gc.repo_name}/{gc.chart} {gc.version}, not {version}"
        )
    return False


def _values_file(session: Session, path: Path, umbrella: bool) -> dict[str, Any]:
    """One `-f` file, read as the chart reads it; a problem names the file and its line. The
    Grafana-level values come back (for the stack, what is under `grafana:`)."""
    try:  # bounded: a values file written by a page may be an alias bomb
        text = session.read(str(path))  # only the page's own files
        # as Helm reads it (YAML 1.1's booleans and octal numbers)
        read = yamlio.as_kubernetes_reads(text, session.reader_path(path))
        loaded = (read[0] if read else None) or {}
    except ProblemsError as exc:
        raise CommandError(str(exc.problems[0])) from None
    if len(read) > 1:
        raise CommandError(
            f"{session.reader_path(path)}: {len(read)} YAML documents; the gate reads a values "
            "file of one (write the values in one document, without ---)"
        )
    if umbrella:
        problems = grafana_stack.validate_stack_values(loaded)
        values = grafana_stack.grafana_values(loaded) if not problems else {}
        prefix = f"{grafana_stack.stack().dependency}."
    else:
        problems = grafana_chart.validate_values(loaded)
        values = loaded if isinstance(loaded, dict) else {}
        prefix = ""
    if not problems:
        found = grafana_stack.init_container_problems(values)
        problems = [type(p)(prefix + p.key, p.message) for p in found]
    if problems:
        line = grafana_stack.key_line(text, problems[0].key)
        where = session.reader_path(path) + (f":{line}" if line else "")
        raise CommandError(f"{where}: {problems[0]}")
    return values


#: the --set flags in the order Helm merges them, after the -f files (MergeValues in
#: pkg/cli/values/options.go of helm v4.1.4): JSON, typed, strings, files
_SET_FLAGS = ("--set-json", "--set", "--set-string", "--set-file")


def _remote_values(inv: Invocation, parsed: CommandLine, umbrella: bool) -> dict[str, Any]:
    """The merged `-f` files, each checked against the Grafana chart's keys, then the `--set`
    values, checked too and merged over them as Helm does."""
    values: dict[str, Any] = {}
    for path in _values_paths(inv, parsed):
        values = _merge(values, _values_file(inv.session, path, umbrella))
    for flag in _SET_FLAGS:
        for item in parsed.all(flag):
            for assignment in _set_items(item):
                key, _, raw = assignment.partition("=")
                if umbrella and key.startswith("grafana."):
                    key = key.removeprefix("grafana.")
                elif umbrella:
                    continue  # the stack's other keys are not modelled
                problems = grafana_chart.validate_set(key, raw)
                if problems:
                    raise CommandError(f"--set {assignment}: {problems[0]}")
                values = _set_into(values, key, raw, flag)
    return values


def _set_into(values: dict[str, Any], key: str, raw: str, flag: str) -> dict[str, Any]:
    """One KEY=VALUE of a --set flag merged into the values as Helm's strvals parser reads it
    (pkg/strvals/parser.go of helm v4.1.4): the key split at dots not escaped by a backslash,
    `{a,b}` a list, and for --set the value typed by typedVal (true, false, null, integers
    without a leading zero); --set-string keeps text, --set-json reads JSON. Not modelled, their
    keys checked and their values left out: a key with a list index (`a[0]`), --set-file (a
    file's text) and null (which removes a key of the chart's defaults)."""
    if "[" in key or flag == "--set-file":
        return values
    if flag == "--set-json":
        try:
            value: Any = json.loads(raw)
        except ValueError as exc:
            raise CommandError(f"--set-json {key}={raw[:80]}: not JSON ({exc})") from None
        except RecursionError:  # a page's text: nested past what Python's parser follows
            raise CommandError(f"--set-json {key}: nested too deep to read") from None
    elif raw.startswith("{") and raw.endswith("}"):
        value = [_typed(v, flag) for v in raw[1:-1].split(",") if v]
    else:
        value = _typed(raw, flag)
    if value is None:  # Helm removes the key; the model keeps what the files gave
        return values
    parts = [p.replace("\\.", ".") for p in re.split(r"(?<!\\)\.", key)]
    for part in reversed(parts):
        value = {part: value}
    try:
        return _merge(values, value)
    except RecursionError:  # as deep as a page can nest a key or a JSON value
        raise CommandError(f"--set {key[:80]}: nested too deep to follow") from None


def _typed(raw: str, flag: str) -> Any:
    """typedVal of Helm's strvals parser for --set; text for --set-string."""
    if flag == "--set-string":
        return raw
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    if raw == "0" or (raw[:1] not in ("", "0") and re.fullmatch(r"[+-]?\d+", raw)):
        return int(raw)
    return raw


def _init_containers(values: dict[str, Any]) -> list[dict[str, Any]]:
    """The chart writes extraInitContainers into the pod as given (through `tpl`): the fields
    later checks read, the image and the security context among them (an image with a
    template in it is left out: the model renders no template)."""
    return [
        {k: c[k] for k in ("name", "image", "securityContext", "resources") if k in c}
        | {"name": c.get("name", "")}
        | ({"image": None} if "{{" in str(c.get("image")) else {})
        for c in values.get("extraInitContainers") or []
        if isinstance(c, dict)
    ]


def _pod_security(values: dict[str, Any]) -> dict[str, Any]:
    """The Grafana pod's securityContext: the chart's default with the given map merged over
    it, as Helm coalesces values (a null drops a key)."""
    merged = dict(grafana_chart.default_of("securityContext") or {})
    given = values.get("securityContext", {})
    if given is None:
        return {}
    for key, value in given.items() if isinstance(given, dict) else ():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _grafana_objects(
    name: str, ns: str, values: dict[str, Any], app_version: str
) -> list[K8sObject]:
    """What the Grafana chart renders that later steps use: Service, Deployment, admin Secret,
    PVC; each with its apiVersion, which makes it one object of the cluster (K8sObject.identity)
    with the manifests a page applies."""
    fullname = grafana_chart.fullname(name, values)
    source = f"helm release {name} (modelled)"
    labels = {
        "app.kubernetes.io/name": "grafana",
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/component": "grafana",
    }
    pod = {
        "metadata": {"labels": labels},
        "spec": {
            "containers": [grafana_chart.grafana_container(values, fullname, app_version)],
            "initContainers": _init_containers(values),
            "volumes": grafana_chart.pod_volumes(values, fullname),
            "securityContext": _pod_security(values),
        },
    }
    port = grafana_chart.service_port(values)
    service = {
        "apiVersion": "v1",
        "metadata": {"labels": labels},
        "spec": {
            "ports": [{"name": "service", "port": port, "targetPort": grafana_chart.GRAFANA_PORT}],
            "selector": {
                k: labels[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance")
            },
        },
    }
    objects = [
        K8sObject("Service", fullname, ns, service, source),
        K8sObject(
            "Deployment",
            fullname,
            ns,
            {"apiVersion": "apps/v1", "metadata": {"labels": labels}, "spec": {"template": pod}},
            source,
        ),
    ]
    if not (values.get("admin") or {}).get("existingSecret"):
        secret = {"apiVersion": "v1", "data": {"admin-user": "", "admin-password": ""}}
        objects.append(K8sObject("Secret", fullname, ns, secret, source))
    persistence = values.get("persistence") or {}
    pvc = persistence.get("enabled") and persistence.get("type", "pvc") == "pvc"
    if pvc and not persistence.get("existingClaim"):  # the chart's templates/pvc.yaml
        claim = {"apiVersion": "v1"}
        objects.append(K8sObject("PersistentVolumeClaim", fullname, ns, claim, source))
    return [replace(o, helm=(ns, name)) for o in objects]


def _remote_release(
    inv: Invocation, name: str, ref: str, parsed: CommandLine, existing: HelmRelease | None
) -> HelmRelease:
    """Installing the third-party Grafana chart (alone or in the stack): checked offline against
    a model of it. The release keeps its Grafana-level values for the next upgrade."""
    umbrella = _modelled_chart(inv, ref, parsed)
    values = _remote_values(inv, parsed, umbrella)
    if existing is not None:
        values = _upgrade_values(parsed, existing.values, values)
        problem = rolling_volume_problem(values)
        if problem is not None:
            raise CommandError(f"helm upgrade {name}: {problem}")
    ns = parsed.namespace
    app_version = inv.session.release.current.grafana_chart.app_version
    objects = _grafana_objects(name, ns, values, app_version)
    return HelmRelease(name, ns, ref, 1, objects, modelled=True, values=values)


def _set_items(text: str) -> list[str]:
    """`--set a=1,b={x,y}` -> ['a=1', 'b={x,y}']: commas inside braces belong to a list value."""
    items, depth, current = [], 0, ""
    for ch in text:
        depth += ch == "{"
        depth -= ch == "}"
        if ch == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += ch
    return [*items, current] if current else items


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key, value in b.items():
        out[key] = (
            _merge(out[key], value)
            if isinstance(out.get(key), dict) and isinstance(value, dict)
            else value
        )
    return out


def _namespace_ready(inv: Invocation, parsed: CommandLine) -> None:
    world = inv.session.world
    ns = parsed.namespace
    if ns in world.namespaces:
        return
    if parsed.has("--create-namespace"):
        problem = world.terminating_problem(ns)
        if problem is not None:
            raise CommandError(f"--create-namespace: {problem}")
        world.namespaces.add(ns)
        return
    raise CommandError(
        f"namespace '{ns}' does not exist yet: add --create-namespace, or create it first"
    )


def _helm_binaries() -> list[str]:
    """The real Helms installed here: Helm 4 (`helm`) and, where it is, Helm 3 (`helm3`)."""
    return [b for b in (tools.find("helm"), tools.find("helm3")) if b]


def _existing_release(inv: Invocation, parsed: CommandLine, upgrade: bool) -> HelmRelease | None:
    """The release an install or upgrade replaces: install refuses one, upgrade needs one
    (unless --install)."""
    if len(parsed.positional) != 2:
        raise CommandError(
            f"helm {parsed.sub[0]} takes a release name and a chart, got {parsed.positional}"
        )
    name = parsed.positional[0]
    releases = inv.session.world.releases
    existing = releases.get((parsed.namespace, name))
    if (parsed.namespace, name) in inv.session.world.uninstalled:
        _over_kept_history(parsed, name, upgrade)
    if upgrade and existing is None and not parsed.has("--install"):
        installed = [f"{n} in {ns}" for ns, n in releases]
        raise CommandError(
            f"helm upgrade: no release '{name}' in namespace '{parsed.namespace}' "
            f"({listing('releases', installed)}); add --install or install it first"
        )
    if not upgrade and existing is not None:
        raise CommandError(
            f"helm install: release '{name}' already exists in '{parsed.namespace}'; use helm "
            "upgrade"
        )
    return existing


def _over_kept_history(parsed: CommandLine, name: str, upgrade: bool) -> None:
    """An install or upgrade of a name whose revisions `helm uninstall --keep-history` kept.
    Install takes the name only with --replace (Install.availableName in pkg/action/install.go
    at helm/helm v3.11.1 and v4.1.4: "cannot re-use" at 3.11.1, "cannot reuse" at 4.1.4). An
    upgrade finds no deployed revision and fails (Upgrade.prepareUpgrade in
    pkg/action/upgrade.go at both tags); with --install, Helm 3.14.4 and later install anew
    with --replace (isReleaseUninstalled in cmd/helm/upgrade.go at v3.14.4, pkg/cmd/upgrade.go
    at v4.1.4; not at v3.14.3), earlier ones fail."""
    ns = parsed.namespace
    restore = f"`helm rollback {name} REVISION -n {ns}` restores one of its revisions"
    if not upgrade and not parsed.has("--replace"):
        raise CommandError(
            f"helm install: release '{name}' in '{ns}' was uninstalled with --keep-history, and "
            f"Helm keeps the name (cannot reuse a name that is still in use): add --replace to "
            f"install it anew, or {restore}"
        )
    if upgrade and parsed.has("--install"):
        raise CommandError(
            f"helm upgrade --install: release '{name}' in '{ns}' was uninstalled with "
            f'--keep-history: Helm 3 before 3.14.4 fails ("{name}" has no deployed releases), '
            f"later ones install it anew; use `helm install {name} ... --replace`, or {restore}"
        )
    if upgrade:
        raise CommandError(
            f'helm upgrade: "{name}" has no deployed releases: it was uninstalled with '
            f"--keep-history; {restore}"
        )


def _client_dry_run(inv: Invocation, binary: str, ref: str, chart: Path) -> None:
    """Helm 4 checks the install command itself with --dry-run=client, the published OCI
    reference standing for the chart in this repository."""
    args = [a for a in inv.argv[1:] if not a.startswith("--dry-run")]
    if ref.startswith("oci://"):
        args = [str(chart) if a == ref else a for a in args]
        args = _drop_flag(args, "--version")
    try:
        _helm(inv.session, binary, [*args, "--dry-run=client"])
    except HelmError as exc:
        raise CommandError(f"Helm {_major(binary)} rejects it: {_first(str(exc))}") from None


def _given_values(inv: Invocation, parsed: CommandLine) -> dict[str, Any]:
    """The values a command line gives, its -f files and --set flags merged as Helm merges them:
    what Helm keeps as the revision's user-supplied values (a later upgrade may reuse them).
    The real Helm merges them, for a chart that only prints its values."""
    given = [(flag, value) for flag, value in parsed.flags if flag in _VALUE_FLAGS]
    if not given:
        return {}
    session = inv.session
    scratch = session.scratch()  # made by descriptor: never where a link of the page leads
    try:
        session.sandbox.makedirs(scratch / "templates")
        for name, text in _ECHO_CHART:
            session.write_scratch(scratch, name, text)
        args = ["template", "values", str(scratch)]
        for flag, value in given:
            args += [flag] if value is None else [flag, value]
        loaded = yamlio.safe_load(_helm(session, _helm_binaries()[0], args), "values")
    except HelmError as exc:
        raise CommandError(f"Helm rejects it: {_first(str(exc))}") from None
    except ProblemsError as exc:
        raise CommandError(f"the values the command gives: {exc.problems[0]}") from None
    finally:
        session.sandbox.remove(scratch)
    return loaded if isinstance(loaded, dict) else {}


def _coalesced(given: dict[str, Any], previous: dict[str, Any]) -> dict[str, Any]:
    """Helm's CoalesceTables(given, previous): the previous values under the given ones, map by
    map; a key the given values set to null, where the previous ones had a value, is dropped.
    Read in pkg/chart/common/util/coalesce.go at helm/helm 012bc59 (Helm 4's main branch; how
    a null given is treated has changed between Helm releases: that commit's rule is kept)."""
    out = dict(given)
    for key, old in previous.items():
        new = given.get(key)
        if key not in given:
            out[key] = old
        elif new is None and old is not None:
            del out[key]
        elif isinstance(new, dict) and isinstance(old, dict):
            out[key] = _coalesced(new, old)
    return out


def _upgrade_values(
    parsed: CommandLine, previous: dict[str, Any], given: dict[str, Any]
) -> dict[str, Any]:
    """The user-supplied values of an upgrade, by Helm's Upgrade.reuseValues (pkg/action/
    upgrade.go at helm/helm 00669cd, Helm 4): --reset-values takes the given ones alone;
    --reuse-values puts them over the previous revision's, which also stand for the chart's
    defaults (a key nulled now keeps its previous value); --reset-then-reuse-values (Helm 4)
    puts them over the previous ones on the new chart's defaults; with none of these, an
    upgrade that gives no values takes the previous revision's. With --reuse-values Helm also
    renders with the old chart's values in place of the new chart's (see _local_release)."""
    if parsed.has("--reset-values"):
        return given
    if parsed.has("--reuse-values"):
        return _coalesced(_coalesced(given, previous), previous)
    if parsed.has("--reset-then-reuse-values"):
        return _coalesced(given, previous)
    return given or previous


def _rendered(
    inv: Invocation, chart: Path, parsed: CommandLine, values: dict[str, Any] | None
) -> list[K8sObject]:
    """The release's objects as each installed Helm renders them (the last one's are kept):
    with the command line's values, or with `values` handed to Helm as a file."""
    name = parsed.positional[0]
    if values is None:
        renders = [_render(inv, chart, name, parsed, b) for b in _helm_binaries()]
        return renders[-1]
    scratch = inv.session.scratch()  # made by descriptor: never where a link of the page leads
    try:
        # JSON is YAML: Helm reads it as a values file. A date YAML read from a values file
        # goes back as the text it was, as Helm's YAML reader keeps it (a string)
        text = json.dumps(values, default=str)
        path = inv.session.write_scratch(scratch, "values.json", text)
        renders = [_render(inv, chart, name, parsed, b, path) for b in _helm_binaries()]
    finally:
        inv.session.sandbox.remove(scratch)
    return renders[-1]


def _local_release(
    inv: Invocation, parsed: CommandLine, chart: Path, existing: HelmRelease | None, upgrade: bool
) -> HelmRelease:
    """Installing the BeTrace chart (or one of the page's own): the real Helm renders it, with
    the values the upgrade of an existing release works out from the previous revision's."""
    name, ref = parsed.positional
    _values_paths(inv, parsed)
    # Helm 4 checks the command itself with --dry-run=client; Helm 3's --dry-run would
    # contact a cluster, so Helm 3 only renders (below), which needs none.
    for binary in _helm_binaries() if not upgrade else []:
        if _major(binary) >= 4:
            _client_dry_run(inv, binary, ref, chart)
    values = given = _given_values(inv, parsed)
    defaults = _chart_defaults(inv, chart)
    rendered_with: dict[str, Any] | None = None
    if existing is not None:
        values = _upgrade_values(parsed, existing.values, given)
        rendered_with = None if values == given else values
        if parsed.has("--reuse-values"):
            # Helm renders with the old chart's values in place of the new chart's own
            # (Upgrade.reuseValues: chart.Values = the old release's coalesced values)
            defaults = existing.defaults
            rendered_with = _coalesced(values, defaults)
    objects = _rendered(inv, chart, parsed, rendered_with)
    ours = inv.session.is_projects(chart, f"helm/{inv.session.release.current.chart.name}", _FREE)
    release = HelmRelease(name, parsed.namespace, ref, 1, objects, project_chart=ours)
    release.values, release.defaults = values, defaults
    # Values of the backend's variables follow the one rule of backend_env.py, on the
    # containers that run it as World.role says: in the project's chart, by its template.
    data = inv.session.release
    runs_backend = inv.session.world.backend_in(data, release)
    problems = backend_env.manifest_problems([o.doc for o in objects], data, runs_backend)
    if problems:
        raise CommandError(f"the release would give the backend {problems[0]}")
    unpublished = inv.session.world.unpublished([o.doc for o in objects], data)
    if unpublished is not None:
        raise CommandError(
            f"{unpublished}: set image.registry to the registry the images were pushed to"
        )
    return release


def _chart_defaults(inv: Invocation, chart: Path) -> dict[str, Any]:
    """A local chart's own values (its values.yaml, read as the page's file: bounded, never
    through a link leading out), or none where it has no readable one."""
    try:
        text = inv.session.read(str(chart / "values.yaml"))
        loaded = yamlio.safe_load(text, inv.session.reader_path(chart / "values.yaml"))
    except (OSError, ProblemsError, CommandError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


#: What a copy of the project's chart may change and stay the project's: the values, which the
#: page may give with -f and --set anyway; its templates decide what each pod runs.
_FREE = frozenset({"values.yaml"})


def _values_supported(objects: list[K8sObject]) -> None:
    """No rendered object has a value the API server refuses for a field that takes one of a
    fixed set (kube_enums: the JSON Schemas have no enums), as `kubectl apply` of the same
    object is refused: Helm would fail the install with the API server's message."""
    for obj in objects:
        problems = kube_enums.problems({"kind": obj.kind} | obj.doc)  # a model's doc has none
        if problems:
            raise CommandError(
                f"the API server would refuse the release's {obj.kind}/{obj.name}: {problems[0]}"
            )
        problems = ingress_nginx.problems({"kind": obj.kind} | obj.doc)
        if problems:
            raise CommandError(f"the release's {obj.kind}/{obj.name}: {problems[0]}")


def install(inv: Invocation, parsed: CommandLine, upgrade: bool) -> None:
    """install and upgrade share one flow of checks: the flags (first: a misspelt flag would
    leave its value as a stray word), the release, the namespace, the chart and its values, then
    what the release's pods reference."""
    for binary in _helm_binaries():
        _check_flags(binary, parsed.sub, parsed)
    existing = _existing_release(inv, parsed, upgrade)
    name, ref = parsed.positional
    _namespace_ready(inv, parsed)
    chart = _local_chart(inv, ref, parsed)
    if chart is None:
        release = _remote_release(inv, name, ref, parsed, existing)
    else:
        release = _local_release(inv, parsed, chart, existing, upgrade)
    _values_supported(release.objects)
    if existing is not None:
        _values_kept(parsed, existing, release)
    if existing is not None and release.modelled:
        problem = grafana_chart.dropped_volume_problem(existing.values, release.values)
        if problem is not None:
            raise CommandError(f"helm upgrade {release.name}: {problem}")
    if _dry_run(parsed):
        return  # rendered and checked, sent nowhere: the cluster stays as it was
    if existing is not None:
        _supersede(existing, release, _history_max(inv, parsed), "upgrade")
    kept = inv.session.world.uninstalled.pop((parsed.namespace, name), None)
    if kept is not None:  # --replace: Install.replaceRelease numbers on; install prunes none
        _supersede(kept, release, (0, "helm install keeps every revision"), "install")
    _settle(inv, parsed.sub[0], release, _waits(parsed))


def _leaves(values: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The key path of every value that is not a non-empty mapping."""
    found: list[tuple[str, ...]] = []
    for key, value in values.items():
        path = (*prefix, str(key))
        found += _leaves(value, path) if isinstance(value, dict) and value else [path]
    return found


def _values_kept(parsed: CommandLine, existing: HelmRelease, release: HelmRelease) -> None:
    """An upgrade that gives values without --reuse-values or --reset-then-reuse-values starts
    again from the chart's defaults and the values given (Upgrade.reuseValues): the values the
    release had and the command does not give again are lost, which a page must mean
    (--reset-values says so)."""
    if parsed.has("--reset-values"):
        return
    kept = set(_leaves(release.values))
    dropped = [
        ".".join(path)
        for path in _leaves(existing.values)
        if not any(path[:i] in kept for i in range(1, len(path) + 1))
    ]
    if dropped:
        raise CommandError(
            f"helm upgrade {release.name} drops values the release has and this command does "
            f"not give again ({listing('values', dropped)}): an upgrade that gives values "
            "without --reuse-values or --reset-then-reuse-values starts again from the chart's "
            "defaults (Upgrade.reuseValues in Helm's pkg/action/upgrade.go). Add --reuse-values, "
            "give the same values again, or write --reset-values if dropping them is meant"
        )


def _dry_run(parsed: CommandLine) -> bool:
    """Whether --dry-run keeps the command from the cluster, read as Helm 4 reads it
    (cmdGetDryRunFlagStrategy, pkg/cmd/helpers.go of helm/helm after v4.1.0): bare (its
    NoOptDefVal, "unset"), client or server are dry runs, none is not, and any other value is
    read as a Go boolean (true: client; false: none) or refused."""
    values = [value for name, value in parsed.flags if name == "--dry-run"]
    if not values:
        return False
    value = values[-1]
    if value is None or value in ("unset", "client", "server"):
        return True
    if value == "none" or value in _NO_WAIT - {"hookOnly"}:
        return False
    if value in GO_TRUE:
        return True
    raise CommandError(
        f'helm {parsed.sub[0]}: invalid dry-run value ("{value}"). Must be "none", "server", '
        'or "client"'
    )


#: --wait values with which Helm does not wait for the release's pods: Helm 3's bool read as
#: false, and Helm 4's default strategy (`helm upgrade --help`: "Values: 'watcher', 'hookOnly',
#: and 'legacy'. (default hookOnly)", with "[=watcher]" when given bare)
_NO_WAIT = frozenset({"hookOnly", "false", "False", "FALSE", "f", "F", "0"})


def _waits(parsed: CommandLine) -> bool:
    """Whether the command returns only once the release's pods are ready: --wait (not with a
    value that waits for nothing, _NO_WAIT), or Helm 3's --atomic and Helm 4's
    --rollback-on-failure, which set it (their `--help`)."""
    waits = [value for name, value in parsed.flags if name == "--wait"]
    if waits and (waits[-1] is None or waits[-1] not in _NO_WAIT):
        return True
    return parsed.on("--atomic", "--rollback-on-failure")


def _settle(inv: Invocation, verb: str, release: HelmRelease, waited: bool) -> None:
    """The release as it now stands (installed, upgraded or rolled back): no object outside it
    has the identity of one of its own but what it takes over (_taken_over), what its pods
    reference exists, and every Grafana still reaches the backend. Its pods made anew are not
    known to run unless the command waited (World.started)."""
    session = inv.session
    taken = _taken_over(session.world, release, verb)
    _references_exist(session, release)
    unpushed = session.world.unpushed([o.doc for o in release.present()])
    if unpushed is not None:
        raise CommandError(f"helm {verb} {release.name}: {unpushed}")
    # Helm's --wait waits for Jobs only with --wait-for-jobs (not modelled): left out
    for obj in release.present() if waited else []:
        if obj.kind in ("Job", "CronJob"):
            continue
        problem = session.world.never_starts(obj, tuple(release.present()))
        if problem is not None:
            raise CommandError(
                f"helm {verb} {release.name} --wait: {problem}: its pods never start, and "
                "Helm fails at its --timeout"
            )
    session.world.started(release.present(), waited)
    session.world.objects = [o for o in session.world.objects if not any(o is t for t in taken)]
    _forwards_follow(session.world, release)
    session.world.releases[(release.namespace, release.name)] = release
    found = grafana_app.world_problem(session.world, session.release)
    if found is not None:
        grafana, problem = found
        name = release.name
        after = "" if grafana == name else f"Grafana's release {grafana} loses the backend: "
        raise CommandError(f"helm {verb} {name}: {after}{problem}")


def _forwards_follow(world: World, release: HelmRelease) -> None:
    """A port-forward to a pod of the release's deployed revision keeps that pod where the new
    revision leaves its workload's pod template as it was: a Deployment replaces its pods only
    when the template changes ("Updating a Deployment", Kubernetes' documentation), and Helm
    updates an unchanged object without replacing it. The forward then follows the new
    revision's object (World.ended); any other change of the template ends it."""
    previous = world.releases.get((release.namespace, release.name))
    if previous is None:
        return
    before = previous.present()
    for listener in world.listeners.values():
        old = listener.pod_of
        if old is None or not any(o is old for o in before):
            continue
        same = (o for o in release.present() if o.identity == old.identity)
        listener.pod_of = next((o for o in same if o.pod() == old.pod()), old)


def _taken_over(world: World, release: HelmRelease, verb: str) -> list[K8sObject]:
    """The objects outside the release that it makes again, which Helm takes over: only those
    that carry the release's ownership metadata (what an uninstall of it kept, or what the
    page applied with it, kubectl._helm_owner). Any other
    object of the same identity, a page's or another release's, install and upgrade refuse:
    "KIND NAME exists and cannot be imported into the current release: invalid ownership
    metadata" (existingResourceConflict and checkOwnership in pkg/action/validate.go of
    helm/helm v3; the words are in both installed Helms). A rollback fails on it too, as
    KubeClient.Update finds no such object in the current revision."""
    mine = (release.namespace, release.name)
    others = [r for r in world.releases.values() if (r.namespace, r.name) != mine]
    outside = world.objects + [o for r in others for o in r.present()]
    taken: list[K8sObject] = []
    for obj in (o for o in release.objects if not o.is_hook("test")):
        twin = next((o for o in outside if o.identity == obj.identity), None)
        if twin is None:
            continue
        if twin.helm != mine or not any(o is twin for o in world.objects):
            raise CommandError(
                f"helm {verb} {release.name}: {obj.kind} '{obj.name}' exists already in "
                f"namespace '{obj.namespace}' ({twin.source}), and Helm takes over only what "
                "carries the release's own ownership metadata (it answers that the object "
                '"exists and cannot be imported into the current release: invalid ownership '
                'metadata"): delete it first, or leave it out of the release'
            )
        taken.append(twin)
    return taken


def _supersede(
    current: HelmRelease,
    release: HelmRelease,
    limit: tuple[int, str],
    verb: str,
    deployed: bool = True,
) -> None:
    """`release` becomes the revision after `current`, which joins its history as it was, and
    the history is pruned to `limit` (_prune; `deployed`: whether `current` is deployed, or was
    uninstalled with --keep-history). The test pods an earlier `helm test` left stay, and those
    it deleted stay gone: Helm deletes or makes them only at the next `helm test`. What
    `kubectl delete` deleted of the release is back: KubeClient.Update, which upgrade and
    rollback both call, creates each object of the new manifest that the cluster lacks ("Since
    the resource does not exist, create it", in Client.Update of pkg/kube/client.go at
    helm/helm v3.11.1, and in Client.update, which Update calls, at v4.1.4)."""
    release.revision = current.revision + 1
    release.history = [*current.history, replace(current, history=[], pruned={}, deleted=[])]
    release.pruned = dict(current.pruned)
    release.tested, release.hooks_gone = current.tested, dict(current.hooks_gone)
    release.deleted = []
    _prune(release, *limit, verb, deployed)


#: How many revisions an upgrade or a rollback keeps when neither --history-max nor
#: HELM_MAX_HISTORY says: defaultMaxHistory in pkg/cli/environment.go (helm/helm v4.1.4 and
#: v3.11.1), the default of both commands' --history-max (`helm upgrade --help` prints it)
_DEFAULT_HISTORY_MAX = 10


def _history_max(inv: Invocation, parsed: CommandLine) -> tuple[int, str]:
    """The --history-max of an upgrade or a rollback, and how it was given. The flag is a pflag
    int, read as Go's strconv.ParseInt(s, 0, 64) reads it (names.go_int: 0x1f, 0o17, 017,
    0b101, 1_000), and a value it refuses fails the command with pflag's message (flag.go at
    spf13/pflag v1.0.5 and v1.0.10; both Helm binaries print it). Without the flag,
    HELM_MAX_HISTORY (exported, or set for the command) stands for its default, and where
    strconv.Atoi refuses the variable, 10: `envIntOr("HELM_MAX_HISTORY", defaultMaxHistory)` in
    pkg/cli/environment.go, bound to --history-max by pkg/cmd/upgrade.go and
    pkg/cmd/rollback.go (helm/helm v4.1.4) and cmd/helm/upgrade.go and rollback.go (v3.11.1)."""
    if parsed.has("--history-max"):
        word = parsed.get("--history-max") or ""
        try:
            return go_int(word), f"--history-max {word}"
        except GoNumberError as exc:
            raise CommandError(
                f"helm {parsed.sub[0]}: invalid argument {go_quote(word)} for "
                f'"--history-max" flag: strconv.ParseInt: parsing {go_quote(word)}: {exc}'
            ) from None
    given = inv.session.program_env() | inv.session.assignments(inv.command)
    variable = given.get("HELM_MAX_HISTORY")
    try:
        value = go_int(variable, 10) if variable is not None else None
    except GoNumberError:
        value = None
    if value is None:
        return _DEFAULT_HISTORY_MAX, f"--history-max not given: {_DEFAULT_HISTORY_MAX}"
    return value, f"HELM_MAX_HISTORY={variable}"


def _prune(release: HelmRelease, limit: int, said: str, verb: str, deployed: bool) -> None:
    """Helm's history limit, applied as the new revision `release` is stored: for a limit above
    0, Storage.Create first removes the oldest revisions until `limit - 1` remain, skipping the
    deployed one, then stores the new one; 0 or less removes none (Storage.Create and
    removeLeastRecent in pkg/storage/storage.go, helm/helm v4.1.4 and v3.11.1). The model's
    deployed revision is always the one before the new one, the newest of the history, so the
    oldest go first and a limit of 1 keeps two revisions; where none is `deployed` (the release
    was uninstalled with --keep-history), a limit of 1 keeps only the new one."""
    if limit <= 0:
        return
    keep = max(limit - 1, 1 if deployed else 0)
    cut = len(release.history) - keep
    for old in release.history[:cut]:
        release.pruned[old.revision] = (
            f"the helm {verb} that made revision {release.revision} pruned it ({said})"
        )
    release.history = release.history[cut:] if cut > 0 else release.history


def _references_exist(session: Session, release: HelmRelease) -> None:
    """Every Secret, ConfigMap and PVC the release's pods need exists in its namespace: in the
    release itself, or created earlier on the page (an existing Secret the values name)."""
    ns = release.namespace
    available = {(o.kind, o.name): o for o in release.objects if not o.is_hook("test")}
    available |= {(o.kind, o.name): o for o in session.world.all_objects(ns)}
    for obj in release.objects:
        if obj.is_hook("test"):
            continue
        for kind, name, key in obj.references():
            target = available.get((kind, name))
            if target is None:
                known = [n for k, n in available if k == kind]
                raise CommandError(
                    f"{obj.kind} '{obj.name}' needs {kind} '{name}', which neither the release "
                    f"nor an earlier step creates in namespace '{ns}'{closest(name, known)}"
                )
            data = dict(target.doc.get("data") or {}) | dict(target.doc.get("stringData") or {})
            if key and target.kind != "PersistentVolumeClaim" and key not in data:
                raise CommandError(
                    f"{obj.kind} '{obj.name}' reads key '{key}' of {kind} '{name}', which has "
                    f"only: {', '.join(sorted(data)) or 'no keys'}"
                )


def _drop_flag(args: list[str], flag: str) -> list[str]:
    out: list[str] = []
    skip = False
    for a in args:
        if skip:
            skip = False
            continue
        if a == flag:
            skip = True
            continue
        if a.startswith(flag + "="):
            continue
        out.append(a)
    return out


@cache
def _major(binary: str) -> int:
    """Major version of a Helm binary (asked once per binary and run)."""
    out = subprocess.run(
        [binary, "version", "--short"], capture_output=True, text=True, check=False, timeout=30
    ).stdout
    return int(out.strip().lstrip("v").split(".")[0] or 0)


def _release(inv: Invocation, parsed: CommandLine) -> HelmRelease:
    if not parsed.positional:
        raise CommandError(f"helm {' '.join(parsed.sub)} needs a release name")
    name = parsed.positional[0]
    found = inv.session.world.releases.get((parsed.namespace, name))
    if found is None and (parsed.namespace, name) in inv.session.world.uninstalled:
        raise CommandError(
            f"release '{name}' in namespace '{parsed.namespace}' was uninstalled with "
            f"--keep-history: nothing of it runs; `helm rollback {name} REVISION` restores it"
        )
    if found is None:
        installed = [f"{n} (namespace {ns})" for ns, n in inv.session.world.releases]
        raise CommandError(
            f"no release '{name}' in namespace '{parsed.namespace}'; "
            f"{listing('releases', installed)}"
        )
    return found


#: Subcommands whose second word is part of the command (`helm repo add`, `helm show values`).
_TWO_WORD = ("repo", "show", "get", "registry", "search", "dependency", "plugin")

Handler = Callable[[Invocation, CommandLine, str], None]


def helm(inv: Invocation) -> None:
    """`helm SUB ...`: one small handler per subcommand (HANDLERS), or "not modelled"."""
    argv = inv.argv
    if len(argv) < 2:
        raise CommandError("helm: no subcommand")
    binary = missing.require("helm", CommandError)
    parsed = command_line(argv[1:], binary)
    parsed.default_namespace = _helm_namespace(inv)
    if parsed.sub and parsed.sub[0] in HANDLERS:
        problem = value_problem(
            inv.session.process, [binary, "--kubeconfig=/dev/null", *argv[1:]], parsed.sub
        )
        if problem is not None:
            raise CommandError(f"helm {parsed.sub[0]}: {problem}")
    HANDLERS.get(parsed.sub[0] if parsed.sub else "", _not_modelled)(inv, parsed, binary)


def _helm_namespace(inv: Invocation) -> str:
    """The namespace of a helm command without -n/--namespace: HELM_NAMESPACE where the page
    exported it or set it for this command alone (a plain assignment stays in the shell), else
    "default". Helm reads the variable as the flag's default: cli.New() in pkg/cli/environment.go
    (`namespace: os.Getenv("HELM_NAMESPACE")`, bound to `-n` by AddFlags), read at helm/helm
    commits 00249a3 and 6ee9485 (Helm 3); that Helm 4.1.4 and 3.11.1 still do was tried here
    with the installed binaries (`HELM_NAMESPACE=x helm template` renders namespace x, and `-n`
    wins). An empty value leaves it to the kubeconfig, which the guides never set."""
    given = inv.session.program_env() | inv.session.assignments(inv.command)
    return given.get("HELM_NAMESPACE") or "default"


def command_line(words: list[str], binary: str) -> CommandLine:
    """The words after `helm`, split as Helm splits them: which flags take a value is what the
    real Helm's help says, for its global flags (to find the subcommand) and then for the
    subcommand's own."""
    first = CommandLine(words, options(binary), 2).sub
    path = first[:2] if first[:1] and first[0] in _TWO_WORD else first[:1]
    for depth, word in enumerate(path):  # only Helm's own words go on to its help
        known = subcommands(binary, *path[:depth])
        if word not in known:
            command = " ".join(["helm", *path[:depth]])
            raise CommandError(f"{command} has no command '{word}'{closest(word, sorted(known))}")
    return CommandLine(words, options(binary, *path), len(path))


def _flags_checked(handler: Handler) -> Handler:
    """The handler, after the command line's flags are checked against the real Helm's."""

    def checked(inv: Invocation, parsed: CommandLine, binary: str) -> None:
        _check_flags(binary, parsed.sub, parsed)
        handler(inv, parsed, binary)

    return checked


def _not_modelled(inv: Invocation, parsed: CommandLine, binary: str) -> None:
    _check_flags(binary, parsed.sub, parsed)
    raise CommandError(f"helm {parsed.sub[0] if parsed.sub else ''} is not modelled")


def _nothing(inv: Invocation, parsed: CommandLine, binary: str) -> None:
    """Read-only or credential-only subcommands: nothing to model offline."""


def _offline(inv: Invocation, parsed: CommandLine, binary: str) -> None:
    """template, lint, package, show, dependency: run for real on the local chart."""
    session, sub = inv.session, parsed.sub[0]
    _check_flags(binary, parsed.sub, parsed)
    args = list(inv.argv[1:])
    for pos in parsed.positional:
        if pos.startswith("oci://") or (sub == "show" and _local_chart(inv, pos, parsed) is None):
            if not pos.startswith("oci://"):
                raise CommandError(f"'{pos}' cannot be shown offline; only the BeTrace chart is")
            chart = _local_chart(inv, pos, parsed)
            args = _drop_flag([str(chart) if a == pos else a for a in args], "--version")
    try:
        out = _helm(session, binary, args)
    except HelmError as exc:
        raise CommandError(f"Helm rejects it: {_first(str(exc))}") from None
    # what a page renders it means to install: an object the cluster would refuse is a lie
    # (read from what Helm printed: with --output-dir it prints the files it wrote instead)
    if sub == "template" and not parsed.has("--output-dir"):
        try:
            rendered = parse_manifests(out)
        except HelmError as exc:
            raise CommandError(f"the rendered output cannot be read: {_first(str(exc))}") from None
        _values_supported([K8sObject(m.kind, m.name, "", m.doc, "helm template") for m in rendered])
    session.confine(inv.command, [])
    for operator, target in inv.command.redirects:
        # `helm template ... > manifests.yaml`: the reader gets the real output
        session.write(session.expand_target(target), out, append=operator == ">>")


def _repo(inv: Invocation, parsed: CommandLine, binary: str) -> None:
    world = inv.session.world
    action = parsed.sub[1] if len(parsed.sub) > 1 else ""
    if action == "add":
        if len(parsed.positional) != 2:
            raise CommandError("helm repo add takes a name and a URL")
        world.helm_repos[parsed.positional[0]] = parsed.positional[1].rstrip("/")
    elif action in ("update", "list"):
        if not world.helm_repos:
            raise CommandError(f"helm repo {action}: no repository was added earlier on this page")
    else:
        raise CommandError(f"helm repo {action} is not modelled")


def _search(inv: Invocation, parsed: CommandLine, binary: str) -> None:
    if not inv.session.world.helm_repos:
        raise CommandError("helm search repo: no repository was added earlier on this page")


def _inspect(inv: Invocation, parsed: CommandLine, binary: str) -> None:
    """status, history, get: the release must exist, or have been uninstalled with
    --keep-history (they read its last revision: Storage.Last and History, no status asked)."""
    if _kept(inv, parsed) is None:
        _release(inv, parsed)


def _kept(inv: Invocation, parsed: CommandLine) -> HelmRelease | None:
    """The release named, if `helm uninstall --keep-history` removed it."""
    name = parsed.positional[0] if parsed.positional else ""
    return inv.session.world.uninstalled.get((parsed.namespace, name))


def _test(inv: Invocation, parsed: CommandLine, binary: str) -> None:
    """`helm test`, as it goes when the tests pass (the gate goes on after it, as the reader
    does): each test hook is made now (before, it is not in the cluster), in place of the one
    an earlier run left; once all have passed, Helm deletes those whose delete policy has
    hook-succeeded, and leaves the others (hook-failed deletes only after a failure).
    execHookWithDelayedShutdown in pkg/action/hooks.go at helm/helm v4.1.4, execHook at v3.11.1.
    --logs is refused where some Helm the project supports fails it (_logs_problem)."""
    release = _release(inv, parsed)
    hooks = [o for o in release.objects if o.is_hook("test")]
    if not hooks and not release.modelled:
        raise CommandError(f"release '{release.name}' has no test hook")
    problem = _logs_problem(hooks) if parsed.has("--logs") else None
    if problem is not None:
        raise CommandError(f"helm test --logs: {problem}")
    _pods_run(inv.session.world, release, hooks)
    made = {_key(h) for h in hooks}
    for left in (o for o in release.tested if _key(o) in made):
        _replaced(release.name, left, next(h for h in hooks if _key(h) == _key(left)))
    passed = [h for h in hooks if _deleted_when_passed(h)]
    release.tested = [o for o in release.tested if _key(o) not in made]
    release.tested += [h for h in hooks if h not in passed]
    release.hooks_gone = {k: why for k, why in release.hooks_gone.items() if k not in made}
    release.hooks_gone |= {_key(h): _PASSED for h in passed}


#: the Service a URL of a test hook's command calls (its host's first label)
_CALLED = re.compile(r"://([a-z0-9]([-a-z0-9]*[a-z0-9])?)[.:/]")


def _pods_run(world: World, release: HelmRelease, hooks: list[K8sObject]) -> None:
    """A test hook calls a Service once (the URLs in its containers' command and args), so the
    pods behind it must run: refused while they were made anew and nothing waited for them
    (World.not_running). A hook that names no URL is taken as calling nothing."""
    words = [str(w) for h in hooks for c in h.running() for w in _command_words(c)]
    called = {m[1] for w in words for m in _CALLED.finditer(w + "/")}
    for name in sorted(called):
        service = world.find(release.namespace, "Service", name)
        for workload in world.behind(release.namespace, service) if service else []:
            problem = world.not_running(workload)
            if problem is not None:
                raise CommandError(
                    f"helm test {release.name}: {problem}, and the test pod calls Service "
                    f"'{name}' at once; wait first: `kubectl rollout status "
                    f"{workload.kind.lower()}/{workload.name} --namespace "
                    f"{workload.namespace}`, or install with --wait"
                )


def _command_words(container: dict[str, Any]) -> list[Any]:
    """What a container runs: its command and args (lists, as the schema has them)."""
    found = [container.get("command"), container.get("args")]
    return [word for part in found if isinstance(part, list) for word in part]


def _logs_problem(hooks: list[K8sObject]) -> str | None:
    """Why `helm test --logs` fails with some supported Helm, or None. After the run, --logs
    asks for the log of the Pod named as each test hook, whatever the hook's kind (GetPodLogs in
    pkg/action/release_testing.go at helm/helm v3.11.1, v3.21.4, v4.1.4 and v4.2.4; at v3.11.1
    also for the hooks a --filter skipped, so every test hook counts here; helm/helm#32129,
    which skips other kinds, is in none of these). Helm 4.0.5 and later read the logs before
    deleting the passed hooks (execHookWithDelayedShutdown in pkg/action/hooks.go at v4.0.5 and
    v4.1.4); Helm 3, through v3.21.4, and Helm 4 before 4.0.5 delete them first (execHook,
    called by ReleaseTesting.Run), so a pod under hook-succeeded is gone and the command fails:
    helm/helm#9098."""
    for hook in hooks:
        if hook.kind != "Pod":
            return (
                f"the test hook {hook.kind} '{hook.name}' is no Pod, yet --logs asks for the log "
                f"of a Pod named '{hook.name}' (every Helm does), and fails: `unable to get pod "
                f"logs for {hook.name}`; run `helm test` alone"
            )
        if _deleted_when_passed(hook):
            return (
                f"the test hook Pod '{hook.name}' has hook-succeeded in its "
                "helm.sh/hook-delete-policy: Helm 3 (every release through 3.21) and Helm 4 "
                "before 4.0.5 delete it once the test passed, before --logs reads it, and the "
                f"command fails with `unable to get pod logs for {hook.name}` (helm/helm#9098). "
                "Run `helm test` alone: a failed test's pod is kept, and then `kubectl logs "
                f"pod/{hook.name} --namespace {hook.namespace}` shows its log"
            )
    return None


#: why a passed test's hook is not in the cluster any more
_PASSED = (
    "Helm deleted it when `helm test` passed (its helm.sh/hook-delete-policy has "
    "hook-succeeded); a failed test's pod is kept, and its log can be read then"
)


def _key(obj: K8sObject) -> tuple[str, str, str]:
    return obj.namespace, obj.kind, obj.name


def _delete_policies(hook: K8sObject) -> list[str]:
    """A hook's delete policies as Helm reads helm.sh/hook-delete-policy: split at commas, each
    trimmed and lower-cased (operateAnnotationValues in pkg/release/v1/util/manifest_sorter.go
    at helm/helm v4.1.4, pkg/releaseutil/manifest_sorter.go at v3.11.1); without the
    annotation, before-hook-creation alone (hookSetDeletePolicy in pkg/action/hooks.go at
    v4.1.4, execHook at v3.11.1). An empty annotation is one empty policy, not the default."""
    annotations = (hook.doc.get("metadata") or {}).get("annotations") or {}
    text = annotations.get("helm.sh/hook-delete-policy")
    if text is None:
        return ["before-hook-creation"]
    return [p.strip().lower() for p in str(text).split(",")]


def _deleted_when_passed(hook: K8sObject) -> bool:
    """Helm never deletes a CustomResourceDefinition hook (deleteHookByPolicy, same files)."""
    return hook.kind != "CustomResourceDefinition" and "hook-succeeded" in _delete_policies(hook)


def _replaced(release: str, left: K8sObject, hook: K8sObject) -> None:
    """The hook an earlier `helm test` left is deleted before the new one is made only under
    before-hook-creation (read on the new hook); otherwise making it again fails."""
    if "before-hook-creation" in _delete_policies(hook):
        return
    raise CommandError(
        f"helm test {release}: {left.kind} '{left.name}', left by the earlier `helm test`, is "
        "still there, and its helm.sh/hook-delete-policy has no before-hook-creation to delete "
        "it first: Helm 3 cannot create it again (it already exists); Helm 4, applying "
        "server-side, applies it over the old, finished pod, which does not run again"
    )


def _rollback(inv: Invocation, parsed: CommandLine, binary: str) -> None:
    """`helm rollback NAME [REVISION]`: a new revision with the chart, objects and values of
    REVISION (read by strconv.Atoi; without one, or 0, the revision before the current one;
    a negative one is refused: errInvalidRevision in pkg/action/rollback.go), as Helm's
    Rollback.prepareRollback makes it (pkg/action/rollback.go at helm/helm 00669cd); REVISION
    must be one the history limit kept: prepareRollback reads it from the stored revisions and
    fails without it ("release has no N version" at v4.1.4; the storage's "release: not found"
    at v3.11.1, pkg/action/rollback.go and pkg/storage/driver/driver.go)."""
    kept = _kept(inv, parsed)
    release = kept if kept is not None else _release(inv, parsed)
    word = parsed.positional[1] if len(parsed.positional) > 1 else "0"
    try:
        number = go_int(word, 10)
    except GoNumberError as exc:
        raise CommandError(
            f"helm rollback: the revision is a number, not '{word}' (Helm: could not convert "
            f"revision to a number: strconv.Atoi: parsing {go_quote(word)}: {exc})"
        ) from None
    if number < 0:
        raise CommandError(f"helm rollback: invalid release revision {number}")
    number = number or release.revision - 1
    revisions = {r.revision: r for r in [*release.history, release]}
    if number not in revisions:
        known = ", ".join(str(n) for n in sorted(revisions))
        pruned = release.pruned.get(number)
        if pruned is not None:
            raise CommandError(
                f"release '{release.name}' no longer has revision {number}: {pruned}; "
                f"it has {known}"
            )
        raise CommandError(f"release '{release.name}' has no revision {number} (it has {known})")
    restored = replace(revisions[number], objects=list(revisions[number].objects), history=[])
    _supersede(release, restored, _history_max(inv, parsed), "rollback", kept is None)
    inv.session.world.uninstalled.pop((release.namespace, release.name), None)
    # what the restored pods reference may be gone since (a Secret deleted after an upgrade)
    _settle(inv, "rollback", restored, _waits(parsed))


def _uninstall(inv: Invocation, parsed: CommandLine, binary: str) -> None:
    """The release's objects leave the cluster, but those helm.sh/resource-policy: keep. Helm
    purges its revisions, or with --keep-history keeps them, the last marked uninstalled, for
    `helm rollback`, `helm install --replace`, status, history and get. A kept release is
    purged by an uninstall without --keep-history, and one with it fails: Uninstall.Run in
    pkg/action/uninstall.go at helm/helm v3.11.1 and v4.1.4."""
    world = inv.session.world
    kept = _kept(inv, parsed)
    if kept is not None:
        if parsed.has("--keep-history"):
            raise CommandError(
                f'helm uninstall: the release named "{kept.name}" is already deleted (it was '
                "uninstalled with --keep-history)"
            )
        del world.uninstalled[(kept.namespace, kept.name)]
        return
    release = _release(inv, parsed)
    del world.releases[(release.namespace, release.name)]
    if parsed.has("--keep-history"):
        world.uninstalled[(release.namespace, release.name)] = replace(
            release, tested=[], hooks_gone={}
        )
    # Objects annotated helm.sh/resource-policy: keep outlive the release (PVCs, usually);
    # those `kubectl delete` deleted are gone (and Helm's Client.Delete skips what it does not
    # find: "Ignoring delete failure", pkg/kube/client.go at v3.11.1; "ignoring delete failure"
    # at v4.1.4)
    for obj in (o for o in release.objects if not any(o is d for d in release.deleted)):
        annotations = (obj.doc.get("metadata") or {}).get("annotations") or {}
        if annotations.get("helm.sh/resource-policy") == "keep":
            world.objects.append(obj)


HANDLERS: dict[str, Handler] = {
    "install": lambda inv, parsed, binary: install(inv, parsed, upgrade=False),
    "upgrade": lambda inv, parsed, binary: install(inv, parsed, upgrade=True),
    **dict.fromkeys(("template", "lint", "package", "show", "dependency"), _offline),
    "repo": _repo,
    "registry": _nothing,  # login/logout: credentials only, nothing to check offline
    "search": _search,
    **dict.fromkeys(("status", "history", "get"), _flags_checked(_inspect)),
    "test": _flags_checked(_test),
    "rollback": _flags_checked(_rollback),
    **dict.fromkeys(("uninstall", "delete"), _flags_checked(_uninstall)),
    **dict.fromkeys(("list", "ls", "version", "env"), _flags_checked(_nothing)),
}


MODELS = {"helm": helm}
