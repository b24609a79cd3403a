"""A stand-in for the Hugging Face Hub's HTTP side, for tests: it listens on 127.0.0.1 only, on a random port,
records every request it receives, and stops by itself after `lifetime` seconds should a test forget it.

It serves the repositories it is given (`models` / `datasets`: Hub id -> a folder whose files are the repository's)
as the Hub does for the clients' calls: `resolve/<revision>/<file>` (HEAD and GET, with `X-Repo-Commit` and `ETag`),
repository info by revision (`/api/models|datasets/<id>/revision/<rev>`), the file tree and `paths-info`. A
repository it does not hold answers as the Hub answers one that does not exist (401, `X-Error-Code:
RepoNotFound`); `gated` ids answer as a gated repository (403, `GatedRepo`); `failing` ids answer 500; `slow` ids
answer after `slow_seconds`. Any other request (e.g. to an HTTP proxy) gets 200 and an empty body.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"  # every repository's one commit


def _files(folder: Path) -> dict[str, Path]:
    return {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}


class HubServer:
    def __init__(
        self,
        models: dict[str, Path] | None = None,
        datasets: dict[str, Path] | None = None,
        gated: tuple[str, ...] = (),
        failing: tuple[str, ...] = (),
        slow: tuple[str, ...] = (),
        slow_seconds: float = 60.0,
        lifetime: float = 300.0,
    ):
        self.repos = {
            **{("model", k): _files(Path(v)) for k, v in (models or {}).items()},
            **{("dataset", k): _files(Path(v)) for k, v in (datasets or {}).items()},
        }
        self.gated, self.failing, self.slow, self.slow_seconds = set(gated), set(failing), set(slow), slow_seconds
        self.requests: list[tuple[str, str]] = []  # (method, path) in arrival order
        self.created: list[str] = []  # repositories created through the API
        self.validated: list[str] = []  # model cards whose metadata was checked
        self.commits: list[dict] = []  # each commit received: repo, summary, files
        self._etags: dict[Path, str] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_HEAD(self) -> None:
                server.answer(self, body=False)

            def do_GET(self) -> None:
                server.answer(self, body=True)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                server.answer(self, body=True, posted=self.rfile.read(length) if length else b"")

            def do_CONNECT(self) -> None:  # a client tunnelling HTTPS through this server as its proxy
                server.requests.append((self.command, self.path))
                server.send(self, 502, b"", body=False)  # no way on from here: the tunnel is refused

            def log_message(self, *args) -> None:  # quiet
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._timer = threading.Timer(lifetime, self.stop)
        self._timer.daemon = True

    def __enter__(self) -> HubServer:
        self._thread.start()
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._timer.cancel()
        self._http.shutdown()
        self._http.server_close()

    # ------------------------------------------------------------------------------------------------- answers
    def etag(self, path: Path | bytes) -> str:
        if isinstance(path, bytes):
            return hashlib.sha256(path).hexdigest()
        if path not in self._etags:
            self._etags[path] = hashlib.sha256(path.read_bytes()).hexdigest()
        return self._etags[path]

    @staticmethod
    def content(path: Path | bytes) -> bytes:
        return path if isinstance(path, bytes) else path.read_bytes()

    @staticmethod
    def send(handler, status: int, data: bytes = b"", headers: dict[str, str] | None = None, body=True) -> None:
        handler.send_response(status)
        for k, v in (headers or {}).items():
            handler.send_header(k, v)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if body and data:
            handler.wfile.write(data)

    def send_json(self, handler, value, body=True, status=200) -> None:
        self.send(handler, status, json.dumps(value).encode(), {"Content-Type": "application/json"}, body)

    def refuse(self, handler, kind: str, repo: str, body: bool) -> bool:
        """Answer as the Hub answers for a repository this server does not serve as-is; False to go on."""
        if repo in self.slow:
            time.sleep(self.slow_seconds)
        if repo in self.failing:
            self.send(handler, 500, b'{"error": "Internal Error"}', {"Content-Type": "application/json"}, body)
            return True
        if repo in self.gated:
            message = f"Access to model {repo} is restricted. You must have access to it and be authenticated."
            headers = {"X-Error-Code": "GatedRepo", "X-Error-Message": message, "Content-Type": "application/json"}
            self.send(handler, 403, json.dumps({"error": message}).encode(), headers, body)
            return True
        if (kind, repo) not in self.repos:
            message = "Repository not found"
            headers = {"X-Error-Code": "RepoNotFound", "X-Error-Message": message, "Content-Type": "application/json"}
            self.send(handler, 401, json.dumps({"error": message}).encode(), headers, body)
            return True
        return False

    def answer(self, handler, body: bool, posted: bytes = b"") -> None:
        self.requests.append((handler.command, handler.path))
        url = urllib.parse.urlsplit(handler.path)
        parts = [urllib.parse.unquote(p) for p in url.path.strip("/").split("/")]
        api = parts[:1] == ["api"]
        if api:
            parts = parts[1:]
        kind = "model"
        if parts[:1] in (["datasets"], ["models"]):
            kind = "dataset" if parts[0] == "datasets" else "model"
            parts = parts[1:]
        if api and parts[:1] == ["validate-yaml"] and handler.command == "POST":
            return self.validate(handler, json.loads(posted or b"{}"), body)
        if api and parts[:2] == ["repos", "create"] and handler.command == "POST":
            return self.create(handler, json.loads(posted or b"{}"), body)
        if len(parts) < 2:
            return self.send(handler, 200, b"", body=body)  # anything else: a proxy's or a probe's request
        repo, rest = "/".join(parts[:2]), parts[2:]
        if self.refuse(handler, kind, repo, body):
            return None
        files = self.repos[(kind, repo)]
        if not api and rest[:1] == ["resolve"] and len(rest) >= 3:
            name = "/".join(rest[2:])
            if name not in files:
                headers = {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": COMMIT}
                return self.send(handler, 404, b"Entry not found", headers, body)
            path = files[name]
            headers = {"X-Repo-Commit": COMMIT, "ETag": f'"{self.etag(path)}"', "Accept-Ranges": "bytes"}
            data = self.content(path)
            ranged = handler.headers.get("Range")
            if ranged and ranged.startswith("bytes=") and body:
                start, _, end = ranged[6:].partition("-")
                start, end = int(start or 0), int(end) if end else len(data) - 1
                headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
                return self.send(handler, 206, data[start : end + 1], headers, body)
            return self.send(handler, 200, data, headers, body)
        if api and (not rest or rest[:1] == ["revision"]):
            return self.send_json(handler, self.info(kind, repo), body)
        if api and rest[:1] == ["tree"]:
            prefix = "/".join(rest[2:])
            recursive = urllib.parse.parse_qs(url.query).get("recursive", ["false"])[0].lower() == "true"
            return self.send_json(handler, self.tree(files, prefix, recursive), body)
        if api and rest[:1] == ["preupload"] and handler.command == "POST":
            asked = json.loads(posted or b"{}").get("files", [])
            answer = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in asked]
            return self.send_json(handler, {"files": answer, "commitOid": COMMIT}, body)
        if api and rest[:1] == ["commit"] and handler.command == "POST":
            return self.commit(handler, kind, repo, posted, body)
        if api and rest[:1] == ["paths-info"]:
            form = urllib.parse.parse_qs(posted.decode())
            asked = form.get("paths") or (json.loads(posted or b"{}").get("paths", []) if posted[:1] == b"{" else [])
            entries = [e for e in self.tree(files, "", True) if e["path"] in asked]
            entries += [e for e in self.tree(files, "", True, folders_only=True) if e["path"] in asked]
            return self.send_json(handler, entries, body)
        return self.send(handler, 404, b"Not found", {"X-Error-Code": "EntryNotFound"}, body)

    def validate(self, handler, asked: dict, body: bool) -> None:
        """POST /api/validate-yaml: the card's metadata must parse (here with huggingface_hub's own card parser)."""
        from huggingface_hub import ModelCard

        try:
            ModelCard(asked.get("content", ""), ignore_metadata_errors=False)
        except Exception as err:  # noqa: BLE001 - any parse failure is the card's error
            return self.send_json(handler, {"errors": [{"message": str(err)}]}, body, 400)
        self.validated.append(asked.get("content", ""))
        return self.send_json(handler, {"errors": [], "warnings": []}, body)

    def authorised(self, handler) -> bool:
        return handler.headers.get("Authorization", "").startswith("Bearer ")

    def create(self, handler, asked: dict, body: bool) -> None:
        """POST /api/repos/create: a new, empty repository (with a token only)."""
        if not self.authorised(handler):
            return self.send_json(handler, {"error": "Invalid credentials in Authorization header"}, body, 401)
        repo = f"{asked['organization']}/{asked['name']}" if asked.get("organization") else asked["name"]
        kind = {"dataset": "dataset"}.get(asked.get("type") or "model", "model")
        if (kind, repo) in self.repos:
            return self.send_json(
                handler, {"error": "You already created this model repo", "url": f"{self.url}/{repo}"}, body, 409
            )
        self.repos[(kind, repo)] = {}
        self.created.append(repo)
        return self.send_json(handler, {"url": f"{self.url}/{repo}", "name": repo}, body)

    def commit(self, handler, kind: str, repo: str, posted: bytes, body: bool) -> None:
        """POST /api/<kind>s/<id>/commit/<revision>: NDJSON lines, a header then one line per file (base64)."""
        import base64

        if not self.authorised(handler):
            return self.send_json(handler, {"error": "Invalid credentials in Authorization header"}, body, 401)
        files, summary = {}, ""
        for line in posted.decode().splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            if item["key"] == "header":
                summary = item["value"].get("summary", "")
            elif item["key"] == "file":
                value = item["value"]
                files[value["path"]] = base64.b64decode(value["content"])
            elif item["key"] == "deletedFile":
                self.repos[(kind, repo)].pop(item["value"]["path"], None)
        self.repos[(kind, repo)].update(files)
        self.commits.append({"repo": repo, "summary": summary, "files": sorted(files)})
        return self.send_json(
            handler, {"commitUrl": f"{self.url}/{repo}/commit/{COMMIT}", "commitOid": COMMIT, "success": True}, body
        )

    def info(self, kind: str, repo: str) -> dict:
        files = self.repos[(kind, repo)]
        return {
            "_id": repo,
            "id": repo,
            "sha": COMMIT,
            "private": False,
            "gated": False,
            "disabled": False,
            "lastModified": "2024-01-01T00:00:00.000Z",
            "tags": [],
            "downloads": 0,
            "likes": 0,
            "siblings": [{"rfilename": name} for name in files],
            "cardData": {},
        }

    def tree(self, files: dict[str, Path], prefix: str, recursive: bool, folders_only: bool = False) -> list[dict]:
        prefix = prefix.strip("/")
        under = {n: p for n, p in files.items() if not prefix or n.startswith(prefix + "/")}
        folders, entries = set(), []
        for name, path in under.items():
            rel = name[len(prefix) + 1 :] if prefix else name
            pieces = rel.split("/")
            for depth in range(1, len(pieces)):
                if recursive or depth == 1:
                    folders.add("/".join(filter(None, [prefix, *pieces[:depth]])))
            if folders_only or (not recursive and len(pieces) > 1):
                continue
            size = len(path) if isinstance(path, bytes) else path.stat().st_size
            entries.append(
                {
                    "type": "file",
                    "oid": self.etag(path)[:40],
                    "size": size,
                    "path": name,
                    "lfs": {"oid": self.etag(path), "size": size, "pointerSize": 130},
                }
            )
        entries += [{"type": "directory", "oid": COMMIT, "size": 0, "path": f} for f in sorted(folders)]
        return entries
