"""login_throttle.Throttle (a sliding window per key, bounded memory) and
login_server.parse_login (what a client's first packet must be)."""

import unittest

import login_server
import login_throttle
import session_pb2


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class ThrottleTest(unittest.TestCase):

    def setUp(self):
        self.clock = Clock()
        self.throttle = login_throttle.Throttle(3, 60, max_keys=4, clock=self.clock)

    def test_a_key_is_blocked_after_its_limit_until_the_oldest_event_leaves_the_window(self):
        for _ in range(3):
            self.assertFalse(self.throttle.blocked("a"))
            self.throttle.record("a")
            self.clock.now += 10
        self.assertTrue(self.throttle.blocked("a"))
        self.assertEqual(self.throttle.retry_after("a"), 30)
        self.assertFalse(self.throttle.blocked("b"))
        self.clock.now += 30
        self.assertFalse(self.throttle.blocked("a"))
        self.assertEqual(self.throttle.retry_after("a"), 0)

    def test_forget_clears_a_key(self):
        for _ in range(3):
            self.throttle.record("a")
        self.throttle.forget("a")
        self.assertFalse(self.throttle.blocked("a"))

    def test_memory_is_bounded_the_least_recently_seen_key_goes_first(self):
        for key in "abcd":
            self.throttle.record(key)
        self.throttle.record("a")  # a is now the most recent
        self.throttle.record("e")
        self.assertEqual(len(self.throttle), 4)
        self.assertEqual(set(self.throttle.events), set("acde"))
        for key in range(100000):
            self.throttle.record(key)
        self.assertEqual(len(self.throttle), 4)
        self.assertTrue(all(len(times) <= 3 for times in self.throttle.events.values()))

    def test_keys_whose_events_all_expired_are_dropped(self):
        self.throttle.record("a")
        self.clock.now += 61
        self.assertFalse(self.throttle.blocked("a"))
        self.assertEqual(len(self.throttle), 0)


class ParseLoginTest(unittest.TestCase):

    def test_a_well_formed_request_gives_the_password_text(self):
        payload = session_pb2.LoginRequest(user_name="alice", credential="pässword".encode(),
                                           client_version="1").SerializeToString()
        request, password = login_server.parse_login(payload)
        self.assertEqual((request.user_name, password), ("alice", "pässword"))

    def test_anything_else_is_refused_with_the_reason(self):
        ok = dict(user_name="a", credential=b"p")
        for payload, why in ((b"\xff\xff", "not a LoginRequest"),
                             (b"x" * 4097, "login packet of 4097 bytes"),
                             (session_pb2.LoginRequest(user_name="a").SerializeToString(), "without"),
                             (session_pb2.LoginRequest(credential=b"p").SerializeToString(), "without"),
                             (session_pb2.LoginRequest(credential=b"\xff", user_name="a").SerializeToString(),
                              "not UTF-8"),
                             (session_pb2.LoginRequest(language="x" * 65, **ok).SerializeToString(), "over 64"),
                             (session_pb2.LoginRequest(**ok).SerializeToString() + b"\x78\x01", "unknown fields")):
            with self.subTest(why=why), self.assertRaisesRegex(ValueError, why):
                login_server.parse_login(payload)


if __name__ == "__main__":
    unittest.main()
