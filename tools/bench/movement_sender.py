"""The clients of movement_paths.py, in a separate stock /usr/bin/python3.11
process so that their work is not on the server's CPU clock.

    movement_sender.py PORT CONNECTIONS FRAMES native|rpc

Each connection moves one entity (ids 1..CONNECTIONS): it speaks the
handshake (a Hello offering no codec), then waits for a line on standard
input, then writes FRAMES moves built before the clock starts, as fast as
the socket takes them: `native` as Movement frames with the out-of-band
header the proxy and sol route by (kind 10, native flag, dest entity), `rpc`
as one-way RpcCalls of `movement.move(entity_id, x, y, z, vx, vy, vz,
sequence)` (call id 0: no reply). A thread per connection reads and drops
what the server sends back (the neighbours' updates). Prints "ready" once
connected and "sent" when every frame is written.
"""

import os
import socket
import struct
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "build", "netproto", "python"))

import movement_pb2  # noqa: E402  (stock protoc output)
import rpc_pb2  # noqa: E402

HELLO_PAYLOAD = bytes([0x08, 0x01, 0x10, 0x01])  # Hello{min_version 1, max_version 1}: no codec, no TLS
HELLO, MOVEMENT, RPC_CALL = 1, 10, 6
NATIVE_HIGH, NORMAL = 0x04 | (2 << 3), 1 << 3  # flags: native + priority high; priority normal
DEST_ENTITY = 4


def frame(kind, payload, flags=NORMAL, dest_kind=0, target_id=0):
    return (struct.pack("<IBBBBH", 12 + len(payload), 1, kind, flags, dest_kind, 0)
            + target_id.to_bytes(6, "little") + payload)


def position(entity, sequence):
    # Pairs of entities (1 and 2, 3 and 4, ...) 1 km apart: each hears its
    # partner; the pairs are 10^7 m apart. Each move advances 1 micrometre at
    # 1 m/s: well inside the speed limit however fast the moves come.
    return ((entity - 1) // 2) * 1e7 + ((entity - 1) % 2) * 1e3 + sequence * 1e-6, 0.0, 0.0


def moves(entity, frames, how):
    out = bytearray()
    for sequence in range(1, frames + 1):
        x, y, z = position(entity, sequence)
        if how == "native":
            move = movement_pb2.Movement(entity_id=entity, x=x, y=y, z=z, vx=1.0, sequence=sequence)
            out += frame(MOVEMENT, move.SerializeToString(), NATIVE_HIGH, DEST_ENTITY, entity)
        else:
            call = rpc_pb2.RpcCall(call_id=0, service="movement", method="move")
            for value in (entity, x, y, z, 1.0, 0.0, 0.0, sequence):
                arg = call.args.add()
                if isinstance(value, int):
                    arg.int_value = value
                else:
                    arg.double_value = value
            out += frame(RPC_CALL, call.SerializeToString())
    return bytes(out)


def recv_exactly(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("the server closed the connection during the handshake")
        data += chunk
    return data


def drain(sock):
    try:
        while sock.recv(1 << 16):
            pass
    except OSError:
        pass


def main():
    port, connections, frames, how = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    blobs = [moves(entity, frames, how) for entity in range(1, connections + 1)]
    socks = []
    for _ in range(connections):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(frame(HELLO, HELLO_PAYLOAD))
        length = struct.unpack("<I", recv_exactly(sock, 4))[0]
        recv_exactly(sock, length)  # the HelloReply
        threading.Thread(target=drain, args=(sock,), daemon=True).start()
        socks.append(sock)
    print("ready", flush=True)
    sys.stdin.readline()
    writers = [threading.Thread(target=sock.sendall, args=(blob,)) for sock, blob in zip(socks, blobs)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    print("sent", flush=True)
    sys.stdin.readline()  # the server is done: close
    for sock in socks:
        sock.close()


if __name__ == "__main__":
    main()
