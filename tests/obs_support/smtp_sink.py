"""A minimal SMTP server on loopback that stores the messages it receives (stands in for the
mail relay; the conversation and the message are the ones Alertmanager really sends)."""

from __future__ import annotations

import socketserver
import threading
from email import message_from_bytes
from email.message import Message

# what the sink answers to each command but DATA and QUIT; anything else is not implemented
_REPLIES = {
    "EHLO": ("250-sink", "250 8BITMIME"),
    "HELO": ("250-sink", "250 8BITMIME"),
    "MAIL": ("250 ok",),
    "RCPT": ("250 ok",),
    "RSET": ("250 ok",),
    "NOOP": ("250 ok",),
}
_NOT_IMPLEMENTED = ("502 not implemented",)
_END_OF_DATA = (b".\r\n", b".\n", b"")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True

    def __init__(self, messages: list[Message]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.messages = messages


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self.reply("220 sink ESMTP")
        while raw := self.rfile.readline():
            verb = raw.decode(errors="replace").strip().split(" ", 1)[0].upper()
            if verb == "QUIT":
                self.reply("221 bye")
                return
            if verb == "DATA":
                self.receive_message()
                continue
            for line in _REPLIES.get(verb, _NOT_IMPLEMENTED):
                self.reply(line)

    def receive_message(self) -> None:
        self.reply("354 end with .")
        lines = []
        while (line := self.rfile.readline()) not in _END_OF_DATA:
            lines.append(line[1:] if line.startswith(b"..") else line)
        self.server.messages.append(message_from_bytes(b"".join(lines)))
        self.reply("250 queued")


class SmtpSink:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.server = _Server(self.messages)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
