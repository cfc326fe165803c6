"""socket.socket whose blocking calls block only the calling tasklet, and the
name lookups on worker threads. Installed into the socket module by
tasklet_sockets (see its docstring for the rules).

A socket starts in the stock state: its descriptor's blocking mode and its
timeout are the kernel's and _socket's, and every call is the stock one. The
first blocking call made on the tasklets' thread switches it to cooperative
mode for good: the descriptor becomes non-blocking (_socket's timeout 0), the
timeout the program set is kept in `_user_timeout`, and each call tries the
non-blocking operation, waits for readiness on EAGAIN (on the IO threads, or
in poll() on another OS thread) and tries again, with CPython's timeout
("timed out") and errors. detach() hands the descriptor back in the blocking
mode the stock socket would have left it in.
"""

import _engine
import _socket
import errno
import operator
import os
import socket as _socket_module
import time

from . import waiting
from .stacklessio import _STOCK, StacklessIOMixin

_C = _socket.socket
_Stock = _socket_module.socket
_monotonic = time.monotonic
_timeout = _socket.timeout  # TimeoutError
_TIMED_OUT = object()


def _blocking(name, events):
    """A socket method that retries _socket's `name` until it does not raise
    BlockingIOError, waiting for `events` in between, within the timeout."""
    op = getattr(_C, name)

    def call(self, *args, **kwargs):
        timeout = self._user_timeout
        if timeout is _STOCK:
            if not waiting.cooperative():
                return op(self, *args, **kwargs)
            timeout = self._cooperate()
        try:  # first without a clock: most calls find their data (or room) there
            return op(self, *args, **kwargs)
        except BlockingIOError:
            if timeout == 0.0:
                raise  # a non-blocking socket: the stock error
        deadline = None if timeout is None else _monotonic() + timeout
        while True:
            if not waiting.wait(_C.fileno(self), events, deadline):
                raise _timeout("timed out")
            try:
                return op(self, *args, **kwargs)
            except BlockingIOError:
                pass

    call.__name__ = name
    call.__qualname__ = "socket." + name
    call.__doc__ = op.__doc__
    return call


class socket(StacklessIOMixin, _Stock):
    __doc__ = _Stock.__doc__
    # _send_queue, _send_error, _writer: blockingsend = False (stacklessio.py)
    __slots__ = ("_user_timeout", "_send_queue", "_send_error", "_writer")

    def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
        self._user_timeout = _STOCK
        self._send_queue = self._send_error = self._writer = None
        _Stock.__init__(self, family, type, proto, fileno)

    def close(self):
        try:
            if self._writer is not None:
                self.flush()  # what blockingsend = False queued goes out first
        finally:
            _Stock.close(self)

    def _cooperate(self):
        """Switches to cooperative mode (see the module docstring); returns the timeout."""
        timeout = _C.gettimeout(self)
        _C.settimeout(self, 0.0)
        self._user_timeout = timeout
        return timeout

    def gettimeout(self):
        timeout = self._user_timeout
        return _C.gettimeout(self) if timeout is _STOCK else timeout

    def settimeout(self, value):
        if self._user_timeout is _STOCK:
            return _C.settimeout(self, value)
        _C.settimeout(self, value)  # _socket's checks, errors and rounding
        self._user_timeout = _C.gettimeout(self)
        _C.settimeout(self, 0.0)

    def setblocking(self, flag):
        if self._user_timeout is _STOCK:
            return _C.setblocking(self, flag)
        self._user_timeout = None if operator.index(flag) else 0.0

    def getblocking(self):
        return self.gettimeout() != 0.0

    timeout = property(gettimeout, doc="the socket timeout")

    def detach(self):
        timeout = self._user_timeout
        if timeout is not _STOCK:
            self._user_timeout = _STOCK
            if _C.fileno(self) >= 0:
                _C.settimeout(self, timeout)  # the descriptor's blocking mode as stock leaves it
        return _Stock.detach(self)

    def dup(self):
        fd = _socket.dup(self.fileno())
        sock = self.__class__(self.family, self.type, self.proto, fileno=fd)
        timeout = self._user_timeout
        if timeout is _STOCK:
            sock.settimeout(self.gettimeout())
        else:
            # The copy shares the open file description, hence its O_NONBLOCK:
            # stock settimeout(None) on it would make this socket block its thread.
            _C.settimeout(sock, 0.0)
            sock._user_timeout = timeout
        return sock

    _accept = _blocking("_accept", waiting.POLLIN)
    recv = _blocking("recv", waiting.POLLIN)
    recv_into = _blocking("recv_into", waiting.POLLIN)
    recvfrom = _blocking("recvfrom", waiting.POLLIN)
    recvfrom_into = _blocking("recvfrom_into", waiting.POLLIN)
    recvmsg = _blocking("recvmsg", waiting.POLLIN)
    recvmsg_into = _blocking("recvmsg_into", waiting.POLLIN)
    _send_one = _blocking("send", waiting.POLLOUT)  # send(data[, flags]); send() itself gathers (stacklessio)
    sendto = _blocking("sendto", waiting.POLLOUT)
    sendmsg = _blocking("sendmsg", waiting.POLLOUT)

    def _sendall_one(self, data, flags=0):
        timeout = self._user_timeout
        if timeout is _STOCK:
            if not waiting.cooperative():
                return _C.sendall(self, data, flags)
            timeout = self._cooperate()
        if timeout == 0.0:
            return _C.sendall(self, data, flags)
        deadline = None if timeout is None else _monotonic() + timeout
        with memoryview(data) as view, view.cast("B") as octets:
            sent = 0
            while True:  # one send() even for no data, as _socket's sendall
                try:
                    sent += _C.send(self, octets[sent:], flags)
                except BlockingIOError:
                    if not waiting.wait(_C.fileno(self), waiting.POLLOUT, deadline):
                        raise _timeout("timed out") from None
                if sent >= len(octets):
                    return None

    def sendfile(self, file, offset=0, count=None):
        # os.sendfile() on the descriptor: non-blocking first, so that its
        # selector wait (tasklet-aware) is what waits.
        if self._user_timeout is _STOCK and waiting.cooperative():
            self._cooperate()
        return _Stock.sendfile(self, file, offset, count)

    def connect(self, address):
        timeout = self._user_timeout
        if timeout is _STOCK:
            if not waiting.cooperative():
                return _C.connect(self, address)
            timeout = self._cooperate()
        if timeout == 0.0:
            return _C.connect(self, address)
        err = _connect(self, address, timeout)
        if err is _TIMED_OUT:
            raise _timeout("timed out")
        if err:
            raise OSError(err, os.strerror(err))

    def connect_ex(self, address):
        timeout = self._user_timeout
        if timeout is _STOCK:
            if not waiting.cooperative():
                return _C.connect_ex(self, address)
            timeout = self._cooperate()
        if timeout == 0.0:
            return _C.connect_ex(self, address)
        err = _connect(self, address, timeout)
        return errno.EWOULDBLOCK if err is _TIMED_OUT else err  # _socket's connect_ex at its timeout


socket.__module__ = _Stock.__module__


def _connect(sock, address, timeout):
    """connect_ex() that waits like a blocking socket: the errno, 0, or _TIMED_OUT."""
    deadline = None if timeout is None else _monotonic() + timeout
    address = _numeric_address(sock, address)
    err = _C.connect_ex(sock, address)
    # A Unix socket whose listener's backlog is full: the stock blocking connect waits for room.
    while err == errno.EAGAIN and sock.family == _socket.AF_UNIX:
        if deadline is not None and _monotonic() >= deadline:
            return _TIMED_OUT
        waiting.sleep(0.005)
        err = _C.connect_ex(sock, address)
    if err in (errno.EINPROGRESS, errno.EINTR):
        # A loopback connection is made within connect() itself, which still says
        # EINPROGRESS: asking first saves a trip through the IO threads.
        if not waiting.ready_now(_C.fileno(sock), waiting.POLLOUT) and \
                not waiting.wait(_C.fileno(sock), waiting.POLLOUT, deadline):
            return _TIMED_OUT
        err = _C.getsockopt(sock, _socket.SOL_SOCKET, _socket.SO_ERROR)
        if err == errno.EISCONN:
            err = 0
    return err


def _numeric_address(sock, address):
    """An IP address whose host is a name, resolved as _socket would (the first
    getaddrinfo() answer of the socket's family), but off this thread."""
    if sock.family not in (_socket.AF_INET, _socket.AF_INET6) or not isinstance(address, tuple) or not address:
        return address
    host = address[0]
    if not isinstance(host, str) or host in ("", "<broadcast>") or _is_numeric(host):
        return address
    found = getaddrinfo(host, None, sock.family)
    return (found[0][4][0],) + address[1:]


def _is_numeric(host):
    for family in (_socket.AF_INET, _socket.AF_INET6):
        try:
            _socket.inet_pton(family, host.partition("%")[0])
            return True
        except (OSError, ValueError):
            pass
    return False


# Name lookups: a worker thread does the stock call while only this tasklet waits.
_stock_getaddrinfo = _socket_module.getaddrinfo


def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
    if not waiting.cooperative():
        return _stock_getaddrinfo(host, port, family, type, proto, flags)
    try:  # a numeric host needs no lookup: answered here
        return _stock_getaddrinfo(host, port, family, type, proto, flags | _socket.AI_NUMERICHOST)
    except _socket.gaierror:
        pass
    return _engine.call_in_thread(_stock_getaddrinfo, host, port, family, type, proto, flags)


getaddrinfo.__doc__ = _stock_getaddrinfo.__doc__


def _off_thread(stock, numeric_fast_path):
    def call(*args):
        if not waiting.cooperative() or (numeric_fast_path and args and isinstance(args[0], str)
                                          and _is_numeric(args[0])):
            return stock(*args)
        return _engine.call_in_thread(stock, *args)

    call.__name__ = stock.__name__
    call.__qualname__ = stock.__name__
    call.__doc__ = stock.__doc__
    return call


def install(module):
    """Patches the socket module (just imported, or already there)."""
    module.socket = socket
    module.getaddrinfo = getaddrinfo
    module.gethostbyname = _off_thread(_socket.gethostbyname, True)
    module.gethostbyname_ex = _off_thread(_socket.gethostbyname_ex, False)
    module.gethostbyaddr = _off_thread(_socket.gethostbyaddr, False)
    module.getnameinfo = _off_thread(_socket.getnameinfo, False)
