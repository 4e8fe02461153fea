"""The page sandbox: real file commands stay inside it, hung commands are killed with their
process group, and the real repository and home are never touched."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from betrace_dist import REPO_ROOT
from betrace_dist.gate.session import CommandError, Session
from betrace_dist.gate.shellwords import SUBSTITUTED

from .conftest import run

pytestmark = pytest.mark.gate_session(timeout=2)


def test_state_carries_across_blocks(session: Session) -> None:
    run(session, "mkdir -p work\ncd work\nexport GREETING=hello\n")
    run(session, 'echo "$GREETING" > note.txt\n')
    assert (session.repo / "work" / "note.txt").read_text() == "hello\n"


def test_a_block_cannot_write_outside_its_sandbox(session: Session) -> None:
    marker = f"escaped-{uuid.uuid4().hex}"
    with pytest.raises(CommandError, match="leads out of the page's sandbox"):
        run(session, f"cp README.md ../../../{marker}\n")
    with pytest.raises(CommandError, match="outside the page's sandbox"):
        run(session, f"echo x > /tmp/{marker}\n")
    assert not list(Path("/tmp").glob(f"{marker}*"))  # noqa: S108 - proving nothing was written there
    assert not (REPO_ROOT.parent / marker).exists()


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("cd no-such-dir\n", "cd: there is no directory 'no-such-dir' at this point of the page"),
        ("cd /\n", "the gate will not change to '/': it is outside the page's sandbox"),
        ("export GREETING\n", "export: 'GREETING' was not set earlier on this page"),
        ("frobnicate --all\n", "no command model for 'frobnicate': add one to the gate, or skip"),
        ("echo $(frobnicate)\n", "no command model for 'frobnicate'"),
    ],
)  # fmt: skip
def test_a_command_the_gate_cannot_follow_is_refused(
    session: Session, script: str, message: str
) -> None:
    with pytest.raises(CommandError) as caught:
        run(session, script)
    assert str(caught.value).startswith(message), caught.value


@pytest.mark.parametrize("target", ["/etc/ssh", "/proc/self/cwd", "/no/such/folder"])
def test_cd_through_a_planted_link_says_nothing_of_where_it_leads(
    session: Session, target: str
) -> None:
    """The gate resolves with its own rights: a link of the page must not tell the page what
    lies (or whether anything lies) where its jail hides it."""
    (session.repo / "p").symlink_to(target)
    with pytest.raises(CommandError) as caught:
        run(session, "cd p\n")
    message = str(caught.value)
    assert message.startswith("the gate will not change to"), message
    assert target not in message and str(Path.cwd()) not in message


def test_cd_takes_dot_dot_by_text_as_bash_does(session: Session) -> None:
    """bash's `cd` (-L): `cd w/..` and `cd ..` from `w` (a link to work/deeper) go back to
    the clone, where the kernel's '..' would go to work; files resolve as the kernel finds
    them (`../mark` from `w` is work/mark). The gate took the kernel's way for `cd` too."""
    run(session, "mkdir -p work/deeper\n")
    assert session.bash("ln -s work/deeper w", check=False).returncode == 0  # in the jail
    run(session, "cd w/..\n")
    assert session.cwd == session.repo
    run(session, "cd w\n")
    assert session.cwd == session.repo / "w"
    assert session.bash("pwd -P", check=False).stdout.strip() == str(session.repo / "work/deeper")
    assert session.real_path(session.path("../mark")) == session.repo / "work" / "mark"
    run(session, "cd ..\n")
    assert session.cwd == session.repo


def test_pwd_and_cd_options_are_those_of_a_readers_shell(session: Session) -> None:
    """After `cd lnk` (a link to real), a reader's `pwd` and $PWD name the link; `cd -P`
    takes the real folder, and `cd --` ends the options."""
    run(session, "mkdir -p real\n")
    assert session.bash("ln -s real lnk", check=False).returncode == 0  # in the jail
    run(session, "cd -- lnk\n")
    assert (
        session.bash('pwd; echo "$PWD"', check=False).stdout.split()
        == [str(session.repo / "lnk")] * 2
    )
    run(session, "cd -P .\n")
    assert session.cwd == session.repo / "real"


def test_builtins_and_assignments_change_the_state_later_commands_see(session: Session) -> None:
    run(session, "mkdir -p work\ncd work\nNAME=a\nexport OTHER=b\n")
    assert session.cwd == session.repo / "work"
    assert session.env["NAME"] == "a" and session.env["OTHER"] == "b"
    # as in bash, only an exported variable reaches the programs the page starts; assigning
    # one exported earlier keeps it exported
    assert "OTHER" in session.exported and "NAME" not in session.exported
    run(session, "OTHER=c\n")
    assert session.env["OTHER"] == "c" and "OTHER" in session.exported
    run(session, "cd\n")
    assert session.cwd == session.home  # `cd` alone goes home


def test_home_is_the_sandbox_home(session: Session) -> None:
    marker = f"note-{uuid.uuid4().hex}.txt"
    run(session, f"echo x > ~/{marker}\n")
    assert (session.home / marker).is_file()
    assert not (Path.home() / marker).exists()


def test_a_hung_command_is_killed_with_its_process_group(session: Session) -> None:
    marker = f"hang-{uuid.uuid4().hex}"
    with pytest.raises(CommandError, match=r"did not finish within 2 s"):
        run(session, f"tail -f /dev/null {marker} 2>/dev/null | cat\n")
    left = [
        p for p in Path("/proc").iterdir()
        if p.name.isdigit() and marker.encode() in _cmdline(p)
    ]  # fmt: skip
    assert left == [], "a process of the block survived its timeout"


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""


def test_the_environment_is_clean(session: Session) -> None:
    os.environ["BETRACE_LEAK_CHECK"] = "secret"
    try:
        fresh = Session()
        assert "BETRACE_LEAK_CHECK" not in fresh.env
        assert fresh.env["HOME"] == str(fresh.home)
        assert fresh.env["DOCKER_HOST"].startswith("unix://" + str(fresh.tmp))
        fresh.close()
    finally:
        del os.environ["BETRACE_LEAK_CHECK"]


def test_closing_removes_the_sandbox() -> None:
    s = Session()
    tmp = s.tmp
    assert (tmp / "distribution" / "releases.yaml").is_file()
    s.close()
    assert not tmp.exists()


def test_content_tab_states_live_in_the_sandbox_a_later_run_sweeps() -> None:
    """A gate killed mid-page leaves its sandbox, which the next run removes (sandbox.sweep_stale,
    by the sandbox's PID); the tab states' copies are inside it, never a folder of their own."""
    s = Session()
    try:
        store = s._snapshots.store
        assert store.is_dir() and store.is_relative_to(s.sandbox.gate), store
    finally:
        s.close()
    assert not store.exists()


@given(
    st.lists(
        st.text(alphabet="abcXYZ019_./:=,@%+-", min_size=1, max_size=12), min_size=1, max_size=5
    )
)
@settings(max_examples=60, deadline=None)
def test_words_taken_as_they_are_are_the_words_bash_would_give(words: list[str]) -> None:
    """Session.expand skips the jailed bash for plain words: bash must give them unchanged."""
    from betrace_dist.gate.session import PLAIN_WORD

    assert all(PLAIN_WORD.fullmatch(w) for w in words)
    done = subprocess.run(
        ["bash", "-c", 'printf "%s\\0" ' + " ".join(words)],
        capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.stdout.split("\0")[:-1] == words


CHANGED_BY_BASH = ["$HOME", "~/x", "a*", "a?", "[ab]", "{a,b}", "'q'", '"q"', "#c", "a\\b"]
CHANGED_BY_BASH += ["$(id)", "`id`", "a b", "x=~/y", "!x", "a;b"]


@pytest.mark.parametrize("word", CHANGED_BY_BASH)
def test_a_word_bash_could_change_goes_to_bash(word: str) -> None:
    from betrace_dist.gate.session import PLAIN_WORD

    assert PLAIN_WORD.fullmatch(word) is None


@pytest.mark.parametrize("assign", ["", "export "])
def test_a_modelled_command_in_a_substitution_never_runs_for_real(
    session: Session, assign: str
) -> None:
    """`$(kubectl get secret ...)` is checked against the kubectl model; expanding the
    assignment must not then run the real kubectl (which would look for an API server): the
    variable holds the placeholder, not what a failed real run printed (nothing)."""
    run(session, "kubectl create namespace demo\n")
    run(session, "kubectl create secret generic s --namespace demo --from-literal=p=x\n")
    run(
        session,
        f"{assign}P=\"$(kubectl get secret s --namespace demo -o jsonpath='{{.data.p}}')\"\n",
    )
    assert session.env["P"] == SUBSTITUTED
    run(session, 'K="$(printf %s abc)"\n')  # a file command in a substitution runs for real
    assert session.env["K"] == "abc"


def test_a_redirect_target_made_by_a_command_is_refused(session: Session) -> None:
    with pytest.raises(CommandError, match="made by a command substitution: not modelled"):
        run(session, 'echo x > "$(kubectl get ns -o name)"\n')


def test_the_clone_pages_start_from_is_named_for_the_sweep() -> None:
    """The copy of the reader's clone is removed at exit; a killed run cannot, so it is named as
    sandboxes are (betrace-page-<PID>-...) and the next run's sweep removes it with them."""
    from betrace_dist.gate import sandbox
    from betrace_dist.gate.session import _pristine

    name = _pristine().parent.name
    found = sandbox._STALE.fullmatch(name)
    assert found and int(found[1]) == os.getpid(), name


#: Commands whose models look at a file or folder the page names, with {p} for the path: each
#: asks with the gate's rights, so a path outside the sandbox is refused before it is looked at.
NAMING_A_PATH = [
    "kubectl apply -f {p}",
    "curl -sS --json @{p} http://localhost:12011/api/rules",
    "make check PAGE={p}",
    "docker compose -f {p} config",
    "cd docker\ndocker compose --env-file {p} config -q",
    "docker build -f {p} .",
    "docker build {p}",
    "nix eval {p}#x",
]


@pytest.mark.parametrize("command", NAMING_A_PATH)
def test_a_model_says_nothing_of_whether_a_path_outside_the_sandbox_exists(
    command: str,
) -> None:
    """`/etc/passwd` exists on every machine, `/no/such/file` on none: the refusal must read the
    same for both (the page learns nothing of the machine), and name the sandbox as the reason."""
    said = []
    for path in ("/etc/passwd", "/no/such/file"):
        s = Session(timeout=30)
        try:
            with pytest.raises(CommandError) as caught:
                run(s, command.format(p=path) + "\n")
        finally:
            s.close()
        said.append(str(caught.value).replace(path, "<path>"))
    assert said[0] == said[1], said
    assert said[0].startswith("the gate will not read '<path>': it is outside the page's sandbox")


def test_git_tag_reads_the_clones_release_data_never_through_a_planted_link() -> None:
    """`git tag` checks the tag against the clone's releases.yaml, which the page had in its
    hands: a link to /etc/shadow planted there (by a command run for real in the jail) was read
    with the gate's rights and printed line by line in the release data's errors."""
    s = Session(timeout=30)
    try:
        run(s, "sed -n '1e ln -sf /etc/shadow releases.yaml' README.md\n")
        with pytest.raises(CommandError) as caught:
            run(s, "git tag v0.0.1\n")
        assert "leads out of the page's sandbox" in str(caught.value)
        assert "root:" not in str(caught.value)
        run(s, "sed -n '1e rm releases.yaml; echo \"version: [\" > releases.yaml' README.md\n")
        with pytest.raises(CommandError, match=r"the clone.s releases\.yaml is no valid release"):
            run(s, "git tag v0.0.1\n")
    finally:
        s.close()


#: (set-up, the name a model adds itself, the command): each model looks at a file it names
#: itself in the page's folder, which the page may have made a link.
FIXED_NAMES = [
    ("mkdir -p m\ncd m\n", "Makefile", "make all"),
    ("mkdir -p c\ncd c\nprintf 'services:\\n  a:\\n    image: b\\n' > compose.yaml\n", ".env",
     "docker compose config -q"),
    ("mkdir -p d\ncd d\n", "Dockerfile", "docker build ."),
    ("mkdir -p n\ncd n\n", "flake.nix", "nix eval .#x"),
]  # fmt: skip


def _refusal(setup: str, plant: str, command: str) -> str:
    s = Session(timeout=30)
    try:
        run(s, setup)
        run(s, f"sed -n '1e {plant}' {s.repo / 'README.md'}\n")  # run for real, in the jail
        with pytest.raises(CommandError) as caught:
            run(s, command + "\n")
        return str(caught.value).replace(str(s.tmp), "<sandbox>")
    finally:
        s.close()


@pytest.mark.parametrize(("setup", "name", "command"), FIXED_NAMES)
def test_a_name_a_model_adds_itself_is_looked_at_only_beneath_the_sandbox(
    setup: str, name: str, command: str
) -> None:
    """`where` checked the path the page named, not `Makefile`, `.env`, `Dockerfile` or
    `flake.nix` that the model appends: a link there to /etc/passwd and to a missing file gave
    two different answers (the page learnt what exists)."""
    said = [_refusal(setup, f"ln -s {target} {name}", command) for target in EXISTS_OR_NOT]
    assert said[0] == said[1], said
    assert "leads out of the page's sandbox" in said[0]


def test_a_flakes_path_input_is_resolved_beneath_the_sandbox(tool: Callable[[str], str]) -> None:
    """A relative `path:` input of a page's flake.nix is passed to Nix by its absolute path: it
    was resolved with Path.resolve, with the gate's rights, so a path climbing out was looked at
    outside the sandbox, and Nix then said different things of one that exists and one that
    does not."""
    flake = 'inputs.x = {{ url = "path:{climb}{target}"; }}; outputs = _: {{ y = 1; }};'
    tool("nix")
    climb = "../" * 40
    said = []
    for target in ("etc/ssl", "no/such"):
        text = flake.format(climb=climb, target=target)
        setup = f"mkdir -p n\ncd n\necho '{{ {text} }}' > flake.nix\ngit add flake.nix\n"
        with pytest.raises(CommandError) as caught:
            s = Session(timeout=60)
            try:
                run(s, setup)
                run(s, "nix eval .#y\n")
            finally:
                s.close()
        said.append(str(caught.value).replace(target, "<target>"))
    assert said[0] == said[1], said
    assert "leads out of the page's sandbox" in said[0], said[0]


#: Two targets outside the sandbox: one every machine has, one none has.
EXISTS_OR_NOT = ("/etc/passwd", "/no/such/file")


def test_cd_and_writers_never_pass_through_a_folder_outside() -> None:
    """`cd`, a `git clone` target and the file commands' targets are resolved by the kernel
    beneath the sandbox: a link that leaves it and comes back ('/etc/ssl/../../<sandbox>/e') is
    refused as leading out, in the same words as one through a folder that does not exist
    (Path.resolve, used before, looked at the folder outside and let both through)."""
    plant = "ln -s {base}/../..$(pwd)/e d"
    setup = "mkdir -p e\n"
    clone = "git clone https://github.com/betrace-hq/distribution d/c"
    for command in ("cd d", "mkdir d/x", clone):
        said = [_refusal(setup, plant.format(base=b), command) for b in ("/etc/ssl", "/no/such")]
        assert said[0] == said[1], said
        assert "leads out of the page's sandbox" in said[0], said[0]


@pytest.mark.parametrize(
    "command",
    [
        "cd missing/../link",
        "git clone https://github.com/betrace-hq/distribution missing/../link/x",
    ],
)
def test_a_link_after_a_missing_folder_and_dot_dot_is_not_followed(command: str) -> None:
    """'missing/../link': the kernel stops at 'missing'; the path must not be finished by text
    (the gate then looked through 'link' with its own rights, and told what exists there)."""
    said = [_refusal("", f"ln -s {target} link", command) for target in ("/root", "/no/such")]
    assert said[0] == said[1], said
    # cd takes '..' by text (as bash does) and meets the link; clone is refused at 'missing'
    assert "leads out of" in said[0] or "No such file or directory" in said[0], said[0]


def test_a_writer_climbing_out_past_a_missing_folder_is_refused(session: Session) -> None:
    """`mkdir -p m/../../../../zz` makes m, then climbs past the sandbox: the kernel finds
    only that m is missing, so the climb is counted by text."""
    with pytest.raises(CommandError, match="leads out of the page's sandbox"):
        run(session, "mkdir -p m/../../../../zz\n")


def test_a_link_to_nothing_is_not_a_place_to_write() -> None:
    said = _refusal(
        "", "ln -s nothing-here link", "git clone https://github.com/betrace-hq/distribution link"
    )
    assert "it is a link to nothing" in said, said


def test_a_path_of_many_folders_is_resolved_without_recursion(session: Session) -> None:
    """1,100 folders deep: each missing one was one more call of a recursion (past Python's
    limit, a RecursionError ended the whole run); found in a loop now."""
    deep = "/".join(["a"] * 1100)
    run(session, f"mkdir -p {deep}\n")
    assert session.real_path(session.repo / deep / "b") == session.repo / deep / "b"


def test_the_working_folder_is_entered_in_the_jail_only(tmp_path: Path) -> None:
    """The page's working folder, swapped for a link to a folder of the machine the jail hides
    (one that exists, one that does not): the programs that build the jail were started in it
    with the gate's rights, and the two gave different answers. Both are entered by bwrap
    inside the jail now, where neither exists."""
    setup = "mkdir -p d\ncd d\n"
    plant = "mv ../d ../d0 && ln -s {} ../d"
    said = [_refusal(setup, plant.format(t), "echo hi") for t in (tmp_path, tmp_path / "none")]
    assert said[0] == said[1], said


@pytest.mark.parametrize("target", ["/proc/self/fd/3", "/proc/self/fd/4", "/proc/self/cwd"])
def test_a_working_folder_swapped_for_a_proc_link_leads_nowhere(target: str) -> None:
    """bwrap changed into the page's folder as root, holding the machine's /proc as its fd 3:
    a folder swapped for a link to /proc/self/fd/3 put the page's next command in the
    machine's /proc (every process of the machine, and through a root-owned process's
    `root` link the machine's whole file system). Entered as the page's user now."""
    s = Session(timeout=30)
    try:
        run(s, "mkdir -p d\ncd d\n")
        run(s, f"sed -n '1e mv ../d ../d0 && ln -s {target} ../d' {s.repo / 'README.md'}\n")
        done = s.bash("ls -A | head -50; cat sys/kernel/hostname 2>/dev/null", check=False)
        seen = set(done.stdout.split())
        assert not {"1", "self", "sys", "kcore", "cmdline"} & seen, done.stdout
    finally:
        s.close()


def test_what_a_page_read_is_looked_at_beneath_the_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Which files of the clone a page read (for the result cache) was found by lstat of each
    file's path as text: a folder swapped for a link (docs -> a folder of the machine) was
    followed with the gate's rights, once per file under it. Every look the gate makes now
    lands in the sandbox."""
    s = Session(timeout=30)
    looked_outside: list[str] = []
    busy = threading.local()
    real_lstat, real_stat = os.lstat, os.stat

    def note(path: object, dir_fd: int | None) -> None:
        if getattr(busy, "on", False) or not isinstance(path, str | Path):
            return
        busy.on = True
        try:
            base = Path(f"/proc/self/fd/{dir_fd}").readlink() if dir_fd is not None else Path()
            where = Path(os.path.realpath(base / path))
            if where == tmp_path or tmp_path in where.parents:  # where the planted link leads
                looked_outside.append(str(where))
        finally:
            busy.on = False

    def lstat(path: object, *, dir_fd: int | None = None) -> os.stat_result:
        note(path, dir_fd)
        return real_lstat(path, dir_fd=dir_fd)  # type: ignore[arg-type]

    def stat(path: object, *, dir_fd: int | None = None, follow_symlinks: bool = True) -> object:
        note(path, dir_fd)
        return real_stat(path, dir_fd=dir_fd, follow_symlinks=follow_symlinks)  # type: ignore[arg-type]

    try:
        run(s, f"sed -n '1e mv docs docs0 && ln -s {tmp_path} docs' {s.repo / 'README.md'}\n")
        with monkeypatch.context() as patched:
            patched.setattr(os, "lstat", lstat)
            patched.setattr(os, "stat", stat)
            s.reads()
    finally:
        s.close()
    assert looked_outside == [], looked_outside[:3]


@pytest.mark.parametrize("command", ["make all", "docker compose config -q"])
def test_a_working_folder_swapped_for_a_link_tells_nothing(command: str) -> None:
    """The page's working folder, checked at `cd`, replaced later by a link that passes through
    a folder outside ('/etc/../<sandbox>/e' or '/no/such/../<sandbox>/e'): refused alike."""
    setup = "mkdir -p d e\nprintf 'all:\\n\\ttrue\\n' > e/Makefile\ncp e/Makefile e/compose.yaml\n"
    said = [
        _refusal(
            setup + "cd d\n",
            f"mv ../d ../d0 && ln -s {base}/../../$(cd .. \\&\\& pwd)/e ../d",
            command,
        )
        for base in ("/etc/ssl", "/no/such")
    ]
    assert said[0] == said[1], said
    assert "leads out of the page's sandbox" in said[0]


@pytest.mark.parametrize("command", ["kubectl x/evil get pods", "helm x/evil list"])
def test_a_pages_word_never_reaches_a_tools_help_as_a_subcommand(
    command: str, tool: Callable[[str], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gate reads the tools' help with its own rights, outside the jail. It asked kubectl
    for the help of the page's first word: `kubectl x/evil --help` runs a plugin
    `kubectl-x/evil` found from the working folder, a file the same pull request can add; the
    plugin ran as the gate's user. Only the tool's own subcommands are asked about now."""
    tool(command.split()[0])
    plugin = tmp_path / f"{command.split()[0]}-x" / "evil"
    plugin.parent.mkdir()
    marker = tmp_path / "ran"
    plugin.write_text(f"#!/bin/sh\ntouch {marker}\n")
    plugin.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    s = Session(timeout=30)
    try:
        with pytest.raises(CommandError, match=r"has no command 'x/evil'|not modelled"):
            run(s, command + "\n")
    finally:
        s.close()
    assert not marker.exists(), "the page's program ran outside the jail"


def test_a_stopped_backend_answers_nothing_and_down_volumes_forgets_its_rules(
    backend_program: Path,
) -> None:
    """`docker compose stop backend` left its port answering (the live backend started again
    on the next curl), and `down --volumes` kept the rules the real volume loses (found by a
    review of what a page can claim; the real backend answers 404 for a rule it never had)."""
    with _stack_with_a_rule(backend_program) as (s, url):
        run(s, "docker compose stop backend\n")
        with pytest.raises(CommandError, match="nothing answers on localhost"):
            run(s, f"curl -fsS {url}/r1\n")
        run(s, f"docker compose start backend\nsleep 1\ncurl -fsS {url}/r1\n")
        run(s, "docker compose down --volumes\ndocker compose up --build --wait\nsleep 1\n")
        with pytest.raises(CommandError, match="the real backend answered HTTP 404"):
            run(s, f"curl -fsS {url}/r1\n")


@contextlib.contextmanager
def _stack_with_a_rule(backend_program: Path) -> Iterator[tuple[Session, str]]:
    """The Compose stack started on a page whose curl calls reach the real backend, with rule
    r1 created: the session and the rules URL."""
    from betrace_dist.gate.live import LiveTier

    s = Session(timeout=120, live_tier=LiveTier(program=backend_program, off_reason=None))
    url = f"http://localhost:{s.release.current.backend.ports['http'].port}/v1/rules"
    rule = '{"name":"r1","expression":"when { a } always { b }"}'
    try:
        run(s, "cd docker\nprintf 'BETRACE_SIGNATURE_KEY=k\\nGRAFANA_ADMIN_PASSWORD=p\\n' > .env\n")
        run(s, "docker compose up --build --wait\nsleep 1\n")
        run(s, f"curl -fsS -X POST {url} -H 'Content-Type: application/json' -d '{rule}'\n")
        yield s, url
    finally:
        s.close()


def test_compose_reads_every_file_named_and_the_override_file() -> None:
    """The Compose model read only the first `-f` file, and with an explicit one skipped
    nothing, but without one never loaded the override file Compose merges: a schema error in
    a second file, and an override moving the backend's port, both passed (found by a review
    of what a page can claim; real Compose rejects the first and merges the second)."""
    s = Session(timeout=120)
    try:
        run(s, "cd docker\nprintf 'BETRACE_SIGNATURE_KEY=k\\nGRAFANA_ADMIN_PASSWORD=p\\n' > .env\n")
        run(s, "printf 'services:\\n  backend:\\n    enviroment: {A: b}\\n' > debug.yml\n")
        with pytest.raises(CommandError, match="enviroment"):
            run(s, "docker compose -f docker-compose.yml -f debug.yml config -q\n")
        override = (  # Grafana's backend URL moves too: the published port is what is wrong
            "services:\\n  backend:\\n    environment:\\n      BETRACE_PORT_BACKEND: 8080\\n"
            "  grafana:\\n    environment:\\n      BETRACE_BACKEND_URL: http://backend:8080\\n"
        )
        run(s, f"printf '{override}' > docker-compose.override.yml\n")
        with pytest.raises(CommandError, match=r"listens on 8080 .BETRACE_PORT_BACKEND.*nothing"):
            run(s, "docker compose up --build --wait\nsleep 1\n")
    finally:
        s.close()


def test_a_pages_own_backend_service_publishing_where_nothing_listens_is_refused() -> None:
    """The published-port rule held only for a service named `backend`: a page's own project
    running the release's backend image under another name, publishing 8080 to a port the
    backend does not listen on, was taken as answering there."""
    s = Session(timeout=120)
    try:
        image = f"{s.release.project.registry}/backend:{s.release.current.version}"
        project = (
            f"services:\\n  engine:\\n    image: {image}\\n"
            "    environment:\\n      BETRACE_SIGNATURE_KEY: k\\n"
            "    ports: [\\x278080:8080\\x27]\\n"
        )
        run(s, f"mkdir mine\ncd mine\nprintf '{project}' > compose.yaml\n")
        with pytest.raises(
            CommandError, match=r"the engine service publishes 8080 to its port 8080, but the"
        ):
            run(s, "docker compose up -d\nsleep 1\n")
    finally:
        s.close()


def _own_project(s: Session, services: str, folder: str = "mine") -> None:
    """A page's own Compose project in `folder`, written with printf; `services` is YAML with
    {image} for the release's backend image."""
    image = f"{s.release.project.registry}/backend:{s.release.current.version}"
    text = services.format(image=image).replace("\n", "\\n").replace("'", "\\x27")
    run(s, f"mkdir -p {folder}\nprintf '{text}' > {folder}/compose.yaml\n")


_KEY = "      BETRACE_SIGNATURE_KEY: k\n"


@pytest.mark.parametrize(
    ("services", "said"),
    [
        # ports swapped: 12011 is the gRPC server's now (found by an attack on the model)
        (
            "services:\n  backend:\n    image: {image}\n    environment:\n" + _KEY
            + "      BETRACE_PORT_BACKEND: 12012\n      BETRACE_PORT_GRPC: 12011\n"
            "    ports: ['8080:12011']\n",
            "port 12011 of the backend is not its HTTP server's; HTTP is on 12012",
        ),
        # a service named backend that runs something else is not the backend
        (
            "services:\n  backend:\n    image: docker.io/library/nginx:1.25\n"
            "    ports: ['8080:12011']\n",
            "nothing known is served over HTTP by service backend on port 12011",
        ),
        # bound to another address: nothing answers as localhost
        (
            "services:\n  engine:\n    image: {image}\n    environment:\n" + _KEY
            + "    ports: ['192.0.2.1:8080:12011']\n",
            "nothing answers on localhost:8080",
        ),
        (
            "services:\n  engine:\n    image: {image}\n    environment:\n" + _KEY
            + "    ports: ['8080:12011/udp']\n",
            "nothing answers on localhost:8080",
        ),
    ],
)  # fmt: skip
def test_a_published_port_that_does_not_reach_the_backends_http_is_refused(
    services: str, said: str
) -> None:
    s = Session(timeout=120)
    try:
        _own_project(s, services)
        run(s, "cd mine\ndocker compose up -d\nsleep 1\n")
        with pytest.raises(CommandError, match=re.escape(said)):
            run(s, "curl -fsS http://localhost:8080/v1/health\n")
    finally:
        s.close()


def test_the_backend_given_one_port_for_both_servers_is_refused() -> None:
    s = Session(timeout=120)
    try:
        services = (
            "services:\n  engine:\n    image: {image}\n    environment:\n" + _KEY
            + "      BETRACE_PORT_GRPC: 12011\n"
        )  # fmt: skip
        _own_project(s, services)
        with pytest.raises(CommandError, match="BETRACE_PORT_GRPC is 12011, the port of the HTTP"):
            run(s, "cd mine\ndocker compose up -d\nsleep 1\n")
    finally:
        s.close()


def test_projects_publish_a_port_once_and_take_down_only_their_own() -> None:
    """A second project publishing a held port was taken over it; `down` of one project took
    every project's ports away."""
    s = Session(timeout=120)
    try:
        backend = (
            "services:\n  engine:\n    image: {image}\n    environment:\n" + _KEY
            + "    ports: ['8080:12011']\n"
        )  # fmt: skip
        _own_project(s, backend, "one")
        _own_project(s, "services:\n  web:\n    image: nginx:1.25\n    ports: ['9090:80']\n", "two")
        run(s, "cd one\ndocker compose up -d\ncd ../two\ndocker compose up -d\nsleep 1\n")
        run(s, "docker compose down\ncurl -fsS http://localhost:8080/v1/health\n")
        _own_project(
            s, "services:\n  web:\n    image: nginx:1.25\n    ports: ['8080:80']\n", "../three"
        )
        with pytest.raises(CommandError, match="port 8080 is published already"):
            run(s, "cd ../three\ndocker compose up -d\nsleep 1\n")
    finally:
        s.close()


@pytest.mark.parametrize(
    ("grafana", "said"),
    [
        ("    network_mode: none\n", "network_mode 'none': it finds no service by name"),
        ("    networks: [other]\n", "share no network"),
    ],
)
def test_grafana_that_cannot_reach_the_backend_by_name_is_refused(grafana: str, said: str) -> None:
    s = Session(timeout=120)
    try:
        services = (
            "services:\n  backend:\n    image: {image}\n    environment:\n" + _KEY
            + "  grafana:\n    image: docker.io/grafana/grafana:13.2.0\n    environment:\n"
            "      BETRACE_BACKEND_URL: http://backend:12011\n" + grafana
            + "networks:\n  other: {{}}\n"
        )  # fmt: skip
        _own_project(s, services)
        with pytest.raises(CommandError, match=re.escape(said)):
            run(s, "cd mine\ndocker compose up -d\nsleep 1\n")
    finally:
        s.close()


def test_another_projects_down_volumes_leaves_the_backends_rules(backend_program: Path) -> None:
    """`down --volumes` of a project without the backend emptied the live backend's data,
    which only the backend's own volume holds (found by an attack on the Compose model)."""
    with _stack_with_a_rule(backend_program) as (s, url):
        _own_project(
            s, "services:\n  web:\n    image: nginx:1.25\n    ports: ['9090:80']\n", "../web"
        )
        run(s, "cd ../web\ndocker compose up -d\ndocker compose down --volumes\n")
        run(s, f"curl -fsS {url}/r1\n")


_GRAFANA_NEEDS_BACKEND = (
    "  grafana:\n    image: docker.io/grafana/grafana:13.2.0\n    depends_on: [backend]\n"
    "    environment:\n      BETRACE_BACKEND_URL: http://backend:12011\n"
)


@pytest.mark.parametrize(
    ("services", "steps", "said"),
    [
        # a variable passed through with no value is unset in the container (Compose's null)
        (
            "services:\n  backend:\n    image: {image}\n    environment:\n" + _KEY
            + "      BETRACE_PORT_BACKEND:\n    ports: ['8080:12011']\n" + _GRAFANA_NEEDS_BACKEND,
            "docker compose up -d\nsleep 1\n",
            None,
        ),
        # `up grafana` starts the backend it depends on
        (
            "services:\n  backend:\n    image: {image}\n    environment:\n" + _KEY
            + "    ports: ['8080:12011']\n" + _GRAFANA_NEEDS_BACKEND,
            "docker compose up -d grafana\nsleep 1\n",
            None,
        ),
        # a backend built here from a copy of the project's Dockerfile, tagged with a name of
        # the reader's, given the project's patches as the context the target needs
        (
            "services:\n  backend:\n    image: betrace-backend:local\n"
            "    build: {{context: ., target: backend, "
            "additional_contexts: {{patches: ../patches}}}}\n    environment:\n" + _KEY
            + "    ports: ['8080:12011']\n",
            "docker compose up -d\nsleep 1\n",
            None,
        ),
        # containers made but not started answer nothing
        (
            "services:\n  backend:\n    image: {image}\n    environment:\n" + _KEY
            + "    ports: ['8080:12011']\n",
            "docker compose create\n",
            "nothing answers on localhost:8080",
        ),
        (
            "services:\n  backend:\n    image: {image}\n    environment:\n" + _KEY
            + "    ports: ['8080:12011']\n",
            "docker compose up --no-start\n",
            "nothing answers on localhost:8080",
        ),
        (
            "services:\n  backend:\n    image: {image}\n    environment:\n" + _KEY
            + "    ports: ['8080:12011']\n" + _GRAFANA_NEEDS_BACKEND,
            "docker compose up -d --no-deps grafana\nsleep 1\n",
            "nothing answers on localhost:8080",
        ),
    ],
)  # fmt: skip
def test_what_compose_starts_is_what_answers(services: str, steps: str, said: str | None) -> None:
    """Found by a second attack on the Compose model: a null variable read as a Secret, `up
    SERVICE` without its dependencies, a tagged build of the backend not taken for one, and
    `create` / `up --no-start` taken to start containers."""
    s = Session(timeout=120)
    try:
        _own_project(s, services)
        # the project's Dockerfile: only its targets say what a build runs
        run(s, "cd mine\ncp ../docker/Dockerfile Dockerfile\n" + steps)
        check = "curl -fsS http://localhost:8080/v1/health\n"
        if said is None:
            run(s, check)
        else:
            with pytest.raises(CommandError, match=re.escape(said)):
                run(s, check)
    finally:
        s.close()


@pytest.mark.parametrize(
    ("services", "url", "said"),
    [
        # a service's name says nothing of what it runs: Grafana's and the collector's too
        (
            "services:\n  grafana:\n    image: docker.io/library/nginx:1.25\n"
            "    ports: ['3000:80']\n",
            "http://localhost:3000/api/health",
            "nothing known is served over HTTP by service grafana on port 80",
        ),
        (
            "services:\n  otel-collector:\n    image: docker.io/library/nginx:1.25\n"
            "    ports: ['4318:4318']\n",
            "http://localhost:4318/v1/traces",
            "nothing known is served over HTTP by service otel-collector on port 4318",
        ),
        (
            "services:\n  ui:\n    image: docker.io/grafana/grafana:13.2.0\n"
            "    ports: ['3000:3000']\n",
            "http://localhost:3000/api/health",
            None,
        ),
    ],
)
def test_grafana_and_the_collector_are_what_their_image_runs(
    services: str, url: str, said: str | None
) -> None:
    s = Session(timeout=120)
    try:
        _own_project(s, services)
        run(s, "cd mine\ndocker compose up -d\nsleep 1\n")
        if said is None:
            run(s, f"curl -fsS --retry 30 --retry-delay 2 --retry-all-errors {url}\n")
        else:
            with pytest.raises(CommandError, match=re.escape(said)):
                run(s, f"curl -fsS {url}\n")
    finally:
        s.close()


def test_a_secret_named_kind_slash_name_and_read_undecoded_is_refused(session: Session) -> None:
    """A review found `secret/NAME` and a template with spaces past the undecoded-data check."""
    run(session, "kubectl create namespace demo\n")
    run(session, "kubectl create secret generic s --namespace demo --from-literal=p=x\n")
    with pytest.raises(CommandError, match="base64-encoded"):
        run(session, "kubectl get secret/s --namespace demo -o jsonpath='{ .data.p }'\n")
