"""Framed echo (4-byte little-endian length + body) on gevent's StreamServer.
Prints "ready PORT"."""
import struct
import sys

from gevent.server import StreamServer


def handle(sock, address):
    buffer = b""
    while True:
        data = sock.recv(65536)
        if not data:
            return
        buffer += data
        out = []
        while len(buffer) >= 4:
            (length,) = struct.unpack_from("<I", buffer)
            if len(buffer) < 4 + length:
                break
            out.append(buffer[:4 + length])
            buffer = buffer[4 + length:]
        if out:
            sock.sendall(b"".join(out))


server = StreamServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0), handle, backlog=4096)
server.start()
print("ready", server.server_port, flush=True)
server.serve_forever()
