"""Framed echo served by shard tasklets: one plain synchronous tasklet per
connection (run inside `shard python`). Prints "ready PORT"."""
import sys

import _net
import stackless

listener = _net.listen("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0, max_per_address=100000)


def serve(connection):
    connection.blockingsend = False
    try:
        while True:
            connection.sendpacket(connection.recvpacket())
    except _net.error:
        pass


def accept_forever():
    while True:
        stackless.tasklet(serve)(listener.accept())


stackless.tasklet(accept_forever)()
print("ready", listener.port, flush=True)
stackless.run()
