"""`shard python ...` behaves like python3 on the command line.

Each behaviour is checked by running the same program with sys.executable
(`shard-python`, the shard binary under a python-style name, which is
`shard python`) and with Debian's /usr/bin/python3.11, and comparing what
matters. sys.executable must take python3's own flags: subprocess and
multiprocessing start children with them.
"""

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

from support import (CHILD_TIMEOUT_S, SHARD_BINARY, StacklessTestCase, SuspectedDeadlock, read_until,
                     run_child)
from support import setUpModule, tearDownModule  # noqa: F401 (the leak check around this module)

SHARD = [sys.executable]
PYTHON3 = ["/usr/bin/python3.11"]
run = run_child


class CommandLineTest(StacklessTestCase):
    deadline_s = 90.0

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.dir = os.path.realpath(self.tmp.name)

    def write(self, name, source):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(textwrap.dedent(source))
        return path

    def both(self, args, **kwargs):
        kwargs.setdefault("cwd", self.dir)
        return run(SHARD + args, **kwargs), run(PYTHON3 + args, **kwargs)

    def interrupt(self, command, settle_s=0.2, exit_timeout_s=CHILD_TIMEOUT_S):
        """Start command, wait for 'ready', send SIGINT, return (rc, out, err).

        The child must exit within exit_timeout_s of the SIGINT.
        """
        with subprocess.Popen(command, cwd=self.dir, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) as proc:
            try:
                before = read_until(proc, b"ready\n")
                time.sleep(settle_s)
                proc.send_signal(signal.SIGINT)
                try:
                    out, err = proc.communicate(timeout=exit_timeout_s)
                except subprocess.TimeoutExpired:
                    raise SuspectedDeadlock("suspected deadlock: %r still running %g s "
                                            "after SIGINT" % (command, exit_timeout_s)) from None
            except BaseException:
                proc.kill()
                raise
        return proc.returncode, (before + out).decode(), err.decode()

    # -- basics --------------------------------------------------------

    def test_sys_executable_is_the_python_entry_of_the_shard_binary(self):
        self.assertEqual(os.path.basename(sys.executable), "shard-python")
        self.assertEqual(os.path.realpath(sys.executable), os.path.realpath(SHARD_BINARY))

    def test_shard_python_subcommand_is_the_same_interpreter(self):
        result = run([SHARD_BINARY, "python", "-c", "import sys, stackless; print(sys.executable)"])
        self.assertEqual((result.returncode, result.stdout), (0, sys.executable + "\n"), result.stderr)

    def test_dash_c_stackless_channel_round_trip_prints_42(self):
        result = run(SHARD + ["-c", "import stackless; c = stackless.channel(); "
                              "stackless.tasklet(c.send)(42); print(c.receive())"])
        self.assertEqual((result.returncode, result.stdout), (0, "42\n"), result.stderr)

    def test_scripts_directory_is_on_sys_path(self):
        result = run(SHARD + ["-c", "import sys; print(any(p.rstrip('/').endswith('/scripts')"
                              " for p in sys.path))"])
        self.assertEqual(result.stdout, "True\n", result.stderr)

    # -- how the program is given ------------------------------------

    def test_script_gets_argv_and_sys_path_like_python3(self):
        script = self.write("show_argv.py", """\
            import sys
            print(sys.argv)
            print(sys.path[0])
            print(__name__)
        """)
        shard, python3 = self.both([script, "a", "b c", "-v", "--flag"])
        self.assertEqual(shard.returncode, 0, shard.stderr)
        self.assertEqual(shard.stdout, python3.stdout)

    def test_dash_c_gets_argv_like_python3(self):
        shard, python3 = self.both(["-c", "import sys; print(sys.argv, __name__)", "x", "-y"])
        self.assertEqual(shard.returncode, 0, shard.stderr)
        self.assertEqual(shard.stdout, python3.stdout)

    def test_dash_m_runs_a_module_like_python3(self):
        self.write("cli_probe_module.py", """\
            import sys
            print(sys.argv)
            print(__name__)
        """)
        shard, python3 = self.both(["-m", "cli_probe_module", "arg1", "-q"])
        self.assertEqual(shard.returncode, 0, shard.stderr)
        self.assertEqual(shard.stdout, python3.stdout)

    def test_program_from_stdin_with_dash_like_python3(self):
        program = "import sys\nprint(sys.argv)\nprint(__name__)\n"
        shard, python3 = self.both(["-", "one", "two"], input=program)
        self.assertEqual(shard.returncode, 0, shard.stderr)
        self.assertEqual(shard.stdout, python3.stdout)

    def test_program_from_stdin_without_arguments_like_python3(self):
        program = "import sys\nprint(sys.argv)\nprint(6 * 7)\n"
        shard, python3 = self.both([], input=program)
        self.assertEqual(shard.returncode, 0, shard.stderr)
        self.assertEqual(shard.stdout, python3.stdout)

    # -- children started through sys.executable ---------------------

    ENGINE_PROBE = ("import stackless, uthread; c = stackless.channel(); "
                    "stackless.tasklet(c.send)(42); print(c.receive())")

    def test_sys_executable_takes_python_flags_and_has_the_engine(self):
        # The engine's modules stay on sys.path under -E and -I: they are part
        # of the installation, not of the environment.
        for flags in (["-E"], ["-I"], ["-E", "-s", "-B"]):
            result = subprocess.run([sys.executable, *flags, "-c", self.ENGINE_PROBE],
                                    capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
            self.assertEqual((result.returncode, result.stdout), (0, "42\n"), (flags, result.stderr))

    def test_sys_executable_dash_m_runs_a_module_with_the_engine(self):
        self.write("engine_probe_module.py", self.ENGINE_PROBE.replace("; ", "\n"))
        result = subprocess.run([sys.executable, "-m", "engine_probe_module"], cwd=self.dir,
                                capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
        self.assertEqual((result.returncode, result.stdout), (0, "42\n"), result.stderr)

    POOL = """\
        import multiprocessing, os, sys
        import stackless

        def square_in_a_tasklet(x):
            c = stackless.channel()
            stackless.tasklet(c.send)(x * x)
            return c.receive(), os.getpid()

        if __name__ == "__main__":
            with multiprocessing.get_context(sys.argv[1]).Pool(2) as pool:
                # A child that cannot start is replaced forever: bound the wait.
                results = pool.map_async(square_in_a_tasklet, range(5)).get(timeout=20)
            print([value for value, _ in results], all(pid != os.getpid() for _, pid in results))
    """

    def test_multiprocessing_spawn_pool_maps_in_children_with_the_engine(self):
        script = self.write("spawn_pool.py", self.POOL)
        result = run(SHARD + [script, "spawn"], cwd=self.dir)
        self.assertEqual((result.returncode, result.stdout), (0, "[0, 1, 4, 9, 16] True\n"), result.stderr)

    def test_multiprocessing_forkserver_pool_maps_in_children_with_the_engine(self):
        script = self.write("forkserver_pool.py", self.POOL)
        result = run(SHARD + [script, "forkserver"], cwd=self.dir)
        self.assertEqual((result.returncode, result.stdout), (0, "[0, 1, 4, 9, 16] True\n"), result.stderr)

    # -- -u ------------------------------------------------------------

    def test_dash_u_configures_streams_like_python3(self):
        probe = ("import sys; print(sys.stdout.write_through, sys.stderr.write_through, "
                 "sys.stdout.line_buffering, type(sys.stdout.buffer).__name__)")
        shard, python3 = self.both(["-u", "-c", probe])
        self.assertEqual(shard.returncode, 0, shard.stderr)
        self.assertEqual(shard.stdout, python3.stdout)

    def test_dash_u_output_reaches_the_pipe_before_the_program_ends(self):
        with subprocess.Popen(
                SHARD + ["-u", "-c", "import sys, time; sys.stdout.write('early'); time.sleep(30)"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as proc:
            try:
                self.assertIn(b"early", read_until(proc, b"early", timeout=10.0))
            finally:
                proc.kill()

    # -- exit status ---------------------------------------------------

    def test_sys_exit_3_exits_with_status_3(self):
        shard, python3 = self.both(["-c", "import sys; sys.exit(3)"])
        self.assertEqual(python3.returncode, 3)
        self.assertEqual(shard.returncode, 3, shard.stderr)

    def test_sys_exit_from_a_script_exits_with_that_status(self):
        script = self.write("exit3.py", "import sys\nsys.exit(3)\n")
        shard, python3 = self.both([script])
        self.assertEqual(shard.returncode, python3.returncode)

    def test_normal_end_exits_with_status_0(self):
        result = run(SHARD + ["-c", "pass"])
        self.assertEqual((result.returncode, result.stderr), (0, ""))

    def test_uncaught_exception_exits_with_status_1_like_python3(self):
        script = self.write("boom.py", """\
            def explode():
                raise ValueError("boom")
            explode()
        """)
        shard, python3 = self.both([script])
        self.assertEqual(python3.returncode, 1)
        self.assertEqual(shard.returncode, 1, shard.stderr)

    def test_uncaught_exception_prints_a_traceback_like_python3(self):
        script = self.write("boom.py", """\
            def explode():
                raise ValueError("boom")
            explode()
        """)
        shard, python3 = self.both([script])
        lines = shard.stderr.splitlines()
        self.assertEqual(lines[:1], ["Traceback (most recent call last):"], shard.stderr)
        self.assertEqual(lines[-1:], ["ValueError: boom"], shard.stderr)
        self.assertIn("explode", shard.stderr)

    def test_uncaught_exception_traceback_text_equals_python3(self):
        script = self.write("boom.py", """\
            def explode():
                raise ValueError("boom")
            explode()
        """)
        shard, python3 = self.both([script])
        self.assertEqual(shard.stderr, python3.stderr)

    # -- SIGINT --------------------------------------------------------

    SLEEPER = """\
        import sys, time
        print("ready", flush=True)
        end = time.monotonic() + 20
        while time.monotonic() < end:
            time.sleep(0.01)
        print("not interrupted", flush=True)
    """

    def test_sigint_raises_keyboard_interrupt_in_a_running_script(self):
        script = self.write("catch_sigint.py", """\
            import time
            print("ready", flush=True)
            try:
                end = time.monotonic() + 20
                while time.monotonic() < end:
                    time.sleep(0.01)
                print("not interrupted")
            except KeyboardInterrupt:
                print("caught KeyboardInterrupt")
        """)
        shard = self.interrupt(SHARD + [script])
        python3 = self.interrupt(PYTHON3 + [script])
        self.assertEqual(python3[:2], (0, "ready\ncaught KeyboardInterrupt\n"))
        self.assertEqual(shard[:2], python3[:2], shard[2])

    def test_uncaught_sigint_exit_status_matches_python3(self):
        script = self.write("sleeper.py", self.SLEEPER)
        shard = self.interrupt(SHARD + [script])
        python3 = self.interrupt(PYTHON3 + [script])
        self.assertEqual(shard[0], python3[0], shard[2])

    def test_uncaught_sigint_prints_keyboard_interrupt_like_python3(self):
        script = self.write("sleeper.py", self.SLEEPER)
        shard = self.interrupt(SHARD + [script])
        python3 = self.interrupt(PYTHON3 + [script])
        self.assertEqual(python3[2].splitlines()[-1:], ["KeyboardInterrupt"])
        self.assertEqual(shard[2].splitlines()[-1:], ["KeyboardInterrupt"], shard[2])

    def test_sigint_in_a_sleeping_tasklet_reaches_the_main_tasklet(self):
        script = self.write("tasklet_sigint.py", """\
            import time, stackless
            def sleeper():
                print("ready", flush=True)
                end = time.monotonic() + 20
                while time.monotonic() < end:
                    time.sleep(0.01)
            stackless.tasklet(sleeper)()
            try:
                stackless.run()
                print("not interrupted")
            except KeyboardInterrupt:
                print("caught in main")
        """)
        rc, out, err = self.interrupt(SHARD + [script])
        self.assertEqual((rc, out), (0, "ready\ncaught in main\n"), err)

    def test_sigint_while_main_waits_on_a_channel_for_another_thread(self):
        # python3 interrupts a main thread blocked on a lock the same way.
        script = self.write("channel_wait_sigint.py", """\
            import threading, time, stackless
            c = stackless.channel()
            def late_sender():
                time.sleep(60)
                c.send("too late")
            threading.Thread(target=late_sender, daemon=True).start()
            print("ready", flush=True)
            try:
                c.receive()
                print("not interrupted")
            except KeyboardInterrupt:
                print("caught while waiting")
        """)
        rc, out, err = self.interrupt(SHARD + [script], exit_timeout_s=10)
        self.assertEqual((rc, out), (0, "ready\ncaught while waiting\n"), err)


if __name__ == "__main__":
    unittest.main()
