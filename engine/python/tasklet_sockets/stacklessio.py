"""The StacklessIO socket extensions EVE used, on tasklet sockets:

- sendpacket(data): one length-framed packet (a 4-byte big-endian length,
  then the payload), written whole; recvpacket(max_size=16 MiB): the next
  one's payload, read and framed by an IO thread on the tasklets' thread
  (_engine.io_read_packet; in Python through TLS and on other threads). EOFError at the end of the stream between packets (as
  multiprocessing's connections), OSError "got end of file during message"
  inside one, OSError(EMSGSIZE) for a length over max_size (read nothing more:
  the stream is out of step, close it).
- send(a, b, (c, d), ...): a gather send of every buffer in order (sendmsg,
  never joined in Python), written whole; returns the bytes written. send(data)
  and send(data, flags) are the stock calls.
- blockingsend = False: send, sendall and sendpacket queue their data (copied)
  and return at once; a writer tasklet writes the queue in order; an error it
  meets is raised by the socket's next call; close() first lets the queue be
  written (within the socket's timeout). Only on the tasklets' thread; elsewhere
  sends block as stock ones.

Mixed into socket_patch.socket, whose slots hold the state.
"""

import _engine
import collections
import errno
import struct

import stackless

from . import waiting

HEADER = struct.Struct(">I")
DEFAULT_MAX_PACKET = 16 << 20
IOV_MAX = 1024  # buffers per sendmsg()
# _user_timeout of a socket still in the stock state (a real timeout is None
# or >= 0); one object, compared with `is` (socket_patch imports it).
_STOCK = -1.0


def _views(buffers, out):
    """Flattens buffers and (nested) tuples/lists of them into byte views."""
    for b in buffers:
        if isinstance(b, (tuple, list)):
            _views(b, out)
        else:
            view = memoryview(b).cast("B")
            if len(view):
                out.append(view)
    return out


class StacklessIOMixin:
    __slots__ = ()

    # ---- packets

    def sendpacket(self, data):
        """Writes one packet: the 4-byte length of data, then data."""
        view = memoryview(data).cast("B")
        self._gather_all([HEADER.pack(len(view)), view])

    # An IO thread can read the packet off a plain socket (not through TLS).
    _frames_on_io_thread = True

    def recvpacket(self, max_size=DEFAULT_MAX_PACKET):
        """The next packet's payload (see the module docstring)."""
        self._raise_send_error()
        if self._frames_on_io_thread and waiting.cooperative():
            timeout = self._user_timeout
            if timeout is _STOCK:
                timeout = self._cooperate()
            if timeout != 0.0:  # framed by an IO thread while only this tasklet waits
                return _engine.io_read_packet(self.fileno(), max_size, timeout)
        header = self._recv_exactly(HEADER.size, at_boundary=True)
        (size,) = HEADER.unpack(header)
        if size > max_size:
            raise OSError(errno.EMSGSIZE, f"packet of {size} bytes over the limit of {max_size}")
        return bytes(self._recv_exactly(size, at_boundary=False))

    def _recv_exactly(self, size, at_boundary):
        buffer = bytearray(size)
        view = memoryview(buffer)
        got = 0
        while got < size:
            n = self.recv_into(view[got:])
            if n == 0:
                if got == 0 and at_boundary:
                    raise EOFError
                raise OSError("got end of file during message")
            got += n
        return buffer

    # ---- gather sends and non-blocking sends

    def send(self, data, *more):
        if more and not isinstance(more[0], int):
            views = _views((data,) + more, [])
            self._gather_all(views)
            return sum(map(len, views))
        if self._send_queue is None and self._send_error is None:
            return self._send_one(data, *more)  # the stock call (the common case first)
        self._raise_send_error()
        if self._send_queue is not None and waiting.cooperative():
            self._queue([data])
            return len(memoryview(data).cast("B"))
        return self._send_one(data, *more)

    def sendall(self, data, flags=0):
        if self._send_queue is None and self._send_error is None:
            return self._sendall_one(data, flags)
        self._raise_send_error()
        if self._send_queue is not None and waiting.cooperative() and not flags:
            return self._queue([data])
        return self._sendall_one(data, flags)

    def _gather_all(self, buffers):
        self._raise_send_error()
        views = _views(buffers, [])
        if self._send_queue is not None and waiting.cooperative():
            return self._queue(views)
        self._write_views(views)

    def _write_views(self, views):
        views = collections.deque(views)
        while views:
            sent = self.sendmsg(list(views)[:IOV_MAX])
            while sent and views:
                if sent >= len(views[0]):
                    sent -= len(views.popleft())
                else:
                    views[0] = views[0][sent:]
                    sent = 0

    @property
    def blockingsend(self):
        return self._send_queue is None

    @blockingsend.setter
    def blockingsend(self, flag):
        if flag:
            self.flush()
            self._send_queue = None
        elif self._send_queue is None:
            self._send_queue = collections.deque()

    def _queue(self, buffers):
        self._send_queue.extend(bytes(b) for b in buffers)  # copied: the caller may reuse its buffer
        if self._writer is None:
            self._writer = stackless.tasklet(self._write_queue)()

    def _write_queue(self):
        queue = self._send_queue
        try:
            while queue:
                views = [memoryview(b) for b in list(queue)[:IOV_MAX]]
                sent = self.sendmsg(views)
                while sent and queue:
                    if sent >= len(queue[0]):
                        sent -= len(queue.popleft())
                    else:
                        queue[0] = queue[0][sent:]
                        sent = 0
        except Exception as e:
            queue.clear()
            self._send_error = e
        finally:
            self._writer = None

    def _raise_send_error(self):
        error = self._send_error
        if error is not None:
            self._send_error = None
            raise error

    def flush(self):
        """Waits until the queued sends of blockingsend = False are written
        (TimeoutError past the socket's timeout); raises their error."""
        deadline = waiting.deadline_after(self.gettimeout())
        while self._writer is not None and waiting.cooperative():
            if deadline is not None and waiting.remaining(deadline) <= 0:
                raise TimeoutError("timed out")
            waiting.sleep(0.001)
        self._raise_send_error()
