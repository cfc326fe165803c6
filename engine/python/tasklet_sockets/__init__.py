"""Tasklet sockets (the StacklessIO idea): inside the shard, the standard
library's blocking network calls block only the calling tasklet.

On the thread that runs the engine's tasklets (the main thread), these wait
on the engine's IO threads (_engine.io_wait, shard/engine/fd_wait.h) while
every other tasklet runs:

- socket.socket: connect, connect_ex, accept, recv*, send*, sendall,
  sendfile, makefile reads and writes, with settimeout()'s timeouts
  (TimeoutError "timed out") and _socket's errors; getaddrinfo,
  gethostbyname(_ex), gethostbyaddr, getnameinfo on a worker thread
  (_engine.call_in_thread), a numeric address answered at once;
- ssl.SSLSocket: handshake, read, write, unwrap (SSLWant*Error -> wait);
- select.select, select.poll, selectors (PollSelector, SelectSelector,
  EpollSelector = DefaultSelector, so socketserver and http.server too);
- time.sleep: only the calling tasklet sleeps.

Everywhere else (other OS threads, a forked child, the switch off) they are
the stock calls. On by default (the engine installs this at start-up);
SHARD_TASKLET_SOCKETS=0 in the environment leaves every module stock, and
set_enabled(False) turns the behaviour off while running. Modules are patched
when they are imported (an import hook), so a program that never imports
socket pays nothing for it.
"""

import _thread
import os
import sys
import time

from . import waiting

_installed = False
_main_thread = _thread.get_ident()  # imported by the engine at start-up, on the main thread


def _patch_socket(module):
    from . import socket_patch
    socket_patch.install(module)


def _patch_ssl(module):
    from . import ssl_patch
    ssl_patch.install(module)


def _patch_select(module):
    from . import select_patch
    select_patch.install_select(module)


def _patch_selectors(module):
    from . import select_patch
    select_patch.install_selectors(module)


_PATCHES = {"select": _patch_select, "selectors": _patch_selectors, "socket": _patch_socket, "ssl": _patch_ssl}


class _PatchingLoader:
    """Runs the real loader, then the patch, before the importer sees the module."""

    def __init__(self, loader, patch):
        self._loader = loader
        self._patch = patch

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        module.__loader__ = self._loader
        module.__spec__.loader = self._loader
        self._patch(module)


class _PatchOnImport:
    """A sys.meta_path finder for the modules in _PATCHES: finds them with the
    other finders and wraps their loader."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        patch = _PATCHES.get(name)
        if patch is None:
            return None
        for finder in sys.meta_path:
            if finder is cls or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _PatchingLoader(spec.loader, patch)
                return spec
        return None


def install():
    """Patches socket, ssl, select, selectors (now if imported, else when they
    are) and time.sleep, and turns the behaviour on for the main thread's
    tasklets. Idempotent; the engine calls it at start-up on the main thread."""
    global _installed
    waiting.set_state(True, _main_thread)
    if _installed:
        return
    _installed = True
    time.sleep = waiting.sleep
    sys.meta_path.insert(0, _PatchOnImport)
    for name in ("select", "selectors", "socket", "ssl"):  # in dependency order
        if name in sys.modules:
            _PATCHES[name](sys.modules[name])
    # A forked child has no IO threads: its sockets are the stock ones.
    os.register_at_fork(after_in_child=lambda: waiting.set_state(False, None))


def set_enabled(flag):
    """Turns tasklet sockets on or off (for every thread); returns the previous
    setting. Off: every call is the stock one (a socket already switched to
    cooperative mode keeps its non-blocking descriptor and waits in poll()).
    On: installs the patches if SHARD_TASKLET_SOCKETS=0 kept them out."""
    previous = waiting.enabled()
    if flag:
        install()
    else:
        waiting.set_state(False, _main_thread)
    return previous


def enabled():
    """Whether blocking calls on the tasklets' thread block only their tasklet."""
    return waiting.enabled()


def install_if_wanted():
    """The engine's start-up hook: install() unless SHARD_TASKLET_SOCKETS=0."""
    if os.environ.get("SHARD_TASKLET_SOCKETS", "1") != "0":
        install()
