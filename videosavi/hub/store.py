"""The embedded backend: a store of bare git repositories at `<store>/datasets/<org>/<name>`.

`savi hub serve` answers the Hub's read-only API from these repositories, so a published store
answers `datasets.load_dataset` exactly as the Hub would. A publish builds its commit and annotated
tag in a throwaway repository that borrows the store's objects (git alternates, so nothing large is
copied) and then pushes branch and tag with `git push --atomic`: either both refs move or neither
does, and a crash at any point before the push leaves the store untouched. Leases on both refs make
a concurrent publish fail instead of overwriting.
"""

from __future__ import annotations

import fnmatch
import io
import tarfile
from pathlib import Path

from videosavi._faults import failpoint
from videosavi.errors import PublishError, RevisionNotFoundError
from videosavi.hub.git import git_out, run_git
from videosavi.hub.names import FULL_SHA, check_tag, split_repo_id
from videosavi.hub.plan import BRANCH, PublishOutcome, RepoState, newer_iteration_tag, plan_publish
from videosavi.hub.refs import Refs, pick_revision
from videosavi.locking import exclusive
from videosavi.paths import default_store
from videosavi.tmp_dirs import owned_tmpdir

PUBLISH_WAIT_S = 600.0  # a publish queues behind another one to the same repository for up to this long


class GitStore:
    """Bare repositories under one root; `repo` arguments are `org/name` dataset ids."""

    kind = "store"

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root).expanduser().resolve() if root else default_store().resolve()

    # --- layout -------------------------------------------------------------------------------
    def repo_dir(self, repo: str) -> Path:
        org, name = split_repo_id(repo)
        return self.root / "datasets" / org / name

    def location(self, repo: str) -> str:
        return str(self.repo_dir(repo))

    def exists(self, repo: str) -> bool:
        return (self.repo_dir(repo) / "HEAD").is_file()

    def create(self, repo: str) -> Path:
        """Create the bare repository if missing (idempotent), with a reflog so a forced tag move
        can be undone by hand."""
        path = self.repo_dir(repo)
        if not self.exists(repo):
            path.parent.mkdir(parents=True, exist_ok=True)
            run_git(["init", "--quiet", "--bare", f"--initial-branch={BRANCH}", path], what="git init")
            run_git(["config", "core.logAllRefUpdates", "always"], git_dir=path, what="git config")
        return path

    # --- reading ------------------------------------------------------------------------------
    def _require(self, repo: str, error: type[Exception] = RevisionNotFoundError) -> Path:
        path = self.repo_dir(repo)
        if not self.exists(repo):
            raise error(f"no dataset repository {repo!r} in the store {self.root}")
        return path

    def refs(self, repo: str) -> Refs:
        """Branches and tags with the commits they name (annotated tags peeled to their commit, however
        deep); refs that name no commit (a tag of a tree or blob) are skipped.

        Each ref is one NUL-separated record ending in NUL, read from git's raw output: a lightweight
        tag or a branch has empty peeled fields, and nothing may strip or shift them.
        """
        path = self._require(repo)
        fmt = "%(refname)%00%(objecttype)%00%(objectname)%00%(*objecttype)%00%(*objectname)%00"
        out = run_git(["for-each-ref", f"--format={fmt}", "refs/heads", "refs/tags"], git_dir=path,
                      what="git for-each-ref").stdout.decode("utf-8", "replace")
        branches: dict[str, str] = {}
        tags: dict[str, str] = {}
        for line in out.split("\n"):
            fields = line.split("\0")
            if len(fields) < 5:
                continue  # the empty tail after the last record
            name, otype, oid, peeled_type, peeled = fields[:5]
            commit = oid if otype == "commit" else (peeled if peeled_type == "commit" else None)
            if commit is None and otype == "tag":  # a tag of a tag: peel all the way down
                commit = self._peel(path, oid)
            if commit is None:
                continue
            if name.startswith("refs/heads/"):
                branches[name[len("refs/heads/"):]] = commit
            elif name.startswith("refs/tags/"):
                tags[name[len("refs/tags/"):]] = commit
        return Refs(branches=branches, tags=tags)

    @staticmethod
    def _peel(path: Path, oid: str) -> str | None:
        proc = run_git(["rev-parse", "--verify", "-q", f"{oid}^{{commit}}"], git_dir=path, check=False)
        sha = proc.stdout.decode("ascii", "replace").strip()
        return sha if proc.returncode == 0 and FULL_SHA.match(sha) else None

    def tags(self, repo: str) -> set[str]:
        """The repository's tag names; none when it does not exist yet."""
        return set(self.refs(repo).tags) if self.exists(repo) else set()

    def commit_exists(self, repo: str, sha: str) -> bool:
        if not FULL_SHA.match(sha):
            return False
        # `-t`, not `-e sha^{commit}`: the sha of an annotated tag object peels to a commit, but it is not
        # one, and serving it as a commit would make clients cache under the tag's sha
        proc = run_git(["cat-file", "-t", sha], git_dir=self._require(repo), check=False)
        return proc.returncode == 0 and proc.stdout.strip() == b"commit"

    def resolve(self, repo: str, revision: str) -> str:
        """Commit sha of a tag, branch or full sha; `RevisionNotFoundError` if it does not exist."""
        refs = self.refs(repo)
        return pick_revision(refs, revision, repo=repo, commit_exists=self.commit_exists(repo, revision))

    def list_files(self, repo: str, sha: str) -> list[str]:
        out = git_out(["ls-tree", "-r", "--name-only", "-z", sha], git_dir=self._require(repo), what="git ls-tree")
        return [p for p in out.split("\0") if p]

    def read_file(self, repo: str, sha: str, path: str) -> bytes | None:
        proc = run_git(["cat-file", "blob", f"{sha}:{path}"], git_dir=self._require(repo), check=False)
        return proc.stdout if proc.returncode == 0 else None

    def export(self, repo: str, sha: str, dest: Path, patterns: list[str] | None = None) -> list[Path]:
        """Write the files of commit `sha` (those matching `patterns`, default all) under `dest`."""
        files = self.list_files(repo, sha)
        if patterns is not None:
            files = [f for f in files if any(fnmatch.fnmatchcase(f, p) for p in patterns)]
        if not files:
            return []
        proc = run_git(["archive", "--format=tar", sha, "--", *files], git_dir=self._require(repo),
                       what="git archive")
        dest.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
            tar.extractall(dest, filter="data")
        return [dest / f for f in files]

    def fetch(self, repo: str, revision: str, dest: Path, patterns: list[str]) -> list[Path]:
        """Files of an earlier revision for the card's comparison; [] when the revision is absent."""
        if not self.exists(repo):
            return []
        try:
            sha = self.resolve(repo, revision)
        except RevisionNotFoundError:
            return []
        return self.export(repo, sha, dest, patterns)

    def _tree(self, bare: Path, commit: str | None) -> str | None:
        if commit is None:
            return None
        return git_out(["rev-parse", f"{commit}^{{tree}}"], git_dir=bare, what="git rev-parse")

    # --- publishing ---------------------------------------------------------------------------
    def publish(self, repo: str, tag: str, staging: Path, *, force: bool, message: str,
                tag_message: str) -> PublishOutcome:
        """Make the files under `staging` (exactly those) one commit on main tagged `tag`."""
        check_tag(tag)
        staging = Path(staging).resolve()
        # One publish per repository at a time: refs are read, compared and pushed under the lock, so
        # two racing publishes run one after the other and main ends on the highest iteration.
        with exclusive(self.repo_dir(repo).parent, f"savi publish {repo}@{tag}",
                       name=f".{self.repo_dir(repo).name}.publish.lock", wait_s=PUBLISH_WAIT_S):
            return self._publish_locked(repo, tag, staging, force=force, message=message, tag_message=tag_message)

    def _publish_locked(self, repo: str, tag: str, staging: Path, *, force: bool, message: str,
                        tag_message: str) -> PublishOutcome:
        bare = self.create(repo)
        refs = self.refs(repo)
        head, tag_commit = refs.branches.get(BRANCH), refs.tags.get(tag)
        head_ref = git_out(["rev-parse", "--verify", "-q", f"refs/heads/{BRANCH}"], git_dir=bare,
                           check=False) or ""
        tag_ref = git_out(["rev-parse", "--verify", "-q", f"refs/tags/{tag}"], git_dir=bare, check=False) or ""
        with owned_tmpdir("publish") as tmp:
            run_git(["init", "--quiet", Path(tmp) / "work"], what="git init")
            work = Path(tmp) / "work" / ".git"
            (work / "objects" / "info" / "alternates").write_text(str(bare / "objects") + "\n")
            run_git(["add", "--all", "--force", "--", "."], git_dir=work, work_tree=staging, cwd=staging,
                    what="git add")
            tree = git_out(["write-tree"], git_dir=work, what="git write-tree")
            state = RepoState(
                tag_commit=tag_commit, tag_matches=self._tree(bare, tag_commit) == tree,
                head_commit=head, head_matches=self._tree(bare, head) == tree,
                newer_tag=newer_iteration_tag(refs.tags, tag),
            )
            plan = plan_publish(state, repo=repo, tag=tag, force=force)
            if plan.action == "noop":
                return PublishOutcome(plan.commit or "", True, plan.action)
            if plan.action == "commit_and_tag":
                parent = ["-p", plan.parent] if plan.parent else []
                commit = git_out(["commit-tree", tree, *parent, "-m", message], git_dir=work, what="git commit-tree")
            else:
                commit = plan.commit or ""
            failpoint("publish_committed")
            run_git(["tag", "--annotate", "-m", tag_message, tag, commit], git_dir=work, what="git tag")
            specs = [f"{'+' if plan.move_tag_from else ''}refs/tags/{tag}:refs/tags/{tag}"]
            leases = [f"--force-with-lease=refs/tags/{tag}:{tag_ref}"]
            if plan.action == "commit_and_tag" and plan.move_main:
                specs.insert(0, f"{commit}:refs/heads/{BRANCH}")
                leases.append(f"--force-with-lease=refs/heads/{BRANCH}:{head_ref}")
            run_git(["push", "--quiet", "--atomic", *leases, str(bare), *specs], git_dir=work,
                    what=f"publishing to {bare} (nothing was changed)")
        after = self.refs(repo)
        if after.tags.get(tag) != commit:
            raise PublishError(f"{repo}@{tag} does not point at {commit[:12]} after the push; "
                               "another publish may have run at the same time")
        return PublishOutcome(commit, False, plan.action)


def is_store_path(value: str | Path) -> bool:
    """True when a directory looks like a store root (has a `datasets/` folder)."""
    return (Path(value) / "datasets").is_dir()


__all__ = ["GitStore", "is_store_path"]
