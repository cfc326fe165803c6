"""ssl.SSLSocket over tasklet sockets: OpenSSL works on the non-blocking
descriptor, and SSLWantReadError/SSLWantWriteError become a wait for
readability/writability (on the IO threads on the tasklets' thread), then a
retry, as gevent's ssl module does. Timeouts raise what _ssl raises
(TimeoutError "The read operation timed out", ...). SSLSocket subclasses the
patched socket.socket (ssl is patched when it is imported, after socket), so
its plain-socket calls (connect, accept, before the handshake) are
tasklet-aware already; these are the calls that go through the SSL object.
"""

import ssl as _ssl_module
import time

from . import socket_patch, waiting

_STOCK = socket_patch._STOCK
_monotonic = time.monotonic
_WantRead = _ssl_module.SSLWantReadError
_WantWrite = _ssl_module.SSLWantWriteError


def _retrying(stock, what):
    """An SSLSocket method that retries `stock` while OpenSSL wants the socket,
    within the socket's timeout; `what` names the operation in the timeout's
    message as _ssl does (None: after the direction waited for)."""

    def call(self, *args, **kwargs):
        timeout = self._user_timeout
        if timeout is _STOCK:
            if not waiting.cooperative():
                return stock(self, *args, **kwargs)
            timeout = self._cooperate()
        if timeout == 0.0 and not (what == "handshake" and _blocking_handshake(args, kwargs)):
            return stock(self, *args, **kwargs)
        deadline = None if timeout is None or timeout == 0.0 else _monotonic() + timeout
        while True:
            try:
                return stock(self, *args, **kwargs)
            except _WantRead:
                events, direction = waiting.POLLIN, "read"
            except _WantWrite:
                events, direction = waiting.POLLOUT, "write"
            if not waiting.wait(self.fileno(), events, deadline):
                raise TimeoutError(f"The {what or direction} operation timed out")

    call.__name__ = stock.__name__
    call.__qualname__ = stock.__qualname__
    call.__doc__ = stock.__doc__
    return call


def _blocking_handshake(args, kwargs):
    """do_handshake(block=True) on a non-blocking socket blocks (ssl.py)."""
    return bool(args[0] if args else kwargs.get("block", False))


def install(module):
    """Patches the ssl module (just imported, or already there)."""
    cls = module.SSLSocket
    if not issubclass(cls, socket_patch.socket):
        return  # ssl was imported before the socket patch: it keeps stock sockets
    cls._frames_on_io_thread = False  # recvpacket() reads through OpenSSL
    cls.read = _retrying(cls.read, "read")
    cls.write = _retrying(cls.write, "write")
    cls.do_handshake = _retrying(cls.do_handshake, "handshake")
    cls.unwrap = _retrying(cls.unwrap, None)
