"""Manifests and values files are read as Kubernetes' YAML library reads them (yamlio.
as_kubernetes_reads): kubectl and Helm take an unquoted `yes` for a boolean and `0755` for
493, where YAML 1.2 reads the string and 755. The attack on the gate's parsers found
`data: {enabled: yes}` passing the kubectl model, which the API server refuses. The reading is
held to the real Helm 3 and 4, which use the same library, every run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from betrace_dist import yamlio
from betrace_dist.gate.session import CommandError, Session

from .conftest import require_tool, run

SCALARS = {
    "a": "yes", "b": '"yes"', "c": "On", "d": "y", "e": "No", "f": "0755", "g": "1:20",
    "h": "true", "i": "off", "j": "'on'", "k": "12011", "l": "1.5", "m": "N", "n": "0",
    # the review of the first reading: anchors, tags, other bases, signs, dates, keys
    "o": "&x yes", "p": "*x", "q": "!!str yes", "r": "!custom foo", "s": "0x010",
    "t": "0o017", "u": "0b01010", "v": "-0755", "w": "2024-01-01", "x": "2024-01-01T10:00:00Z",
    "true": "1", "0755": "2",
}  # fmt: skip


@pytest.mark.parametrize("binary", ["helm", "helm3"])
def test_scalars_are_read_as_helm_reads_them(binary: str, tmp_path: Path) -> None:
    chart = tmp_path / "c"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: c\nversion: 0.1.0\n")
    (chart / "templates" / "t.yaml").write_text(
        "{{ range $k, $v := .Values }}{{ $k }}: {{ kindOf $v }} {{ $v }}\n{{ end }}"
    )
    values = "".join(f"{k}: {v}\n" for k, v in SCALARS.items())
    (tmp_path / "v.yaml").write_text(values)
    done = subprocess.run(
        [require_tool(binary), "template", "r", str(chart), "-f", str(tmp_path / "v.yaml")],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    printed = [line for line in done.stdout.splitlines() if not line.startswith(("#", "---"))]
    helm = dict(line.split(": ", 1) for line in printed)
    (ours,) = yamlio.as_kubernetes_reads(values, "v.yaml")
    assert sorted(ours) == sorted(helm), (ours, helm)  # keys too: Helm reads `n:` as `false:`
    for key, value in ours.items():
        kind, shown = helm[key].split(" ", 1)
        if isinstance(value, bool):
            assert (kind, shown) == ("bool", str(value).lower()), (key, helm[key])
        elif isinstance(value, (int, float)):
            assert kind == "float64" and float(shown) == value, (key, helm[key])
        else:
            assert (kind, shown) == ("string", value), (key, helm[key])


def test_a_manifest_s_unquoted_yes_is_a_boolean_to_kubectl(session: Session) -> None:
    manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: f\ndata:\n  enabled: {}\n"
    bad, good = manifest.format("yes"), manifest.format('"yes"')
    said = r"data\.enabled: True is not of type 'string'.* as a boolean: quote it"
    with pytest.raises(CommandError, match=said):
        run(session, f"cat > cm.yaml <<'EOF'\n{bad}EOF\nkubectl apply -f cm.yaml\n")
    run(session, f"cat > ok.yaml <<'EOF'\n{good}EOF\nkubectl apply -f ok.yaml\n")


def test_a_stream_s_document_that_grows_past_the_bounds_is_refused_at_its_line() -> None:
    """Aliases that multiply in a later document are refused at the line where the document
    passes the bound (line 8: `g`, the seventh level of ten), one that contains itself at its
    own line. Documents are read in order, so a problem in an earlier one is named first."""
    laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdef", "bcdefg", strict=True)
    )
    for second, line in ((laughs, 8), ("x: &x [*x]\n", 3)):
        with pytest.raises(yamlio.ProblemsError, match=rf"^m\.yaml:{line}: YAML refused"):
            yamlio.as_kubernetes_reads("kind: A\n---\n" + second, "m.yaml")
    earlier = "a: 1\na: 2\n---\n" + laughs
    with pytest.raises(yamlio.ProblemsError, match=r"^m\.yaml:2: .*duplicate key"):
        yamlio.as_kubernetes_reads(earlier, "m.yaml")


def test_each_document_is_composed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bounds are checked on the node the document is built from: a stream of three
    documents is composed three times, not six (the first reading composed it for its bounds,
    then again to build it)."""
    from ruamel.yaml.composer import Composer

    composed = []
    real = Composer.compose_document

    def counted(self: Composer) -> object:
        composed.append(1)
        return real(self)

    monkeypatch.setattr(Composer, "compose_document", counted)
    read = yamlio.as_kubernetes_reads("kind: A\n---\nkind: B\n---\nkind: C\n", "m.yaml")
    assert read == [{"kind": "A"}, {"kind": "B"}, {"kind": "C"}]
    assert len(composed) == 3
