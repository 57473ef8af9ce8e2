"""A small in-memory Hugging Face Hub for tests: the HTTP endpoints the real ``huggingface_hub``
client calls to create a repo, commit files, tag revisions, list trees and download files.

Why a server and not mocks: pushing and pulling through the real client over real HTTP catches what
mocks cannot (URL quoting, revision resolution, the headers ``hf_hub_download`` relies on, NDJSON
commit payloads). The server keeps git-like history: every commit is an immutable snapshot of
``{path: bytes}``, and branches and tags point at commits, so revision pinning can be tested.

Files are always committed in "regular" mode (base64 inside the commit payload), so neither LFS nor
Xet storage is needed. Use it as a context manager; ``server.endpoint`` goes into ``HF_ENDPOINT``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

_API = re.compile(
    r"^/api/(?P<type>models|datasets|spaces)/(?P<repo>[^/]+/[^/]+)(?:/(?P<action>[^/]+))?(?:/(?P<rest>.*))?$"
)
_RESOLVE = re.compile(
    r"^/(?:(?P<type>datasets|spaces)/)?(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$"
)


def git_blob_sha(data: bytes) -> str:
    """The object id git (and the Hub) gives a regular file."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Repo:
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    private: bool = False

    def resolve(self, rev: str) -> str | None:
        if rev in self.branches:
            return self.branches[rev]
        if rev in self.tags:
            return self.tags[rev]
        return rev if rev in self.commits else None


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.extra = status, message, code, extra or {}


class FakeHub:
    """The repositories, shared by all request threads (guarded by one lock)."""

    def __init__(self) -> None:
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []
        self._counter = 0

    def repo(self, repo_type: str, repo_id: str) -> Repo:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None:
            raise HubError(404, f"Repository {repo_id} not found", "RepoNotFound")
        return repo

    def commit_of(self, repo: Repo, rev: str) -> str:
        sha = repo.resolve(unquote(rev))
        if sha is None:
            raise HubError(404, f"Invalid rev id: {unquote(rev)}", "RevisionNotFound")
        return sha

    def new_commit(self, repo: Repo, files: dict[str, bytes], branch: str) -> str:
        self._counter += 1
        sha = hashlib.sha1(f"{self._counter}:{sorted(files)}".encode()).hexdigest()
        repo.commits[sha] = files
        repo.branches[branch] = sha
        return sha


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub: FakeHub
    endpoint: str

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    # ------------------------------------------------------------------ plumbing

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(
        self, status: int, body: bytes = b"", headers: dict[str, str] | None = None, head: bool = False
    ):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if "Content-Type" not in (headers or {}):
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, obj: object, status: int = 200) -> None:
        self._send(status, json.dumps(obj).encode())

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        body = self._body() if method in ("POST", "PUT", "DELETE") else b""
        with self.hub.lock:
            self.hub.requests.append((method, url.path))
            try:
                self._route(method, url.path, parse_qs(url.query), body)
            except HubError as e:
                headers = {"X-Error-Message": e.message}
                if e.code:
                    headers["X-Error-Code"] = e.code
                self._send(
                    e.status,
                    json.dumps({"error": e.message, **e.extra}).encode(),
                    headers,
                    head=method == "HEAD",
                )

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # ------------------------------------------------------------------ routes

    def _route(self, method: str, path: str, query: dict, body: bytes) -> None:
        if method == "POST" and path == "/api/repos/create":
            return self._create_repo(json.loads(body))
        if method == "POST" and path == "/api/validate-yaml":
            return self._json({"errors": [], "warnings": []})
        m = _RESOLVE.match(path)
        if m and method in ("GET", "HEAD"):
            return self._resolve(m["type"] or "models", m["repo"], m["rev"], unquote(m["path"]), method)
        m = _API.match(path)
        if not m:
            raise HubError(404, f"No route for {method} {path}")
        repo_type, repo_id, action, rest = m["type"][:-1], m["repo"], m["action"], m["rest"] or ""
        repo = self.hub.repo(repo_type, repo_id)
        if action is None or action == "revision":
            return self._repo_info(repo_type, repo_id, repo, rest or "main")
        if action == "tree":
            rev, _, sub = rest.partition("/")
            return self._tree(
                repo, rev, unquote(sub), query.get("recursive", ["false"])[0] in ("true", "True", "1")
            )
        if action == "refs":
            return self._json(
                {
                    "branches": [
                        {"name": b, "ref": f"refs/heads/{b}", "targetCommit": s}
                        for b, s in repo.branches.items()
                    ],
                    "tags": [
                        {"name": t, "ref": f"refs/tags/{t}", "targetCommit": s} for t, s in repo.tags.items()
                    ],
                    "converts": [],
                }
            )
        if action == "preupload" and method == "POST":
            files = json.loads(body)["files"]
            return self._json(
                {
                    "files": [
                        {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": None}
                        for f in files
                    ]
                }
            )
        if action == "commit" and method == "POST":
            return self._commit(repo_type, repo_id, repo, unquote(rest), body)
        if action == "tag" and method == "POST":
            tag = json.loads(body)["tag"]
            if tag in repo.tags:
                raise HubError(409, f"Tag {tag} already exists")
            repo.tags[tag] = self.hub.commit_of(repo, rest)
            return self._json({})
        if action == "tag" and method == "DELETE":
            if repo.tags.pop(unquote(rest), None) is None:
                raise HubError(404, f"Tag {unquote(rest)} not found", "RevisionNotFound")
            return self._json({})
        if action == "branch" and method == "POST":
            branch = unquote(rest)
            if branch in repo.branches:
                raise HubError(409, f"Branch {branch} already exists")
            start = (json.loads(body) if body else {}).get("startingPoint") or "main"
            repo.branches[branch] = self.hub.commit_of(repo, start)
            return self._json({})
        raise HubError(404, f"No route for {method} {path}")

    def _create_repo(self, payload: dict) -> None:
        repo_type = payload.get("type") or "model"
        repo_id = f"{payload.get('organization') or 'user'}/{payload['name']}"
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        url = f"{self.endpoint}/{prefix}{repo_id}"
        if (repo_type, repo_id) in self.hub.repos:  # the Hub still says where the repo is
            raise HubError(409, "You already created this repo", extra={"url": url})
        repo = Repo(private=bool(payload.get("private")) or payload.get("visibility") == "private")
        self.hub.new_commit(repo, {".gitattributes": b""}, "main")
        self.hub.repos[(repo_type, repo_id)] = repo
        self._json({"url": url, "name": repo_id, "id": repo_id})

    def _repo_info(self, repo_type: str, repo_id: str, repo: Repo, rev: str) -> None:
        sha = self.hub.commit_of(repo, rev)
        files = repo.commits[sha]
        self._json(
            {
                "id": repo_id,
                "_id": repo_id,
                "sha": sha,
                "private": repo.private,
                "siblings": [{"rfilename": p} for p in sorted(files)],
                "tags": [],
                "downloads": 0,
                "likes": 0,
            }
        )

    def _tree(self, repo: Repo, rev: str, sub: str, recursive: bool) -> None:
        files = repo.commits[self.hub.commit_of(repo, rev)]
        prefix = f"{sub.rstrip('/')}/" if sub else ""
        entries, folders = [], set()
        for p in sorted(files):
            if not p.startswith(prefix):
                continue
            rel = p[len(prefix) :]
            parts = rel.split("/")
            for depth in range(1, len(parts)):
                if recursive or depth == 1:
                    folders.add(prefix + "/".join(parts[:depth]))
            if recursive or len(parts) == 1:
                entries.append(
                    {"type": "file", "path": p, "size": len(files[p]), "oid": git_blob_sha(files[p])}
                )
        entries += [
            {"type": "directory", "path": f, "oid": git_blob_sha(f.encode())} for f in sorted(folders)
        ]
        if sub and not entries:
            raise HubError(404, f"{sub} does not exist", "EntryNotFound")
        self._json(entries)

    def _commit(self, repo_type: str, repo_id: str, repo: Repo, branch: str, body: bytes) -> None:
        sha = self.hub.commit_of(repo, branch)
        if branch not in repo.branches:
            raise HubError(400, f"Can only commit to a branch, not {branch}")
        files = dict(repo.commits[sha])
        for line in body.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "file":
                if value.get("encoding") != "base64":
                    raise HubError(400, "only base64 file content is supported")
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                files.pop(value["path"], None)
            elif key == "deletedFolder":
                folder = value["path"].rstrip("/") + "/"
                files = {p: d for p, d in files.items() if not p.startswith(folder)}
            elif key == "lfsFile":
                raise HubError(400, "this test Hub stores files in regular mode only")
            elif key != "header":
                raise HubError(400, f"unknown commit operation {key}")
        new = self.hub.new_commit(repo, files, branch)
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        self._json(
            {
                "commitUrl": f"{self.endpoint}/{prefix}{repo_id}/commit/{new}",
                "commitOid": new,
                "pullRequestUrl": None,
            }
        )

    def _resolve(self, repo_type: str, repo_id: str, rev: str, path: str, method: str) -> None:
        repo = self.hub.repo(repo_type[:-1] if repo_type.endswith("s") else repo_type, repo_id)
        sha = self.hub.commit_of(repo, rev)
        files = repo.commits[sha]
        if path not in files:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound")
        data = files[path]
        status, headers = (
            200,
            {
                "X-Repo-Commit": sha,
                "ETag": f'"{git_blob_sha(data)}"',
                "Content-Type": "application/octet-stream",
                "Accept-Ranges": "bytes",
            },
        )
        rng = re.match(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if rng and method == "GET":
            start = int(rng[1])
            stop = int(rng[2]) + 1 if rng[2] else len(data)
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{len(data)}"
            data, status = data[start:stop], 206
        self._send(status, data, headers, head=method == "HEAD")


class HubServer:
    """``with HubServer() as hub: ...`` serves a fresh FakeHub on 127.0.0.1 in a background thread."""

    def __init__(self) -> None:
        self.hub = FakeHub()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._server.RequestHandlerClass = type(
            "BoundHandler", (Handler,), {"hub": self.hub, "endpoint": self.endpoint}
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> HubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def serve_online(monkeypatch) -> Iterator[FakeHub]:
    """Run a HubServer with the real ``huggingface_hub`` client pointed at it, online, Xet disabled.

    A generator for pytest fixtures (``yield from serve_online(monkeypatch)``); yields the server's hub.
    """
    from huggingface_hub import constants

    with HubServer() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
        monkeypatch.setattr(constants, "ENDPOINT", server.endpoint)
        monkeypatch.setattr(
            constants,
            "HUGGINGFACE_CO_URL_TEMPLATE",
            server.endpoint + "/{repo_id}/resolve/{revision}/{filename}",
        )
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
        yield server.hub
