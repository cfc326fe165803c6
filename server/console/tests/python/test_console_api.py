"""The console's commands on a real node: each does what it says, bad input
is refused with a clear error and leaves the node as it was, every change
is in the audit log with who made it."""

import time
import unittest

from console_support import Client, Node

import support  # noqa: E402


def setUpModule():
    global node
    support.setUpModule()
    node = Node(metrics=False)


def tearDownModule():
    node.stop()
    support.tearDownModule()


class Commands(unittest.TestCase):

    def setUp(self):
        self.client = Client(node.port)
        self.assertEqual(self.client.login("adm").status, 200)

    def stats(self):
        answer = self.client.get("/api/stats")
        self.assertEqual(answer.status, 200)
        return answer.json()

    def set(self, name, value):
        return self.client.post("/api/setting", {"name": name, "value": value})

    def assertRefused(self, answer, *words):
        self.assertEqual(answer.status, 400, answer.body)
        for word in words:
            self.assertIn(word, answer.json()["error"])

    def test_stats_show_the_frame_phases_the_strategy_and_dispatch_latencies(self):
        s = self.stats()
        for key in ("frame_ms", "wait_ms", "dispatch_ms", "timers_ms", "run_ms", "tick_ms", "overruns", "alive",
                    "switches"):
            self.assertIn(key, s["frame"])
        self.assertGreaterEqual(s["frame"]["alive"], 3)
        self.assertIn(s["strategy"], s["dispatch"])
        self.assertIn("p99_us", s["dispatch"]["main_loop"]["dispatch_latency"])
        self.assertEqual(s["io"]["threads"], 2)

    def test_the_strategy_switches_and_the_next_stats_show_it(self):
        answer = self.set("dispatch_strategy", "pending_call")
        self.assertEqual(answer.status, 200, answer.body)
        self.assertEqual(answer.json()["value"], "pending_call")
        self.assertEqual(self.stats()["strategy"], "pending_call")
        self.assertEqual(self.set("dispatch_strategy", "MAIN_LOOP").json()["value"], "main_loop")  # as the table's rows
        self.assertEqual(self.stats()["strategy"], "main_loop")

    def test_an_unknown_strategy_is_refused_and_the_strategy_kept(self):
        before = self.stats()["strategy"]
        self.assertRefused(self.set("dispatch_strategy", "fastest"), "refused 'fastest'", "one of main_loop")
        self.assertEqual(self.stats()["strategy"], before)

    def test_fps_and_run_budget_change_live_and_bad_values_are_refused(self):
        self.assertEqual(self.set("fps", 50).json()["value"], 50.0)
        self.assertEqual(self.stats()["fps_target"], 50.0)
        frame = self.stats()["frame"]["frame"]
        time.sleep(1.0)
        self.assertGreater(self.stats()["frame"]["frame"] - frame, 30)  # 50 frames a second, give or take load
        self.assertEqual(self.set("run_budget", "0.25").json()["value"], 0.25)
        self.assertEqual(self.stats()["run_budget"], 0.25)
        for name, bad in (("fps", 0), ("fps", "fast"), ("fps", "nan"), ("run_budget", 2), ("run_budget", 0)):
            with self.subTest(name=name, value=bad):
                self.assertRefused(self.set(name, bad), "refused")
        self.assertEqual(self.stats()["fps_target"], 50.0)
        self.set("fps", 30)

    def test_only_the_live_settings_of_the_loop_can_be_set(self):
        self.assertRefused(self.set("log_level", "DEBUG"), "not a setting the console changes")
        self.assertRefused(self.set(None, 1), "not a setting the console changes")

    def test_tasklets_are_listed_with_name_state_place_and_stack(self):
        answer = self.client.get("/api/tasklets")
        self.assertEqual(answer.status, 200)
        by_name = {t["name"]: t for t in answer.json()}
        self.assertIn("blocked on a channel", by_name["test blocked"]["state"])
        self.assertIn("in blocked", by_name["test blocked"]["where"])
        self.assertIn("channel.receive()", by_name["test blocked"]["stack"])
        self.assertIn("waiting", by_name["test sleeper"]["state"])
        self.assertIn("running", by_name["console: GET /api/tasklets"]["state"])

    def test_kill_ends_a_tasklet_and_refuses_the_main_one_and_unknown_ids(self):
        tasklets = self.client.get("/api/tasklets").json()
        victim = next(t for t in tasklets if t["name"] == "test victim")
        answer = self.client.post("/api/kill", {"id": victim["id"]})
        self.assertEqual(answer.status, 200, answer.body)
        support.wait_until(lambda: all(t["id"] != victim["id"] for t in self.client.get("/api/tasklets").json()),
                           what="the killed tasklet gone")
        main = next(t for t in tasklets if t["main"])
        self.assertRefused(self.client.post("/api/kill", {"id": main["id"]}), "not killed")
        self.assertRefused(self.client.post("/api/kill", {"id": 12345}), "no live tasklet 12345")
        self.assertRefused(self.client.post("/api/kill", {"id": "x"}), "integer")
        own = next(t for t in tasklets if t["name"] == "console: requests")
        self.assertRefused(self.client.post("/api/kill", {"id": own["id"]}), "console's own")
        self.assertEqual(self.client.get("/api/stats").status, 200)

    def test_the_profiler_samples_for_the_seconds_asked_while_the_loop_runs(self):
        frame = self.stats()["frame"]["frame"]
        started = time.monotonic()
        answer = self.client.post("/api/profile", {"seconds": 1})
        self.assertEqual(answer.status, 200, answer.body)
        self.assertGreaterEqual(time.monotonic() - started, 1.0)
        result = answer.json()
        self.assertGreater(result["samples"], 20)
        self.assertTrue(result["rows"])
        self.assertEqual(set(result["rows"][0]), {"function", "self", "total", "self_pct", "total_pct"})
        self.assertGreater(self.stats()["frame"]["frame"] - frame, 15)  # frames went on meanwhile
        self.assertRefused(self.client.post("/api/profile", {"seconds": 0}), "seconds")
        self.assertRefused(self.client.post("/api/profile", {"seconds": 3600}), "seconds")

    def test_python_runs_in_a_tasklet_on_the_node_with_output_and_tracebacks(self):
        answer = self.client.post("/api/exec", {"code": "import stackless; stackless.getcurrent().is_main"})
        self.assertEqual(answer.json(), {"output": "False\n", "ok": True})
        self.client.post("/api/exec", {"code": "kept = 41"})
        self.assertEqual(self.client.post("/api/exec", {"code": "print(kept + 1)"}).json()["output"], "42\n")
        failed = self.client.post("/api/exec", {"code": "1/0"}).json()
        self.assertFalse(failed["ok"])
        self.assertIn("ZeroDivisionError", failed["output"])
        syntax = self.client.post("/api/exec", {"code": "def ("}).json()
        self.assertIn("SyntaxError", syntax["output"])
        self.assertRefused(self.client.post("/api/exec", {"code": ""}), "non-empty")
        self.assertTrue(node.alive())

    def test_recent_log_lines_are_served(self):
        self.set("fps", 30)
        lines = self.client.get("/api/logs?count=500").json()
        self.assertTrue(any("shard.audit" in line["line"] for line in lines))
        self.assertEqual(len(self.client.get("/api/logs?count=1").json()), 1)
        self.assertRefused(self.client.get("/api/logs?count=abc"), "count")

    def test_every_change_is_audited_with_who_and_when(self):
        before = time.time()
        self.set("fps", 31)
        self.set("fps", -1)
        self.client.post("/api/exec", {"code": "None"})
        entries = self.client.get("/api/audit").json()[-3:]
        self.assertEqual([e["who"] for e in entries], ["adm"] * 3)
        self.assertEqual([e["outcome"][:7] for e in entries], ["ok", "refused", "ok"])
        self.assertIn("fps = 31", entries[0]["detail"])
        self.assertGreaterEqual(entries[0]["at"], before - 1)
        self.assertIn("shard.audit: adm from 127.0.0.1", node.output())
        self.set("fps", 30)

    def test_malformed_requests_leave_the_node_serving(self):
        self.assertEqual(self.client.post("/api/setting", raw_body=b"{not json").status, 400)
        self.assertEqual(self.client.post("/api/setting", raw_body=b"[1, 2]").status, 400)
        self.assertEqual(self.client.get("/api/nothing").status, 404)
        self.assertEqual(self.client.request("DELETE", "/api/stats").status, 405)
        self.assertEqual(self.client.get("/api/stats").status, 200)


if __name__ == "__main__":
    unittest.main()
