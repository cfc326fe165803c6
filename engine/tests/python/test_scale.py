"""Many live tasklets at once: 100,000 blocked on channels, then released."""

import unittest

import stackless
from support import StacklessTestCase

COUNT = 100_000


class ScaleTest(StacklessTestCase):
    deadline_s = 90.0

    def test_100000_tasklets_block_on_a_channel_and_all_finish(self):
        c = stackless.channel()
        c.preference = 1  # the sender does not switch to each receiver
        finished = [0]

        def worker():
            value = c.receive()
            finished[0] += value

        tasklets = [stackless.tasklet(worker)() for _ in range(COUNT)]
        stackless.run()
        self.assertEqual(c.balance, -COUNT)
        self.assertTrue(all(t.blocked for t in tasklets))
        self.assertEqual(finished[0], 0)

        for _ in range(COUNT):
            c.send(1)
        self.assertEqual(c.balance, 0)
        stackless.run()
        self.assertEqual(finished[0], COUNT)
        self.assertFalse(any(t.alive for t in tasklets))

    def test_100000_tasklets_each_blocked_on_its_own_channel(self):
        channels = [stackless.channel() for _ in range(COUNT)]
        got = []

        def worker(inbox):
            got.append(inbox.receive())

        for inbox in channels:
            stackless.tasklet(worker)(inbox)
        stackless.run()
        self.assertEqual(sum(1 for ch in channels if ch.balance == -1), COUNT)

        for i, inbox in enumerate(channels):
            inbox.send(i)  # preference -1: each worker finishes right away
        self.assertEqual(len(got), COUNT)
        self.assertEqual(sum(got), COUNT * (COUNT - 1) // 2)
        self.assertEqual(stackless.getruncount(), 1)


if __name__ == "__main__":
    unittest.main()
