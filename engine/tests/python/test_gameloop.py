"""The game loop: five phases per frame, fixed FPS, soft run budget, overruns,
idle cost, logged errors and long runs, BeNice/Sleep timing, and clean
SIGINT/SIGTERM shutdown of `shard run`.

The contract is the header comment of engine/include/shard/engine/game_loop.h.
The loop object is a process-wide singleton: every test restores FPS, run
budget, long-run limit and dispatch strategy, and removes its tick hooks.

Tick hooks and tasklets inside the loop must not assert (their exceptions are
logged, not raised): they record, and the test asserts after run() returns.
Timing checks are one-sided or have generous margins; timing goals belong in
tools/bench/.
"""

import logging
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

import _engine
import gameloop
import stackless
import uthread
from support import (CHILD_TIMEOUT_S, SHARD_BINARY, StacklessTestCase, SuspectedDeadlock, busy_for,
                     read_until, run_child)
from support import setUpModule, tearDownModule  # noqa: F401 (the leak check around this module)

TaskletExit = stackless.TaskletExit

DEFAULT_FPS = 30.0
DEFAULT_RUN_BUDGET = 0.5
DEFAULT_LONG_RUN_MS = 50.0


class LogCapture(logging.Handler):
    """Collects the records of one logger (kept off stderr while it is attached)."""

    def __init__(self, name="shard.loop"):
        super().__init__(logging.DEBUG)
        self.records = []
        self.logger = logging.getLogger(name)

    def emit(self, record):
        self.records.append(record)

    def __enter__(self):
        self.saved = (self.logger.propagate, self.logger.level)
        self.logger.addHandler(self)
        self.logger.propagate = False
        self.logger.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc):
        self.logger.removeHandler(self)
        self.logger.propagate, level = self.saved
        self.logger.setLevel(level)
        return False

    def texts(self):
        """Each record as the text a stderr handler would write: message and traceback."""
        formatter = logging.Formatter("%(levelname)s %(name)s: %(message)s")
        return [formatter.format(r) for r in self.records]


class LoopTestCase(StacklessTestCase):
    """Runs the loop on the main tasklet for a test, and restores its settings."""

    deadline_s = 20.0

    def setUp(self):
        super().setUp()
        self.addCleanup(self.restore_loop_settings)
        self.frame = 0          # the last frame (of this run) whose phase 5 has run
        self.stats = {}         # frame of this run -> gameloop.stats() of that frame
        self.tick_times = {}    # frame of this run -> time.monotonic() in its phase 5
        self.dts = {}           # frame of this run -> dt passed to the hooks
        self.errors = []        # failures recorded inside tasklets and hooks

    def restore_loop_settings(self):
        gameloop.set_fps(DEFAULT_FPS)
        gameloop.set_run_budget(DEFAULT_RUN_BUDGET)
        gameloop.set_long_run_limit(DEFAULT_LONG_RUN_MS)
        gameloop.set_dispatch_strategy("main_loop")
        gameloop.reset_dispatch_stats()
        self.assertFalse(gameloop.running())

    def current_frame(self):
        """In phases 1-4: the frame in progress (numbered from 1 for this run)."""
        return self.frame + 1

    def spawn(self, func, *args, name=None):
        """A tasklet whose unexpected exceptions are recorded for the test."""
        def body():
            try:
                func(*args)
            except TaskletExit:
                raise
            except BaseException as e:
                self.errors.append(e)
        t = uthread.new(body)
        if name is not None:
            t.name = name
        return t

    def run_loop(self, stop_when, on_tick=None, max_frames=400):
        """Run the loop until stop_when(frame) is true in a phase 5 (or max_frames).

        on_tick(frame) runs in phase 5 of every frame, before stop_when. Returns
        the number of frames run.
        """
        base = gameloop.stats()["frame"]  # frames are counted over the process

        def hook(frame, dt):
            n = frame - base
            self.frame = n
            self.tick_times[n] = time.monotonic()
            self.dts[n] = dt
            previous = gameloop.stats()  # the frame before this one
            if previous["frame"] > base:
                self.stats[previous["frame"] - base] = previous
            try:
                if on_tick is not None:
                    on_tick(n)
                done = stop_when(n)
            except BaseException as e:
                self.errors.append(e)
                done = True
            if done or n >= max_frames:
                gameloop.stop()

        gameloop.add_tick(hook)
        try:
            gameloop.run()
        finally:
            gameloop.remove_tick(hook)
        last = gameloop.stats()
        self.stats[last["frame"] - base] = last
        errors, self.errors = self.errors, []
        if errors:
            raise errors[0]
        self.assertLess(self.frame, max_frames, "the loop's stop condition was never met")
        return self.frame

    def run_frames(self, frames, on_tick=None):
        return self.run_loop(lambda n: n >= frames, on_tick)


# ---------------------------------------------------------------- phases

class PhaseTest(LoopTestCase):

    def test_completion_and_sleeper_run_in_phase_4_of_the_frame_that_woke_them(self):
        gameloop.set_fps(20)
        events = []

        def waiter():
            _engine.sleep_in_worker(0.0)  # done long before frame 2's phase 2
            events.append(("completion ran", self.current_frame()))

        def sleeper():
            uthread.Sleep(0.001)          # due long before frame 2's phase 3
            events.append(("sleeper ran", self.current_frame()))

        self.spawn(waiter)
        self.spawn(sleeper)
        self.run_frames(3, on_tick=lambda n: events.append(("tick", n)))
        # Frame 1 runs both up to their waits; in frame 2 phase 2 dispatches the
        # completion, phase 3 wakes the sleeper (so it is queued after), phase 4
        # runs both, and phase 5 sees it.
        self.assertEqual(events[:4], [("tick", 1), ("completion ran", 2), ("sleeper ran", 2), ("tick", 2)])
        self.assertEqual((self.stats[2]["dispatched"], self.stats[2]["woken"]), (1, 1))

    def test_tick_hook_sees_what_phase_4_did_in_the_same_frame(self):
        gameloop.set_fps(50)
        counter = [0]
        seen = {}

        def worker():
            for _ in range(5):
                counter[0] += 1
                uthread.BeNice()

        self.spawn(worker)
        self.run_frames(6, on_tick=lambda n: seen.setdefault(n, counter[0]))
        self.assertEqual([seen[n] for n in range(1, 7)], [1, 2, 3, 4, 5, 5])

    def test_frame_counter_increments_by_one_and_phase_times_add_up_to_the_frame(self):
        gameloop.set_fps(50)

        def worker():
            while True:
                busy_for(0.002)
                uthread.BeNice()

        self.spawn(worker)
        self.run_frames(10, on_tick=lambda n: busy_for(0.001))
        frames = sorted(self.stats)
        self.assertEqual(frames, list(range(1, 11)))
        base = self.stats[1]["frame"]
        for n in frames:
            s = self.stats[n]
            with self.subTest(frame=n):
                self.assertEqual(s["frame"], base + n - 1)
                phases = [s["wait_ms"], s["wait_run_ms"], s["dispatch_ms"], s["timers_ms"], s["run_ms"], s["tick_ms"]]
                self.assertTrue(all(p >= 0 for p in phases), s)
                self.assertAlmostEqual(sum(phases), s["frame_ms"], delta=0.01)
                self.assertGreaterEqual(s["run_ms"], 2.0 if n > 1 else 0.0)
                self.assertGreaterEqual(s["tick_ms"], 1.0)
                if n > 1:
                    busy = s["busy_ms_total"] - self.stats[n - 1]["busy_ms_total"]
                    self.assertAlmostEqual(busy, s["frame_ms"] - s["wait_ms"], delta=0.01)


class MidFrameRunTest(LoopTestCase):
    """main_thread_callback and pending_call run what a completion wakes while
    the loop idles in phase 1; main_loop and on_block leave it to phase 4."""

    def completion_in_the_wait(self, strategy):
        """When the tasklet woken ~50 ms into frame 2's 200 ms wait ran, and
        when that frame's phase 2 began (both time.monotonic())."""
        gameloop.set_fps(5)
        gameloop.set_dispatch_strategy(strategy)
        woke = []

        def waiter():
            _engine.sleep_in_worker(0.05)  # parked in frame 1's phase 4, done in frame 2's wait
            woke.append(time.monotonic())

        self.spawn(waiter)
        self.run_frames(3)
        s = self.stats[2]
        # Frame 2's phase 1 began as frame 1's phase 5 ended (its tick hook ran just before).
        phase_2_began = self.tick_times[1] + (s["wait_ms"] + s["wait_run_ms"]) / 1000.0
        self.assertEqual(len(woke), 1)
        return woke[0], phase_2_began, s

    def test_pending_call_runs_the_woken_tasklet_in_phase_1(self):
        woke, phase_2_began, s = self.completion_in_the_wait("pending_call")
        self.assertLess(woke, phase_2_began - 0.05, s)
        self.assertGreaterEqual(s["wait_runs"], 1, s)
        self.assertGreater(s["wait_run_ms"], 0.0, s)

    def test_main_thread_callback_runs_the_woken_tasklet_in_phase_1(self):
        woke, phase_2_began, s = self.completion_in_the_wait("main_thread_callback")
        self.assertLess(woke, phase_2_began - 0.05, s)
        self.assertGreaterEqual(s["wait_runs"], 1, s)

    def test_main_loop_runs_the_woken_tasklet_in_phase_4(self):
        woke, phase_2_began, s = self.completion_in_the_wait("main_loop")
        self.assertGreaterEqual(woke, phase_2_began, s)
        self.assertEqual((s["wait_runs"], s["wait_run_ms"], s["dispatched"]), (0, 0.0, 1), s)


# ---------------------------------------------------------------- frame rate

class FrameRateTest(LoopTestCase):

    def test_fps_changed_while_running_sets_the_frame_period(self):
        gameloop.set_fps(20)  # 50 ms
        changed_at = 12

        def on_tick(n):
            if n == changed_at:
                gameloop.set_fps(100)  # 10 ms, from the next frame on

        self.run_frames(changed_at + 25, on_tick)

        def median_interval_ms(first, last):
            intervals = sorted(self.tick_times[n] - self.tick_times[n - 1] for n in range(first + 1, last + 1))
            return intervals[len(intervals) // 2] * 1000

        before = median_interval_ms(2, changed_at)
        after = median_interval_ms(changed_at + 3, changed_at + 25)
        self.assertGreater(before, 40, "frames at 20 fps")
        self.assertLess(before, 60, "frames at 20 fps")
        self.assertGreater(after, 7, "frames at 100 fps")
        self.assertLess(after, 15, "frames at 100 fps")
        self.assertAlmostEqual(self.dts[changed_at], 0.05)
        self.assertAlmostEqual(self.dts[changed_at + 2], 0.01)
        self.assertEqual(gameloop.stats()["fps"], 100)


# ---------------------------------------------------------------- run budget

class RunBudgetTest(LoopTestCase):
    SLICE_S = 0.005

    def test_phase_4_stops_at_the_first_switch_after_the_budget_without_interrupting(self):
        gameloop.set_fps(20)          # 50 ms frames
        gameloop.set_run_budget(0.4)  # 20 ms of phase 4
        budget_s = 0.020
        slices = []                   # (tasklet, frame at start, frame at end, start, end)

        def cruncher(i):
            for _ in range(8):
                frame, start = self.current_frame(), time.perf_counter()
                busy_for(self.SLICE_S)
                slices.append((i, frame, self.current_frame(), start, time.perf_counter()))
                stackless.schedule()

        workers = [self.spawn(cruncher, i) for i in range(8)]
        self.run_loop(lambda n: not any(t.alive for t in workers), max_frames=100)

        self.assertEqual(len(slices), 64)
        split = [s[:3] for s in slices if s[1] != s[2]]
        self.assertEqual(split, [], "slices interrupted by the end of phase 4")
        by_frame = {}
        for s in slices:
            by_frame.setdefault(s[1], []).append(s)
        # 64 slices of 5 ms do not fit in one 20 ms phase 4: the work is spread
        # over several frames, which end with tasklets left in the ring.
        busy_frames = [n for n in self.stats if self.stats[n]["runnable"] > 1]
        self.assertGreaterEqual(len(busy_frames), 3, self.stats)
        self.assertGreaterEqual(len(by_frame), 4)
        full = [n for n in busy_frames if self.stats[n]["run_budget_ms"] >= budget_s * 1000 - 0.001]
        self.assertTrue(full, "no busy frame got the whole budget: %r" % self.stats)
        for n in busy_frames:
            s = self.stats[n]
            with self.subTest(frame=n):
                # It stops at a switch only once the budget is spent (the
                # frame's own: a frame that started late, on a stalled
                # machine, gets what is left of it)...
                self.assertLessEqual(s["run_budget_ms"], budget_s * 1000 + 0.001)
                self.assertGreaterEqual(s["run_ms"], s["run_budget_ms"] - 1, "phase 4 stopped before its budget")
                # ...and at the first such switch: every slice but the last
                # ended (and switched) before the budget was spent. Phase 4
                # began before the frame's first slice, so this holds exactly.
                ran = by_frame[n]
                if len(ran) >= 2:
                    self.assertLess(ran[-2][4] - ran[0][3], s["run_budget_ms"] / 1000, "phase 4 went on after its budget")
                # (Its wall time, the budget plus about one slice, is not
                # asserted: a descheduled process stretches it at will.)
                self.assertGreater(self.stats[n + 1]["switches"], 0, "the rest did not continue next frame")

    def test_a_tasklet_longer_than_the_budget_is_not_interrupted(self):
        gameloop.set_fps(50)          # 20 ms frames
        gameloop.set_run_budget(0.25)  # 5 ms budget
        spans = []

        def long_slice():
            start = self.current_frame()
            busy_for(0.03)
            spans.append((start, self.current_frame()))

        self.spawn(long_slice)
        self.run_frames(3)
        self.assertEqual(spans, [(1, 1)])
        self.assertGreaterEqual(self.stats[1]["run_ms"], 30)


# ---------------------------------------------------------------- overruns

class OverrunTest(LoopTestCase):

    def check_one_overrun(self, late_frame, overruns_before):
        s = self.stats[late_frame]
        self.assertTrue(s["overrun"], s)
        self.assertGreater(s["frame_ms"], 20)
        nxt = self.stats[late_frame + 1]
        self.assertLess(nxt["wait_ms"], 2.0, "the frame after an overrun waited")
        overrun_frames = sum(1 for st in self.stats.values() if st["overrun"])
        self.assertEqual(gameloop.stats()["overruns"] - overruns_before, overrun_frames)

    def test_a_slow_tick_hook_counts_an_overrun_and_the_next_frame_does_not_wait(self):
        gameloop.set_fps(50)  # 20 ms
        before = gameloop.stats()["overruns"]

        def on_tick(n):
            if n == 4:
                busy_for(0.035)

        self.run_frames(7, on_tick)
        self.check_one_overrun(4, before)
        self.assertFalse(self.stats[3]["overrun"])

    def test_a_slow_tasklet_counts_an_overrun_and_the_next_frame_does_not_wait(self):
        gameloop.set_fps(50)
        before = gameloop.stats()["overruns"]

        def slow():
            uthread.BeNice()
            uthread.BeNice()
            uthread.BeNice()     # runs in frame 4
            busy_for(0.035)

        self.spawn(slow)
        self.run_frames(7)
        self.check_one_overrun(4, before)
        self.assertFalse(self.stats[3]["overrun"])
        self.assertGreaterEqual(self.stats[4]["run_ms"], 35)


# ---------------------------------------------------------------- idle

class IdleTest(LoopTestCase):

    def test_an_idle_loop_sleeps_between_frames(self):
        gameloop.set_fps(30)
        start = [None]

        def on_tick(n):
            if n == 2:
                start[0] = (time.monotonic(), time.process_time())

        end_at = [None]

        def stop_when(n):
            if start[0] is not None and time.monotonic() - start[0][0] >= 1.0:
                end_at[0] = (time.monotonic(), time.process_time())
                return True
            return False

        self.run_loop(stop_when, on_tick)
        wall = end_at[0][0] - start[0][0]
        cpu = end_at[0][1] - start[0][1]
        self.assertGreaterEqual(wall, 1.0)
        self.assertLess(cpu / wall, 0.25, "an idle loop used %.0f%% of a CPU" % (100 * cpu / wall))


# ---------------------------------------------------------------- errors

class ErrorTest(LoopTestCase):

    def test_an_exception_escaping_a_tasklet_is_logged_with_traceback_and_name(self):
        later = []

        def explode_in_tasklet():
            raise ValueError("tasklet boom")

        t = uthread.new(explode_in_tasklet)
        t.name = "exploder"
        uthread.new(lambda: (uthread.BeNice(), later.append(self.current_frame())))
        with LogCapture() as logs:
            self.run_frames(4)
        errors = [r for r in logs.records if r.levelno >= logging.ERROR]
        self.assertEqual(len(errors), 1, logs.texts())
        text = logs.texts()[0]
        self.assertIn("exploder", text)
        self.assertIn("Traceback", text)
        self.assertIn("explode_in_tasklet", text)
        self.assertIn("ValueError: tasklet boom", text)
        self.assertEqual(later, [2], "the loop did not go on after the error")
        self.assertEqual(self.frame, 4)

    def test_a_log_handler_that_switches_lets_the_dying_tasklet_finish(self):
        # A handler may block (one writing to a socket): the tasklet whose
        # exception it logs must still be whole, and come back to finish.
        steps = []

        class SwitchingCapture(LogCapture):
            def emit(self, record):
                steps.append("emit")
                stackless.schedule()
                steps.append("resumed")

        def explode_in_tasklet():
            raise ValueError("tasklet boom")

        t = uthread.new(explode_in_tasklet)
        with SwitchingCapture():
            self.run_frames(3)
        self.assertEqual(steps, ["emit", "resumed"])
        self.assertFalse(t.alive)

    def test_an_exception_in_a_tick_hook_is_logged_and_later_frames_run(self):
        def failing_hook(frame, dt):
            if frame % 2 == 0:
                raise KeyError("hook boom")

        gameloop.add_tick(failing_hook)
        try:
            with LogCapture() as logs:
                self.run_frames(6)
        finally:
            gameloop.remove_tick(failing_hook)
        errors = [text for r, text in zip(logs.records, logs.texts()) if r.levelno >= logging.ERROR]
        self.assertEqual(len(errors), 3, logs.texts())
        self.assertIn("failing_hook", errors[0])
        self.assertIn("Traceback", errors[0])
        self.assertIn("KeyError: 'hook boom'", errors[0])
        self.assertEqual(sorted(self.tick_times), list(range(1, 7)))


# ---------------------------------------------------------------- long runs

class LongRunTest(LoopTestCase):

    def test_a_tasklet_running_past_the_limit_is_logged_once_with_its_traceback(self):
        # The limit is wall time, so a loaded machine that stalls the process
        # in the middle of a short slice makes that slice look long: the polite
        # slices stay 50x below the limit.
        gameloop.set_long_run_limit(50)

        def spin_far_too_long():
            busy_for(0.25)

        def short_slices():
            for _ in range(5):
                busy_for(0.001)
                uthread.BeNice()

        uthread.new(spin_far_too_long).name = "spinner"
        uthread.new(short_slices).name = "polite"
        with LogCapture() as logs:
            self.run_frames(8)
        texts = logs.texts()
        reports = [t for t in texts if "without switching" in t]
        self.assertEqual(len(reports), 1, texts)
        self.assertIn("spinner", reports[0])
        self.assertIn("spin_far_too_long", reports[0])
        self.assertIn("busy_for", reports[0])
        self.assertNotIn("polite", "".join(texts))

    def test_a_long_run_in_c_that_ends_in_a_call_reports_and_goes_on(self):
        # The report's trace is armed while C code holds the GIL (sum()); the
        # next instruction of that line enters f(). With the eval breaker
        # raised and nothing pending, 3.11's tracing path re-dispatched f's
        # RESUME forever: the process spun until something else (here, the
        # child's timeout) recomputed the breaker. In a child: it must end.
        child = textwrap.dedent("""\
            import time, gameloop, uthread
            def f(_):
                return 1
            def long_c_run_then_a_call():
                end = time.monotonic() + 0.3
                while time.monotonic() < end:
                    f(sum(range(2_000_000)))  # C, GIL held, past the limit on a loaded machine too
                print("went on", flush=True)
                gameloop.stop()
            gameloop.set_long_run_limit(20)
            gameloop.register_service(uthread.new(long_c_run_then_a_call))
            gameloop.run()
        """)
        result = run_child([sys.executable, "-c", child])
        self.assertEqual((result.returncode, result.stdout), (0, "went on\n"), result.stderr)
        self.assertIn("without switching", result.stderr)

    def test_longest_run_tasklet_is_the_one_that_ran_longest(self):
        hog = uthread.new(busy_for, 0.03)
        self.run_frames(3)
        longest = max(self.stats.values(), key=lambda s: s["longest_run_ms"])
        self.assertGreaterEqual(longest["longest_run_ms"], 25)
        self.assertIs(longest["longest_run_tasklet"], hog)


# ---------------------------------------------------------------- BeNice / Sleep


class YieldAndSleepTest(LoopTestCase):

    def test_benice_waits_for_the_next_frame(self):
        gameloop.set_fps(50)
        ran = []

        def yielder():
            for _ in range(4):
                ran.append(self.current_frame())
                uthread.BeNice()

        self.spawn(yielder)
        self.run_frames(6)
        self.assertEqual(ran, [1, 2, 3, 4])
        for n in (2, 3, 4):
            self.assertEqual(self.stats[n]["woken"], 1, self.stats[n])

    def test_benice_lets_other_tasklets_run_once_per_frame(self):
        gameloop.set_fps(50)
        runs = {}

        def yielder(i):
            for _ in range(3):
                runs.setdefault(self.current_frame(), []).append(i)
                uthread.BeNice()

        for i in range(3):
            self.spawn(yielder, i)
        self.run_frames(5)
        self.assertEqual(runs, {1: [0, 1, 2], 2: [0, 1, 2], 3: [0, 1, 2]})

    def test_a_tasklet_that_yielded_in_the_last_frame_is_runnable_after_the_loop_stops(self):
        log = []

        def yielder():
            uthread.BeNice()
            log.append("resumed")

        t = self.spawn(yielder)
        self.run_frames(1)
        self.assertEqual(log, [])
        self.assertTrue(t.alive)
        self.assertTrue(t.scheduled)
        stackless.run()
        self.assertEqual(log, ["resumed"])
        self.assertFalse(t.alive)

    def test_sleep_wakes_in_the_first_frame_after_its_deadline(self):
        gameloop.set_fps(10)  # 100 ms frames: deadlines fall well inside a wait
        woke = {}

        def sleeper(seconds):
            asked = time.monotonic()
            uthread.Sleep(seconds)
            woke[seconds] = (self.current_frame(), time.monotonic() - asked)

        self.spawn(sleeper, 0.02)   # due in frame 2's wait
        self.spawn(sleeper, 0.13)   # due in frame 3's wait
        self.run_frames(4)
        self.assertEqual(woke[0.02][0], 2)
        self.assertEqual(woke[0.13][0], 3)
        self.assertGreaterEqual(woke[0.02][1], 0.02 - 0.002)
        self.assertGreaterEqual(woke[0.13][1], 0.13 - 0.002)
        self.assertEqual((self.stats[2]["woken"], self.stats[3]["woken"]), (1, 1))


# ---------------------------------------------------------------- running the loop

class RunRulesTest(LoopTestCase):

    def test_run_from_a_tasklet_raises_runtime_error(self):
        outcome = []

        def body():
            try:
                gameloop.run()
            except RuntimeError as e:
                outcome.append(str(e))

        uthread.new(body)
        stackless.run()
        self.assertEqual(len(outcome), 1)
        self.assertIn("main tasklet", outcome[0])

    def test_stop_from_a_tasklet_ends_run_after_that_frame(self):
        ended = []

        def stopper():
            uthread.BeNice()
            gameloop.stop()
            ended.append(self.current_frame())

        uthread.new(stopper)
        # Stops itself in frame 2; the safety stop is far away.
        self.run_loop(lambda n: False, max_frames=50)
        self.assertEqual(ended, [2])
        self.assertEqual(self.frame, 2)
        self.assertFalse(gameloop.running())


class StartFailureTest(LoopTestCase):
    """A loop that cannot start leaves nothing of itself installed."""

    def test_signal_handlers_are_all_or_nothing_when_installing_one_fails(self):
        original_signal = signal.signal
        handlers = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
        wakeup_fd = signal.set_wakeup_fd(-1)
        signal.set_wakeup_fd(wakeup_fd)
        fds = len(os.listdir("/proc/self/fd"))

        def failing_for_sigterm(signum, handler):
            if signum == signal.SIGTERM:
                raise OSError("no SIGTERM handler for you")
            return original_signal(signum, handler)

        signal.signal = failing_for_sigterm  # the loop installs through the module
        try:
            with self.assertRaisesRegex(OSError, "no SIGTERM handler for you"):
                gameloop.run()
        finally:
            signal.signal = original_signal
            left = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
            left_wakeup_fd = signal.set_wakeup_fd(wakeup_fd)
            signal.signal(signal.SIGINT, handlers[0])
            signal.signal(signal.SIGTERM, handlers[1])
        self.assertEqual(left, handlers)  # SIGINT, installed before SIGTERM failed, is restored
        self.assertEqual(left_wakeup_fd, wakeup_fd)
        self.assertEqual(len(os.listdir("/proc/self/fd")), fds)  # the wakeup pipe is closed
        self.assertFalse(gameloop.running())

    def test_no_watchdog_timer_is_an_os_error_from_run_and_nothing_stays_installed(self):
        # RLIMIT_SIGPENDING=0: the long-run log's timer cannot be made.
        child = textwrap.dedent("""\
            import gameloop, os, resource, signal
            resource.setrlimit(resource.RLIMIT_SIGPENDING, (0, resource.getrlimit(resource.RLIMIT_SIGPENDING)[1]))
            def pipes():
                found = 0
                for fd in os.listdir("/proc/self/fd"):
                    try:
                        found += os.readlink("/proc/self/fd/" + fd).startswith("pipe:")
                    except OSError:  # the directory's own fd, closed by now
                        pass
                return found
            before = pipes()
            try:
                gameloop.run()
            except OSError as e:
                print("OSError", e.errno)
            print(signal.getsignal(signal.SIGINT) is signal.default_int_handler, signal.set_wakeup_fd(-1),
                  gameloop.running(), pipes() == before)
        """)
        result = run_child([sys.executable, "-c", child])
        self.assertEqual((result.returncode, result.stdout), (0, "OSError 11\nTrue -1 False True\n"),
                         result.stderr)


# ---------------------------------------------------------------- shard run



SERVICE_SCRIPT = """\
    import gameloop, stackless, uthread

    def service():
        try:
            print("ready", flush=True)
            while True:
                uthread.Sleep(0.02)
        except stackless.TaskletExit:
            print("service got TaskletExit", flush=True)
            raise
        finally:
            print("service finally ran", flush=True)

    gameloop.register_service(uthread.new(service))
"""


class ShardRunTest(StacklessTestCase):
    deadline_s = 60.0

    def setUp(self):
        super().setUp()
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.dir = os.path.realpath(tmp.name)

    def write(self, name, source):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(textwrap.dedent(source))
        return path

    def signal_service(self, signum):
        script = self.write("service.py", SERVICE_SCRIPT)
        with subprocess.Popen([SHARD_BINARY, "run", script], cwd=self.dir,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
            try:
                before = read_until(proc, b"ready\n")
                time.sleep(0.2)
                proc.send_signal(signum)
                try:
                    out, err = proc.communicate(timeout=CHILD_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    raise SuspectedDeadlock("suspected deadlock: shard run still running after "
                                            "signal %d" % signum) from None
            except BaseException:
                proc.kill()
                raise
        return proc.returncode, (before + out).decode(), err.decode()

    def test_sigint_kills_services_runs_their_finally_and_exits_0(self):
        rc, out, err = self.signal_service(signal.SIGINT)
        self.assertEqual((rc, out), (0, "ready\nservice got TaskletExit\nservice finally ran\n"), err)

    def test_sigterm_kills_services_runs_their_finally_and_exits_0(self):
        rc, out, err = self.signal_service(signal.SIGTERM)
        self.assertEqual((rc, out), (0, "ready\nservice got TaskletExit\nservice finally ran\n"), err)

    def test_options_are_applied_and_script_gets_its_arguments(self):
        script = self.write("options.py", """\
            import sys, gameloop
            print(sys.argv, gameloop.fps(), gameloop.dispatch_strategy(), flush=True)

            def hook(frame, dt):
                if frame >= 3:
                    print("dt", dt, flush=True)
                    gameloop.stop()
            gameloop.add_tick(hook)
        """)
        result = run_child([SHARD_BINARY, "run", "--fps", "20", "--strategy", "pending_call",
                            script, "a", "b c", "--flag"], cwd=self.dir)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, "[%r, 'a', 'b c', '--flag'] 20.0 pending_call\ndt 0.05\n" % script)

    def test_long_run_ms_option_logs_a_long_tasklet_once_on_stderr(self):
        script = self.write("long.py", """\
            import time, gameloop, uthread

            def spin_too_long():
                end = time.perf_counter() + 0.1
                while time.perf_counter() < end:
                    pass

            def stop_later():
                for _ in range(4):
                    uthread.BeNice()
                gameloop.stop()

            uthread.new(spin_too_long).name = "spinner"
            uthread.new(stop_later)
        """)
        result = run_child([SHARD_BINARY, "run", "--long-run-ms", "20", script], cwd=self.dir)
        self.assertEqual(result.returncode, 0, result.stderr)
        reports = [line for line in result.stderr.splitlines() if "without switching" in line]
        self.assertEqual(len(reports), 1, result.stderr)
        self.assertIn("WARNING shard.loop", reports[0])
        self.assertIn("spinner", reports[0])
        self.assertIn("spin_too_long", result.stderr)


if __name__ == "__main__":
    unittest.main()
