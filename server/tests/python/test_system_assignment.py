"""system_assignment.plan(): the rule that spreads solar systems over live sol
nodes (a pure function; the cluster test applies it through the database)."""

import itertools
import random
import unittest

from system_assignment import plan


def apply(current, moves):
    after = dict(current)
    after.update(moves)
    return after


def loads(assignment, sols):
    return sorted(sum(1 for node in assignment.values() if node == sol) for sol in sols)


class PlanTest(unittest.TestCase):

    def test_from_nothing_every_system_is_assigned_and_the_loads_differ_by_at_most_one(self):
        for n, k in itertools.product(range(0, 12), range(1, 5)):
            with self.subTest(systems=n, sols=k):
                systems, sols = list(range(100, 100 + n)), list(range(1, k + 1))
                after = apply({}, plan(systems, sols, {}))
                self.assertEqual(sorted(after), systems)
                self.assertLessEqual(set(after.values()), set(sols))
                counts = loads(after, sols)
                self.assertLessEqual(counts[-1] - counts[0], 1)

    def test_a_balanced_assignment_moves_nothing(self):
        current = {1: 7, 2: 7, 3: 9, 4: 9, 5: 7}
        self.assertEqual(plan([1, 2, 3, 4, 5], [7, 9], current), {})

    def test_a_gone_sols_systems_go_to_the_live_ones_and_nothing_else_moves(self):
        current = {s: 1 + s % 3 for s in range(12)}  # sols 1, 2, 3 hold 4 each
        moves = plan(range(12), [1, 3], current)      # sol 2 is gone
        self.assertEqual(sorted(moves), [s for s in range(12) if current[s] == 2])
        self.assertEqual(loads(apply(current, moves), [1, 3]), [6, 6])

    def test_a_new_sol_takes_a_share_and_only_that_much_moves(self):
        current = {s: 1 for s in range(9)}
        moves = plan(range(9), [1, 2, 3], current)
        self.assertEqual(len(moves), 6)
        self.assertEqual(loads(apply(current, moves), [1, 2, 3]), [3, 3, 3])

    def test_no_live_sol_assigns_nothing(self):
        self.assertEqual(plan([1, 2], [], {1: 5}), {})

    def test_the_same_directory_gives_the_same_plan_whatever_the_order_it_is_read_in(self):
        rng = random.Random(11)
        for _ in range(50):
            systems = rng.sample(range(1000), rng.randint(1, 40))
            sols = rng.sample(range(1, 20), rng.randint(1, 5))
            current = {s: rng.choice(sols + [99]) for s in systems if rng.random() < 0.7}
            expected = plan(systems, sols, current)
            shuffled_systems, shuffled_sols = systems[:], sols[:]
            rng.shuffle(shuffled_systems)
            rng.shuffle(shuffled_sols)
            self.assertEqual(plan(shuffled_systems, shuffled_sols, dict(reversed(list(current.items())))), expected)
            after = apply(current, expected)
            self.assertEqual(plan(systems, sols, after), {}, "a plan applied is balanced: nothing more to move")


if __name__ == "__main__":
    unittest.main()
