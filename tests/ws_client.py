"""A minimal blocking RFC 6455 WebSocket client on a plain socket, for the integration
tests (text frames and close frames only; no extensions). Every read has a timeout."""

from __future__ import annotations

import base64
import os
import socket
import struct

__all__ = ["HandshakeRefusedError", "WsClient"]

_TEXT, _CLOSE = 0x1, 0x8


class HandshakeRefusedError(Exception):
    """The server answered the upgrade with ``status`` instead of 101."""

    def __init__(self, status: int) -> None:
        super().__init__(f"handshake answered {status}")
        self.status = status


class WsClient:
    """One connection to ``ws://host:port{path}``; :class:`HandshakeRefusedError` if
    the server refuses the upgrade."""

    def __init__(self, host: str, port: int, path: str, timeout_s: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout_s)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            head += chunk
        status = int(head.split(b" ", 2)[1])
        if status != 101:
            self.sock.close()
            raise HandshakeRefusedError(status)

    def _read(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("connection closed mid-frame")
            data += chunk
        return data

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        size = len(payload)
        if size < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
        else:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def send_text(self, text: str) -> None:
        self._send(_TEXT, text.encode())

    def receive(self) -> tuple[int, bytes]:
        """The next frame: its opcode and payload (server frames are not masked)."""
        first, second = self._read(2)
        size = second & 0x7F
        if size == 126:
            size = struct.unpack("!H", self._read(2))[0]
        elif size == 127:
            size = struct.unpack("!Q", self._read(8))[0]
        return first & 0x0F, self._read(size)

    def receive_text(self) -> str:
        opcode, payload = self.receive()
        assert opcode == _TEXT, (opcode, payload)
        return payload.decode()

    def closed_with(self) -> int:
        """Wait for the server's close frame; its code (1005 when it has none, 1006 when
        the server dropped the connection without one)."""
        try:
            opcode, payload = self.receive()
        except ConnectionError:
            self.sock.close()
            return 1006
        assert opcode == _CLOSE, (opcode, payload)
        self._send(_CLOSE, payload[:2])
        self.sock.close()
        return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005

    def close(self, code: int = 1000) -> int:
        """Close from the client side; the code the server echoed."""
        self._send(_CLOSE, struct.pack("!H", code))
        opcode, payload = self.receive()
        self.sock.close()
        assert opcode == _CLOSE, (opcode, payload)
        return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
