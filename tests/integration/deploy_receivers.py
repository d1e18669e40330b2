"""Local receivers for Alertmanager's notifications: a webhook (HTTP) and a mail server (SMTP).

Both listen on 127.0.0.1 in a daemon thread and keep what they receive, so a test can wait
for a notification the way an on-call system or a mailbox would get it.
"""

from __future__ import annotations

import json
import socketserver
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

from cartwatch.streams.devtools.broker import free_port


class _Receiver:
    """A server in a daemon thread; `received` holds what arrived."""

    server: socketserver.BaseServer

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list = []
        self._lock = threading.Lock()

    def keep(self, item: object) -> None:
        with self._lock:
            self.received.append(item)

    def start(self) -> Self:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, accept: Callable[[object], bool], timeout: float) -> object:
        """The first item `accept` likes, waiting up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                found = [item for item in self.received if accept(item)]
            if found:
                return found[0]
            time.sleep(0.2)
        raise AssertionError(f"nothing accepted within {timeout} s; received {self.received!r}")


class WebhookReceiver(_Receiver):
    """Alertmanager's webhook_config target: keeps each POSTed JSON body."""

    def __init__(self) -> None:
        super().__init__()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.keep({"path": self.path, "body": json.loads(body)})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class SmtpSink(_Receiver):
    """A minimal SMTP server (RFC 5321 commands Alertmanager sends, no TLS, no auth)."""

    def __init__(self) -> None:
        super().__init__()
        receiver = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")

            def handle(self) -> None:
                self.reply("220 127.0.0.1 test SMTP sink")
                mail: dict = {"to": [], "data": ""}
                while line := self.rfile.readline():
                    command = line.decode(errors="replace").strip()
                    verb = command.split(" ", 1)[0].upper()
                    if verb in ("EHLO", "HELO"):
                        self.reply("250 127.0.0.1")
                    elif verb == "RCPT":
                        mail["to"].append(command.split(":", 1)[1].strip(" <>"))
                        self.reply("250 OK")
                    elif verb == "DATA":
                        self.reply("354 end with <CRLF>.<CRLF>")
                        mail["data"] = self._read_data()
                        receiver.keep(mail)
                        mail = {"to": [], "data": ""}
                        self.reply("250 OK queued")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:  # MAIL, RSET, NOOP
                        self.reply("250 OK")

            def _read_data(self) -> str:
                lines = []
                while (line := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
                    lines.append(line.decode(errors="replace"))
                return "".join(lines)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
