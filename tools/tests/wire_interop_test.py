"""Round trips frames between the C++ codec (netproto_frame_tool) and the Python
reference codec (tools/wire.py), both ways, every codec; and checks that both
reject the same hostile frames with the same error code.

Run by ctest: wire_interop_test.py --tool PATH --protos DIR
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import wire  # noqa: E402

TOOL = PROTOS = None


def run_tool(*args):
    r = subprocess.run([TOOL, *args], capture_output=True, text=True, timeout=60)
    return r.returncode, [json.loads(line) for line in r.stdout.splitlines()]


def header_dict(h: wire.Header) -> dict:
    return {"kind": int(h.kind), "codec": int(h.codec), "native": h.native, "priority": int(h.priority),
            "dest_kind": int(h.dest_kind), "dest_node": h.dest_node, "target_id": h.target_id}


class CppToPython(unittest.TestCase):
    def test_python_decodes_every_frame_the_cpp_encoder_wrote(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "cpp.bin")
            rc, sent = run_tool("write", path)
            self.assertEqual(rc, 0)
            data = open(path, "rb").read()
        decoder = wire.Decoder()
        frames = []
        for i in range(0, len(data), 5):  # split anywhere
            frames += decoder.feed(data[i:i + 5])
        decoder.finish()
        self.assertEqual(len(frames), len(sent))
        self.assertEqual({f.header.codec for f in frames}, {0, 1, 2}, "every codec used")
        for f, s in zip(frames, sent):
            self.assertEqual(header_dict(f.header), {k: s[k] for k in header_dict(f.header)})
            self.assertEqual(f.payload.hex(), s["payload"])
            msg = wire.parse_message(f)
            if f.header.kind == wire.Kind.RPC_CALL:
                self.assertEqual((msg.call_id, msg.service, msg.method), (7, "chat", "send"))
                self.assertEqual(msg.args[10].int_value, -(1 << 40))
                self.assertEqual(f.header.target_id, 0xABCDEF123456)
            if f.header.kind == wire.Kind.MOVEMENT:
                self.assertTrue(f.header.native)
                self.assertEqual((msg.entity_id, msg.x, msg.vy, msg.sequence), (123456789, 1e12, -3.5, 42))


class PythonToCpp(unittest.TestCase):
    def frames(self):
        import handshake_pb2
        import movement_pb2
        import rpc_pb2
        call = rpc_pb2.RpcCall(call_id=1, service="market", method="buy")
        for i in range(30):
            call.args.add().string_value = "order book line %d" % (i % 3)
        call.kwargs["qty"].int_value = 5
        call.kwargs["tags"].list_value.items.add().bytes_value = b"\x00\xff"
        notif = rpc_pb2.Notification(service="chat", event="line")
        notif.args.add().string_value = "x" * 5000
        move = movement_pb2.Movement(entity_id=77, x=-5.5, heading=1.0, sequence=3)
        out = []  # (the header meant, its kind, the frame's bytes)
        for codec in wire.Codec:
            for prio in wire.Priority:
                h = wire.Header(priority=prio, dest_kind=wire.Dest.SOL, dest_node=9, target_id=wire.MAX_TARGET_ID)
                out.append((h, wire.Kind.RPC_CALL, wire.encode_message(h, call, codec=codec, threshold=64)))
                out.append((h, wire.Kind.NOTIFICATION, wire.encode_message(h, notif, codec=codec, threshold=64)))
            h = wire.Header(native=True, dest_kind=wire.Dest.ENTITY, target_id=77)
            out.append((h, wire.Kind.MOVEMENT, wire.encode_message(h, move, codec=codec, threshold=64)))
            h = wire.Header(priority=wire.Priority.CONTROL)
            out.append((h, wire.Kind.HEARTBEAT, wire.encode_message(h, handshake_pb2.Heartbeat(nonce=1), codec=codec)))
        return out

    def test_cpp_decodes_every_frame_the_python_encoder_wrote(self):
        frames = self.frames()
        expected = []
        for meant, kind, raw in frames:
            # Header fields as meant (not as our own decoder reads them back), the
            # codec and payload as the frame carries them.
            (f,) = wire.Decoder().feed(raw)
            expected.append(dict(header_dict(meant), kind=int(kind), codec=int(f.header.codec), parsed=True,
                                 payload=f.payload.hex()))
        self.assertEqual({e["codec"] for e in expected}, {0, 1, 2}, "every codec used")
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "py.bin")
            open(path, "wb").write(b"".join(raw for _, _, raw in frames))
            rc, got = run_tool("read", path)
        self.assertEqual(rc, 0, got[-1:])
        self.assertEqual(got, expected)


class SameErrorsBothSides(unittest.TestCase):
    def check(self, data: bytes, code: str, limits=wire.Limits(4096, 8192)):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "bad.bin")
            open(path, "wb").write(data)
            rc, got = run_tool("read", path, str(limits.max_frame_bytes), str(limits.max_decompressed_bytes))
        self.assertEqual((rc, got[-1]), (2, {"error": code}))
        with self.assertRaises(wire.WireError) as e:
            dec = wire.Decoder(limits)
            dec.feed(data)
            dec.finish()
        self.assertEqual(e.exception.code, code)

    def test_oversized_length(self):
        self.check(b"\xff\xff\xff\x7f", "oversized")

    def test_truncated(self):
        self.check(wire.encode_frame(wire.Header(), b"abc")[:-1], "truncated")

    def test_bad_version_and_flags(self):
        good = wire.encode_frame(wire.Header(), b"abc")
        self.check(good[:4] + b"\x02" + good[5:], "bad_version")
        self.check(good[:6] + b"\x23" + good[7:], "bad_flags")
        self.check(good[:5] + b"\x00" + good[6:], "bad_header")

    def test_zlib_bomb(self):
        import zlib
        bomb = (8000).to_bytes(4, "little") + zlib.compress(bytes(3 << 20), 9)  # 3 MiB in ~3 KB
        self.check(wire.pack_prefix(wire.Header(codec=wire.Codec.ZLIB), len(bomb)) + bomb, "decompressed_too_large")

    def test_zlib_bomb_declaring_zero_bytes(self):
        import zlib
        bomb = (0).to_bytes(4, "little") + zlib.compress(bytes(3 << 20), 9)
        self.check(wire.pack_prefix(wire.Header(codec=wire.Codec.ZLIB), len(bomb)) + bomb, "decompressed_too_large")

    def test_snappy_declared_too_large(self):
        claim = wire._varint(1 << 30) + b"\x00"
        self.check(wire.pack_prefix(wire.Header(codec=wire.Codec.SNAPPY), len(claim)) + claim,
                   "decompressed_too_large")

    def test_corrupt_snappy(self):
        bad = wire._varint(100) + b"\x01\x05"  # a copy before any output
        self.check(wire.pack_prefix(wire.Header(codec=wire.Codec.SNAPPY), len(bad)) + bad, "decompress_failed")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--tool", required=True)
    parser.add_argument("--protos", required=True)
    args, rest = parser.parse_known_args()
    TOOL, PROTOS = args.tool, args.protos
    wire.load_protos(PROTOS)
    unittest.main(argv=[sys.argv[0], "-v", *rest])
