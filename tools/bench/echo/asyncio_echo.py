"""Framed echo (4-byte little-endian length + body) on asyncio: `protocol`
(callbacks) or `streams`, on the default loop or uvloop. Prints "ready PORT".

    asyncio_echo.py {protocol|streams} {asyncio|uvloop}"""
import asyncio
import struct
import sys


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buffer = bytearray()

    def data_received(self, data):
        self.buffer += data
        end = 0
        while len(self.buffer) - end >= 4:
            (length,) = struct.unpack_from("<I", self.buffer, end)
            if len(self.buffer) - end < 4 + length:
                break
            end += 4 + length
        if end:
            self.transport.write(bytes(self.buffer[:end]))
            del self.buffer[:end]


async def stream_echo(reader, writer):
    try:
        while True:
            head = await reader.readexactly(4)
            (length,) = struct.unpack("<I", head)
            writer.write(head + await reader.readexactly(length))
    except asyncio.IncompleteReadError:
        writer.close()


async def main(style):
    if style == "protocol":
        server = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", 0, backlog=4096)
    else:
        server = await asyncio.start_server(stream_echo, "127.0.0.1", 0, backlog=4096)
    print("ready", server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


style, loop = sys.argv[1], sys.argv[2]
if loop == "uvloop":
    import uvloop
    uvloop.install()
asyncio.run(main(style))
