"""What answers on a port the page forwarded or started: read from the container there (its
image, its own variables), as the Compose model reads a service, never from a Service's name or
a label; and a backend started by hand listens where its own variables say."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from betrace_dist.gate.commands import models
from betrace_dist.gate.session import CommandError, Session
from betrace_dist.gate.shellwords import split

from .conftest import require_tool

REGISTRY = "registry.example.com/betrace"


@pytest.fixture
def session() -> Iterator[Session]:
    require_tool("helm")
    require_tool("kubectl")
    s = Session(timeout=60)
    yield s
    s.close()


def run(session: Session, script: str) -> None:
    session.run(split(script), models())


def _install(session: Session, *values: str) -> str:
    """The Kubernetes guide's build of the backend image and the chart's install."""
    version = session.release.current.version
    sets = "".join(f" --set {v}" for v in values)
    return (
        f"docker build --target backend --build-context patches=patches "
        f"-t {REGISTRY}/backend:{version} docker/\n"
        f"helm install betrace ./helm/betrace --namespace betrace --create-namespace "
        f"--set image.registry={REGISTRY}{sets}\n"
    )


def test_a_port_forward_reaches_the_http_port_the_values_set(session: Session) -> None:
    """The chart's backend.ports.http moves the server and the Service together; the model took
    the release's default port for every port-forward and refused the page."""
    run(
        session,
        _install(session, "backend.ports.http=9000")
        + "kubectl -n betrace port-forward svc/betrace-backend 9000:9000\n"
        + "curl -fsS http://localhost:9000/v1/health\n",
    )


def test_a_port_forward_to_the_grpc_port_is_not_http(session: Session) -> None:
    grpc = session.release.current.backend.ports["grpc"].port
    with pytest.raises(CommandError, match=f"port {grpc} of the backend is not its HTTP server"):
        run(
            session,
            _install(session)
            + f"kubectl -n betrace port-forward svc/betrace-backend {grpc}:{grpc}\n"
            + f"curl -fsS http://localhost:{grpc}/v1/health\n",
        )


NGINX = """\
cat > fake.yaml <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: betrace-backend
  labels: {app.kubernetes.io/component: backend}
spec:
  selector: {matchLabels: {app: fake}}
  template:
    metadata:
      labels: {app: fake, app.kubernetes.io/component: backend}
    spec:
      containers:
        - name: backend
          image: nginx:1.27
          ports: [{containerPort: 80}]
---
apiVersion: v1
kind: Service
metadata:
  name: betrace-backend
  labels: {app.kubernetes.io/component: backend}
spec:
  selector: {app: fake}
  ports: [{port: 12011, targetPort: 80}]
YAML
kubectl apply -f fake.yaml
"""


def test_a_service_named_and_labelled_backend_that_runs_nginx_is_not_the_backend(
    session: Session,
) -> None:
    """A port-forward's role came from its Service's component label, or its name."""
    with pytest.raises(CommandError, match=r"nothing known is served .*image nginx:1\.27"):
        run(
            session,
            NGINX
            + "kubectl port-forward svc/betrace-backend 12011:12011\n"
            + "curl -fsS http://localhost:12011/v1/health\n",
        )


def test_scaling_is_refused_for_the_backends_image_not_for_a_label(session: Session) -> None:
    run(session, NGINX + "kubectl scale deploy/betrace-backend --replicas=2\n")
    with pytest.raises(CommandError, match="it runs exactly one replica"):
        run(
            session,
            _install(session) + "kubectl -n betrace scale deploy/betrace-backend --replicas=2\n",
        )


def test_a_backend_started_on_another_port_serves_http_there(session: Session) -> None:
    """The Nix model recorded the release's default as the port behind the listener, so a
    backend started with BETRACE_PORT_BACKEND=9000 was refused as not serving HTTP on 9000."""
    commit = session.release.current.upstream.commit
    run(
        session,
        f"nix build github:betrace-hq/betrace/{commit}#backend\n"
        "BETRACE_PORT_BACKEND=9000 ./result/bin/betrace-backend &\n"
        "curl -fsS http://localhost:9000/v1/health\n",
    )
