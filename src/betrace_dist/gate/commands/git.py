"""`git`: `git clone` of this project's repository (the gate copies the sandbox's copy of the
repository, the reader's clone, to where the page clones it), `git tag` of the release's version
and `git push` of that tag once it is made, and the everyday subcommands that change nothing the
gate checks."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from ...errors import ProblemsError
from ...names import closest, is_number
from ...release import ReleaseData, load_release_data
from .. import missing as gate_missing
from ..session import CommandError, Invocation, Session, clone_files
from ..world import World
from .flags import CommandLine, Options, options

#: a release tag as this project writes them
_TAG = re.compile(r"v?\d+\.\d+\.\d+\S*")
#: The repository's default branch: the one the ci and docs workflows run on when pushed to
#: (on.push.branches; tests/artefacts/test_workflows.py holds the two to each other). A reader's
#: clone has it, as every clone has its remote's default branch.
DEFAULT_BRANCH = "main"
#: the remote a clone names the repository it was cloned from (git-clone(1), --origin)
ORIGIN = "origin"


def clone_line(words: list[str]) -> CommandLine:
    """`git clone ...` (the words after `clone`), split as git splits it: its options, and which
    of them take a value, are the ones the real `git clone -h` lists."""
    line = _line("clone", words)
    missing = line.missing_value()
    if missing is not None:
        raise CommandError(f"git clone: {missing} needs a value")
    return line


def _clone(inv: Invocation, words: list[str]) -> None:
    line = clone_line(words)
    urls = line.positional
    if not urls:
        raise CommandError("git clone needs a URL")
    data = inv.session.release
    url = urls[0].removesuffix(".git")
    known = {data.project.distribution_repository: inv.session.repo}
    if url not in known:
        raise CommandError(
            f"git clone: '{url}' is not this project's repository "
            f"({data.project.distribution_repository})"
        )
    want = f"v{data.current.version}"
    branch = line.get("-b", "--branch")
    if branch is not None and branch != want:
        raise CommandError(
            f"git clone --branch {branch}: the tag of this release is {want}; "
            "the page's files are the ones of that tag"
        )
    depth = line.get("--depth")
    depth = "1" if depth is None else depth
    if not is_number(depth) or int(depth) < 1:
        raise CommandError(f"git clone --depth {depth}: not a positive number")
    # the gate writes the copy itself: only inside the page's sandbox (second line)
    target = inv.session.real_path(
        inv.session.path(urls[1] if len(urls) > 1 else url.rsplit("/", 1)[-1])
    )
    if target.exists():
        raise CommandError(f"git clone: '{inv.session.reader_path(target)}' already exists")
    size = _tree_size(known[url])
    if size > CLONE_LIMIT:  # apparent sizes: sparse files count at their full length
        raise CommandError(
            f"git clone: the clone would copy {size >> 20} MiB; the gate copies at most "
            f"{CLONE_LIMIT >> 20} MiB for a page"
        )
    inv.session.copy_clone(target)  # known[url] is the page's clone; the copy is the page's
    # `--branch <tag>` checks the tag out on a detached HEAD (git-clone(1)): no branch to pull
    inv.session.world.checkouts[str(target)] = branch or ""


def checkout_of(session: Session, path: Path | None = None) -> tuple[Path, str] | None:
    """The clone a path of the page lies in (its working folder by default), and the tag its
    HEAD is detached at. The path is resolved beneath the sandbox (a path leading out is
    refused in the gate's usual words; a missing one stands as the folder that would hold it)."""
    where = session.cwd if path is None else path
    real = session.real_path(where, "read", leads_out_only=True)  # the real folder
    for folder, tag in session.world.checkouts.items():
        root = Path(folder)
        if real == root or root in real.parents:
            return root, tag
    return None


def _unbundled(words: list[str], known: Options) -> list[str]:
    """Short flags written together as git's parser takes them (`-am MSG` is `-a -m MSG`; a
    flag that takes a value takes the rest of the word: `-mMSG`)."""
    out: list[str] = []
    for word in words:
        if word == "--":
            return out + words[len(out) :]
        if not re.fullmatch(r"-[A-Za-z][^\s]+", word) or word in known.names:
            out.append(word)
            continue
        for at, letter in enumerate(word[1:], 1):
            out.append(f"-{letter}")
            if f"-{letter}" in known.valued:
                out += [word[at + 1 :]] if word[at + 1 :] else []
                break
    return out


def _line(sub: str, words: list[str]) -> CommandLine:
    """`git <sub> WORDS` split with the flags the real `git <sub> -h` lists."""
    known = options(gate_missing.require("git", CommandError), sub)
    line = CommandLine(_unbundled(words, known), known)
    for name, _ in line.flags:
        if name not in known.names:
            raise CommandError(
                f"git {sub} has no option '{name}'{closest(name, sorted(known.names))}"
            )
    return line


#: the branches of the repository besides the default one: mike publishes the site to gh-pages
#: (the docs workflow's `mike deploy --push`); a clone switches to either by name
#: (git-switch(1), --guess)
REMOTE_BRANCHES = frozenset({"gh-pages"})


def _branches(inv: Invocation) -> set[str]:
    return {DEFAULT_BRANCH} | REMOTE_BRANCHES | inv.session.world.branches


def _switch_branch(inv: Invocation, line: CommandLine) -> None:
    """`git switch -c NAME` makes a branch; `git switch NAME` needs one that exists: the
    default branch, or one made earlier on the page (git: "invalid reference")."""
    world = inv.session.world
    made = line.get("-c", "--create", "-C", "--force-create", "--orphan")
    if made is not None:
        world.branches.add(made)
        _on_branch(world, made)
        return
    if line.has("--detach", "-d") or not line.positional:
        if line.positional:
            _on_branch(world, None)
        return
    name = line.positional[0]
    if name != "-" and not _TAG.fullmatch(name) and name not in _branches(inv):
        raise CommandError(
            f"git switch {name}: no branch '{name}' exists here (git answers 'invalid "
            f"reference: {name}'); branches: {', '.join(sorted(_branches(inv)))}; "
            "`git switch -c` makes a new one"
        )
    _on_branch(world, world.previous_branch if name == "-" else name)


def _on_branch(world: World, branch: str | None) -> None:
    """The page is now on `branch` (None: a detached HEAD, or a branch not known)."""
    world.previous_branch, world.branch = world.branch, branch


#: the flags of git switch and git checkout that make a branch (their value is its name)
_MAKES_BRANCH = ("-c", "--create", "-C", "--force-create", "--orphan", "-b", "-B")


def _switch(inv: Invocation, words: list[str]) -> None:
    """`git checkout <ref>` / `git switch <branch>`: a tag leaves HEAD detached, a branch not.
    Words after `--` are paths: `git checkout -- FILE` restores a file and moves nowhere."""
    sub, rest = words[0], words[1:]
    paths = "--" in rest
    line = _line(sub, rest[: rest.index("--")] if paths else rest)
    world = inv.session.world
    made = line.get(*_MAKES_BRANCH)
    if sub == "switch":
        _switch_branch(inv, line)
    elif not paths:
        if made is not None:
            world.branches.add(made)
        named = line.positional[:1]
        if named == ["-"]:
            _on_branch(world, world.previous_branch)
        else:
            _on_branch(world, made or next((n for n in named if n in _branches(inv)), None))
    found = checkout_of(inv.session)
    refs = line.positional
    if found is None or not refs or paths:
        return
    tag = bool(_TAG.fullmatch(refs[-1]))
    detach = line.has("--detach") or (sub == "switch" and line.has("-d"))
    if sub == "switch" and tag and not detach and made is None:
        raise CommandError(
            f"git switch {refs[-1]}: git switch wants a branch and fails on a tag ('a branch is "
            "expected, got tag'); write `git checkout <tag>` or `git switch --detach <tag>`"
        )
    detached = (sub == "checkout" and tag and made is None) or detach
    world.checkouts[str(found[0])] = refs[-1] if detached else ""


def _pull(inv: Invocation) -> None:
    world = inv.session.world
    world.unpulled.pop(world.branch or "", None)
    found = checkout_of(inv.session)
    if found is None or not found[1]:
        return
    root, tag = found
    raise CommandError(
        f"git pull: '{inv.session.reader_path(root)}' has {tag} checked out on a detached HEAD "
        f"(a clone with --branch {tag} checks out the tag, not a branch), so git pull fails "
        "with 'You are not currently on a branch'; move to a newer release with "
        "`git fetch --tags` and `git checkout v<new version>`"
    )


def _page_release(inv: Invocation) -> ReleaseData:
    """The release data as the page has left it (a bump earlier on the page moves it). The
    page had the file in its hands: it is read beneath the sandbox (Session.read: never through
    a link leading out), and the gate validates a copy of its own."""
    text = inv.session.read(str(inv.session.repo / "releases.yaml"))
    with tempfile.TemporaryDirectory(prefix="betrace-page-release-") as folder:
        copy = Path(folder) / "releases.yaml"
        copy.write_text(text, encoding="utf-8")
        try:
            return load_release_data(copy)
        except ProblemsError as exc:
            first = exc.problems[0]
            raise CommandError(
                f"git tag: the clone's releases.yaml is no valid release data (line "
                f"{first.line or '-'}: {first.message})"
            ) from None


def _tag(inv: Invocation, words: list[str]) -> None:
    """`git tag [-a] <tag> [<commit>]` makes the release's tag; `git tag -d <tag>` deletes it.
    The commit it names (the branch the page is on, or the one written) must hold the merge of
    a branch the page pushed for a pull request: a local branch once pulled, `origin/NAME`
    once fetched."""
    line = _line("tag", words)
    tags = [a for a in line.positional if _TAG.fullmatch(a)]
    world = inv.session.world
    if line.has("-d", "--delete"):
        world.tags.difference_update(tags)
        world.annotated.difference_update(tags)
        return
    want = f"v{_page_release(inv).current.version}"
    if tags and tags[0] != want:
        raise CommandError(f"the tag of this release is {want}, not {tags[0]}")
    if not tags:
        return
    target = line.positional[1] if len(line.positional) > 1 else world.branch or ""
    remote = target.removeprefix("refs/remotes/").removeprefix(f"{ORIGIN}/")
    if remote != target:  # origin/NAME: up to date once fetched
        stale = remote in world.unpulled and remote not in world.fetched
    else:
        stale = target in world.unpulled
    if stale:
        raise CommandError(
            f"git tag {tags[0]}: {target} lacks the merge of {world.unpulled[remote]}, pushed "
            f"above for a pull request, until `git pull` (or `git fetch` for origin/{remote}): "
            f"the tag would name {target} as it was before the release"
        )
    world.tags.add(tags[0])
    if line.has("-a", "--annotate", "-s", "--sign", "-m", "--message", "-F", "--file"):
        world.annotated.add(tags[0])


def _pushed_branch(inv: Invocation, word: str, ref: str) -> None:
    """A branch `git push` sends: one that exists here (HEAD: the branch the page is on). One
    other than the default branch and the site's goes to a pull request into the default
    branch, whose merge this clone lacks until it pulls (World.unpulled)."""
    world = inv.session.world
    name = (world.branch or DEFAULT_BRANCH) if ref == "HEAD" else ref.removeprefix("refs/heads/")
    if name not in _branches(inv):
        raise CommandError(
            f"git push: no branch '{name}' exists here (git answers \"src refspec "
            f'{word} does not match any"); branches: {", ".join(sorted(_branches(inv)))}'
        )
    remote = word.partition(":")[2].removeprefix("refs/heads/") or name  # SRC:DST sends to DST
    if remote not in {DEFAULT_BRANCH} | REMOTE_BRANCHES:
        world.unpulled[DEFAULT_BRANCH] = remote
        world.fetched.discard(DEFAULT_BRANCH)


def _tags_made(inv: Invocation, flag: str) -> None:
    """`git push --tags` sends the tags the clone has: the release's only once `git tag` made
    it (before, git pushes the older tags and says "Everything up-to-date"); `--follow-tags`
    only annotated ones (git-push(1); a lightweight tag stayed behind, tried with git 2.39)."""
    want = f"v{_page_release(inv).current.version}"
    world = inv.session.world
    made = world.annotated if flag == "--follow-tags" else world.tags
    if want not in made:
        kind = "annotated " if flag == "--follow-tags" and want in world.tags else ""
        raise CommandError(
            f"git push {flag}: no {kind}tag {want} is made yet on this page (`git tag -a {want}` "
            "comes first): the push sends no release tag, and no release workflow starts"
        )


def _push(inv: Invocation, words: list[str]) -> None:
    """`git push <remote> <ref>...`: the first word names a remote (`origin`, or one `git remote
    add` named); a branch pushed is one that exists here; the release's own tag needs that tag
    made first: the release is new, so no clone has its tag until `git tag` makes it, and git
    refuses the push ("src refspec ... does not match any", git-push(1)'s refspec). A push that
    deletes, and tags of other versions (older releases a clone has), are not judged."""
    line = _line("push", words)
    for flag in ("--tags", "--follow-tags"):
        if line.has(flag):
            _tags_made(inv, flag)
    if not line.positional:
        return
    remote, *words = line.positional
    if remote not in {ORIGIN} | inv.session.world.remotes:
        raise CommandError(
            f"git push {remote}: '{remote}' is no remote of this clone (git answers "
            f"\"'{remote}' does not appear to be a git repository\"); its remote is {ORIGIN}"
        )
    if line.has("-d", "--delete") or any(w.startswith(":") for w in words):
        return
    words = [w for w in words if w != "tag"]  # `git push origin tag v1.0.0`: the tag v1.0.0
    for word in words:
        ref = word.removeprefix("+").partition(":")[0]
        if not _TAG.fullmatch(ref.removeprefix("refs/tags/")):
            _pushed_branch(inv, word, ref)
    _pushed_tags(inv, words)


def _pushed_tags(inv: Invocation, words: list[str]) -> None:
    """The release's own tag, pushed by name, needs `git tag` first."""
    refs = {w: w.removeprefix("+").partition(":")[0].removeprefix("refs/tags/") for w in words}
    if not any(_TAG.fullmatch(ref) for ref in refs.values()):
        return  # a branch
    want = f"v{_page_release(inv).current.version}"
    for word, ref in refs.items():
        if ref == want and ref not in inv.session.world.tags:
            raise CommandError(
                f"git push: the tag {want} is not made yet on this page (`git tag -a {want}` "
                f'comes first); git answers "src refspec {word} does not match any"'
            )


def _in_the_project(inv: Invocation, word: str) -> str | None:
    """A path of the page as a path of its copy of the project ("." for all of it), or None
    when it lies elsewhere (resolved beneath the sandbox, never through a link leading out)."""
    real = inv.session.real_path(inv.session.path(word), "read", leads_out_only=True)
    repo = inv.session.real_path(inv.session.repo, "read", leads_out_only=True)
    if real != repo and repo not in real.parents:
        return None
    return real.relative_to(repo).as_posix()


def untracked(inv: Invocation, path: Path) -> str | None:
    """A file of a clone of the project (the reader's, or one the page made) that git does not
    track, as a path of that clone: not one of the project's files (clone_files) and no `git add`
    took it on the page. None when git tracks it, or it lies in no clone."""
    real = inv.session.real_path(path, "read", leads_out_only=True)
    root = inv.session.clone_of(real)
    files = clone_files()
    relative = real.relative_to(root).as_posix() if root is not None else ""
    if root is None or files is None or relative in files:
        return None
    if any(f.startswith(relative + "/") for f in files):  # a folder of tracked files
        return None
    if any(real == Path(a) or Path(a) in real.parents for a in inv.session.world.added):
        return None
    return relative


def _add(inv: Invocation, words: list[str]) -> None:
    """`git add PATH...` (or -A / --all / `.`) stages what the page changed under them; git
    tracks them from then on (World.added, as real paths: any clone of the page)."""
    line = _line("add", words)
    world = inv.session.world
    if line.has("-A", "--all", "-u", "--update"):  # -u: every tracked file (the ones judged)
        world.staged.add(".")
    if line.has("-A", "--all"):  # new files too; -u tracks none that git did not track
        here = inv.session.clone_of(inv.session.cwd)
        world.added.update([str(here)] if here is not None else [])
    for word in line.positional:
        found = _in_the_project(inv, word)
        if found is not None:
            world.staged.add(found)
        world.added.add(str(inv.session.real_path(inv.session.path(word), "read", True)))


def _commit(inv: Invocation, words: list[str]) -> None:
    """`git commit` without -a commits what `git add` staged: a file of the project an earlier
    command of the page changed (a bump, run for real in the page's copy) and no `git add`
    covered is left out of the commit, and of the pull request."""
    line = _line("commit", words)
    world = inv.session.world
    files = clone_files()
    if line.has("-a", "--all") or files is None or _in_the_project(inv, ".") is None:
        world.staged.clear()
        return
    covered = world.staged
    left = [
        name
        for name in files
        if not any(s == "." or name == s or name.startswith(s + "/") for s in covered)
        and not inv.session.is_projects(inv.session.repo / name, name)
    ]
    world.staged.clear()
    if left:
        raise CommandError(
            f"git commit leaves out what this page changed and no git add staged: "
            f"{', '.join(left[:5])}{' ...' if len(left) > 5 else ''}; git add it too, or the "
            "commit, and the pull request, lack it"
        )


#: the subcommands modelled, each given the words from the subcommand's name on
_SUBCOMMANDS: dict[str, Callable[[Invocation, list[str]], None]] = {
    "clone": lambda inv, words: _clone(inv, words[1:]),
    "checkout": _switch,
    "switch": _switch,
    "pull": lambda inv, words: _pull(inv),
    "tag": lambda inv, words: _tag(inv, words[1:]),
    "push": lambda inv, words: _push(inv, words[1:]),
    "add": lambda inv, words: _add(inv, words[1:]),
    "commit": lambda inv, words: _commit(inv, words[1:]),
}


def git(inv: Invocation) -> None:
    argv = inv.argv
    sub = argv[1] if len(argv) > 1 else ""
    handler = _SUBCOMMANDS.get(sub)
    if handler is not None:
        handler(inv, argv[1:])
        return
    if sub == "remote" and argv[2:3] == ["add"]:
        inv.session.world.remotes.update(w for w in argv[3:4] if not w.startswith("-"))
        return
    if sub == "fetch":  # remote-tracking branches brought up to date; local ones not
        inv.session.world.fetched |= set(inv.session.world.unpulled)
        return
    if sub in (
        "status",
        "diff",
        "log",
    ):
        return
    raise CommandError(f"git {sub} is not modelled")


#: Largest tree the git model copies for a page's clone (the project is a few MiB).
CLONE_LIMIT = 256 * 1024 * 1024


def _tree_size(root: Path) -> int:
    """Apparent size of the page's clone; a link in its place (to `/`, say) is refused, never
    walked: the gate's own walk stays inside the sandbox, bounded by its file count."""
    if root.is_symlink() or not root.is_dir():
        raise CommandError(
            "git clone: the page's clone is no longer a folder (a link stands in its place)"
        )
    return sum(p.lstat().st_size for p in root.rglob("*") if not p.is_symlink())


MODELS = {"git": git}
