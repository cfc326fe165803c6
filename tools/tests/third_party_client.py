"""A client written from docs/protocol.md and the .proto files alone: the
classes stock `protoc --python_out` generates, plain sockets, `ssl`, `zlib`,
`struct` — nothing of the shard's own code (not even tools/wire.py). It
connects, handshakes (with TLS when asked), exchanges a heartbeat, sends a
Notification large enough to be compressed and reads the server's echo of it.
Prints one JSON line with what was agreed.

  /usr/bin/python3.11 third_party_client.py --port N --protos DIR [--tls-ca FILE]
"""
import argparse
import json
import socket
import ssl
import struct
import sys
import time
import zlib

PREFIX = struct.Struct("<IBBBBH6s")  # length, version, kind, flags, dest_kind, dest_node, target_id (u48)
HELLO, HELLO_REPLY, NOTIFICATION, HEARTBEAT = 1, 2, 9, 11
CODEC_NONE, CODEC_SNAPPY, CODEC_ZLIB = 0, 1, 2
PRIORITY_CONTROL = 3


def frame(kind, payload, codec=CODEC_NONE, priority=1):
    flags = codec | (priority << 3)
    return PREFIX.pack(12 + len(payload), 1, kind, flags, 0, 0, bytes(6)) + payload


def recv_exactly(sock, n):
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("the server closed the connection")
        data += chunk
    return bytes(data)


def read_frame(sock, max_frame):
    (length,) = struct.unpack("<I", recv_exactly(sock, 4))
    if not 12 <= length <= max_frame:
        raise ValueError("frame length %d out of range" % length)
    body = recv_exactly(sock, length)
    _, version, kind, flags, _, _, _ = PREFIX.unpack(struct.pack("<I", length) + body[:12])
    if version != 1 or flags & 0xE0:
        raise ValueError("bad header")
    payload = body[12:]
    codec = flags & 3
    if codec == CODEC_ZLIB:
        (size,) = struct.unpack_from("<I", payload)
        inflater = zlib.decompressobj()
        payload = inflater.decompress(payload[4:], size)
        if len(payload) != size or not inflater.eof or inflater.unconsumed_tail or inflater.unused_data:
            raise ValueError("bad zlib payload")
    elif codec != CODEC_NONE:
        raise ValueError("codec %d was not negotiated" % codec)
    return kind, payload


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--protos", required=True, help="folder of the *_pb2.py protoc generated")
    parser.add_argument("--tls-ca", help="PEM file of the CA that signed the server's certificate")
    args = parser.parse_args()
    sys.path.insert(0, args.protos)
    import handshake_pb2
    import rpc_pb2
    import value_pb2

    sock = socket.create_connection(("127.0.0.1", args.port), timeout=10)
    tls = args.tls_ca is not None
    # No snappy in the standard library: this client offers zlib only.
    hello = handshake_pb2.Hello(min_version=1, max_version=1, compression=[handshake_pb2.COMPRESSION_ZLIB],
                                tls_supported=tls, tls_required=tls, role=handshake_pb2.ROLE_CLIENT,
                                software="third_party_client.py", max_frame_bytes=1 << 20)
    sock.sendall(frame(HELLO, hello.SerializeToString(), priority=PRIORITY_CONTROL))
    kind, payload = read_frame(sock, 4096)
    assert kind == HELLO_REPLY, kind
    reply = handshake_pb2.HelloReply.FromString(payload)
    if not reply.accepted:
        raise SystemExit("refused: " + reply.reason)
    if reply.tls != tls:
        raise SystemExit("the server answered tls=%s" % reply.tls)
    if tls:
        context = ssl.create_default_context(cafile=args.tls_ca)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        sock = context.wrap_socket(sock, server_hostname="127.0.0.1")

    nonce = 0x5EED
    beat = handshake_pb2.Heartbeat(nonce=nonce, sent_us=int(time.monotonic() * 1e6))
    sock.sendall(frame(HEARTBEAT, beat.SerializeToString(), priority=PRIORITY_CONTROL))
    kind, payload = read_frame(sock, reply.max_frame_bytes)
    echo = handshake_pb2.Heartbeat.FromString(payload)
    assert kind == HEARTBEAT and echo.echo and echo.nonce == nonce and echo.sent_us == beat.sent_us, echo
    rtt_us = int(time.monotonic() * 1e6) - echo.sent_us

    note = rpc_pb2.Notification(service="chat", event="said", args=[value_pb2.Value(string_value="hello " * 2000)])
    plain = note.SerializeToString()
    assert len(plain) >= reply.compress_threshold
    sent = struct.pack("<I", len(plain)) + zlib.compress(plain) if reply.compression == CODEC_ZLIB else plain
    sock.sendall(frame(NOTIFICATION, sent, codec=reply.compression))
    kind, payload = read_frame(sock, reply.max_frame_bytes)
    assert kind == NOTIFICATION and rpc_pb2.Notification.FromString(payload) == note
    print(json.dumps({"tls": sock.version() if tls else None, "compression": reply.compression,
                      "version": reply.version, "heartbeat_rtt_us": rtt_us, "notification_bytes": len(plain),
                      "sent_bytes": len(sent)}))
    sock.close()


if __name__ == "__main__":
    main()
