"""Native movement beside the same movement through a Python service
(issue 11 item 9: "the native movement path relays >= 20x the packets/s of
the Python path at the same CPU").

    build/bin/shard python tools/bench/movement_paths.py [--connections 8] [--frames 100000]
        [--python-frames 20000] [--rounds 3] [--json]

One process, one IO thread, the game loop at 30 FPS. The clients are
movement_sender.py in a separate stock python3.11 process; each moves one
entity, paired 1 km from a partner that hears of each of its moves.

- native: `_net.listen(native=_movement.handlers())`: each Movement frame
  is parsed and checked on the IO thread and applied at the tick by the C++
  movement system, which sends the partner its update (docs/movement.md).
- python: `_net.listen()` with an rpc_endpoint.Endpoint per connection
  (what a sol's node port runs) and a `movement` service written in Python:
  `move(entity_id, x, y, z, vx, vy, vz, sequence)` checks the same things
  (registered, newer sequence, bounds, speed against a 1 s token bucket),
  applies, and sends the partner a Movement update.

The figure is moves handled per CPU-second of this process (user + system,
all its threads: the IO thread's work counts), measured from the first
frame sent to the last one handled, beside the wall-clock rate.
"""

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "server", "python"))

import _movement  # noqa: E402
import _net  # noqa: E402
import gameloop  # noqa: E402
import movement_pb2  # noqa: E402
import uthread  # noqa: E402

import rpc_endpoint  # noqa: E402
import rpc_services  # noqa: E402

PYTHON3 = "/usr/bin/python3.11"
MAX_SPEED = 1000.0
INTEREST_RADIUS = 1e5
EXTENT = 1e12
MOVEMENT = 10
_systems = iter(range(1000, 1 << 30))


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class PyMovement:
    """The Python path's service: the native system's checks, in Python."""

    service_name = "movement"

    def __init__(self):
        self.entities = {}  # id -> [x, y, z, sequence, allowance_s, last_time, connection, vx, vy, vz]
        self.grid = {}      # cell -> set of ids
        self.moved = set()  # ids moved since the last tick
        self.applied = self.refused = self.updates = 0

    def add(self, entity_id, position, connection):
        self.entities[entity_id] = [*position, 0, 1.0, time.monotonic(), connection, 0.0, 0.0, 0.0]
        self.grid.setdefault(self.cell(position), set()).add(entity_id)

    @staticmethod
    def cell(position):
        return tuple(int(c // INTEREST_RADIUS) for c in position)

    @rpc_services.exposed(role="player")
    def move(self, entity_id, x, y, z, vx, vy, vz, sequence):
        entity = self.entities.get(entity_id)
        if entity is None or sequence <= entity[3] or max(abs(x), abs(y), abs(z)) > EXTENT:
            self.refused += 1
            return
        now = time.monotonic()
        allowance = min(1.0, entity[4] + now - entity[5])
        if math.sqrt(vx * vx + vy * vy + vz * vz) > MAX_SPEED * 1.01 or \
                math.dist((x, y, z), entity[:3]) > MAX_SPEED * allowance + 1.0:
            self.refused += 1
            return
        old_cell, new_cell = self.cell(entity[:3]), self.cell((x, y, z))
        if old_cell != new_cell:
            self.grid[old_cell].discard(entity_id)
            self.grid.setdefault(new_cell, set()).add(entity_id)
        entity[:6] = [x, y, z, sequence, allowance - math.dist((x, y, z), entity[:3]) / MAX_SPEED, now]
        entity[7:] = [vx, vy, vz]
        self.moved.add(entity_id)
        self.applied += 1

    def tick(self, frame, dt):
        """As the native system does at its tick: each entity moved since the
        last one is announced once, in its latest state, to those in range."""
        moved, self.moved = self.moved, set()
        for entity_id in moved:
            x, y, z, sequence, _, _, _, vx, vy, vz = self.entities[entity_id]
            update = None
            cx, cy, cz = self.cell((x, y, z))
            for dx in (-1, 0, 1):
                for dy in (-1, 0, 1):
                    for dz in (-1, 0, 1):
                        for other in self.grid.get((cx + dx, cy + dy, cz + dz), ()):
                            o = self.entities[other]
                            if other != entity_id and math.dist((x, y, z), o[:3]) <= INTEREST_RADIUS:
                                if update is None:
                                    update = movement_pb2.Movement(entity_id=entity_id, x=x, y=y, z=z, vx=vx, vy=vy,
                                                                   vz=vz, sequence=sequence).SerializeToString()
                                o[6].sendpacket(update, kind=MOVEMENT)
                                self.updates += 1


def sender(port, connections, frames, how):
    return subprocess.Popen([PYTHON3, os.path.join(HERE, "movement_sender.py"), str(port), str(connections),
                             str(frames), how], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def run_round(how, connections, frames):
    """{'how', 'moves', 'wall_s', 'cpu_s', ...} of one round."""
    native = _movement.handlers() if how == "native" else None
    listener = _net.listen("127.0.0.1", 0, native=native, codec="none", max_recv_packets=1 << 16)
    process = sender(listener.port, connections, frames, how)
    # A blocking pipe read: nothing else runs in this process meanwhile.
    if process.stdout.readline().strip() != "ready":
        raise RuntimeError("the sender did not start")
    service, total, state = PyMovement(), connections * frames, {}
    conns, endpoints = [], []

    def start():
        # The sender connects one by one, each after its handshake: accepted in that order.
        for entity in range(1, connections + 1):
            conn = listener.accept(timeout=30)
            conns.append(conn)
            position = (((entity - 1) // 2) * 1e7 + ((entity - 1) % 2) * 1e3, 0.0, 0.0)  # movement_sender's
            if how == "native":
                if entity == 1:
                    state["system"] = next(_systems)
                    _movement.add_system(state["system"], (-EXTENT,) * 3, (EXTENT,) * 3, max_speed=MAX_SPEED,
                                         interest_radius=INTEREST_RADIUS, cell_size=INTEREST_RADIUS)
                _movement.add_entity(entity, state["system"], conn, position)
            else:
                service.add(entity, position, conn)
        if how == "python":
            services = rpc_services.Services()
            services.register(service)
            for entity, conn in enumerate(conns, 1):
                endpoints.append(uthread.new(rpc_endpoint.Endpoint(conn, services, "player",
                                                                   "sender %d" % entity).run))
        state["before"] = _movement.stats()
        state["wall"], state["cpu"] = time.monotonic(), cpu_seconds()
        process.stdin.write("go\n")
        process.stdin.flush()

    def handled():
        if how == "python":
            return service.applied + service.refused
        now = _movement.stats()
        return now["applied"] + now["stale"] + now["rejected"] - sum(
            state["before"][k] for k in ("applied", "stale", "rejected"))

    def watch(frame, dt):
        if "wall" in state and "wall_s" not in state and handled() >= total:
            state["wall_s"], state["cpu_s"] = time.monotonic() - state["wall"], cpu_seconds() - state["cpu"]
            gameloop.stop()

    uthread.new(start)
    gameloop.add_tick(service.tick)
    gameloop.add_tick(watch)
    gameloop.run()
    gameloop.remove_tick(watch)
    gameloop.remove_tick(service.tick)
    process.stdin.write("close\n")
    process.stdin.flush()
    process.wait(30)
    if how == "native":
        after = _movement.stats()
        applied, refused, updates = (after[k] - state["before"][k] for k in ("applied", "rejected", "updates_out"))
        for entity in range(1, connections + 1):
            _movement.remove_entity(entity)
    else:
        applied, refused, updates = service.applied, service.refused, service.updates
    for t in endpoints:
        t.kill()
    for conn in conns:
        conn.close()
    listener.close()
    return {"how": how, "moves": total, "applied": applied, "refused": refused, "updates": updates,
            "wall_s": state["wall_s"], "cpu_s": state["cpu_s"], "per_cpu_s": total / state["cpu_s"],
            "per_wall_s": total / state["wall_s"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--frames", type=int, default=100000, help="moves per connection, native path")
    parser.add_argument("--python-frames", type=int, default=20000, help="moves per connection, Python path")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="JSON lines only")
    args = parser.parse_args()
    gameloop.set_fps(30)
    gameloop.set_long_run_limit(1000)  # a loaded machine descheduling a tasklet is not news here
    rows = []
    for n in range(args.rounds):
        native = run_round("native", args.connections, args.frames)
        python = run_round("python", args.connections, args.python_frames)
        rows.append((native, python))
        for r in (native, python):
            r["round"] = n + 1
            print(json.dumps(r, sort_keys=True) if args.json else
                  "round %d %-6s %9d moves  %6.2f s wall  %6.2f s CPU  %10.0f moves/CPU-s  %10.0f moves/s"
                  "  (applied %d, refused %d, updates sent %d)"
                  % (n + 1, r["how"], r["moves"], r["wall_s"], r["cpu_s"], r["per_cpu_s"], r["per_wall_s"],
                     r["applied"], r["refused"], r["updates"]), flush=True)
        if not args.json:
            print("round %d native/python per CPU-second: %.1fx" % (n + 1, native["per_cpu_s"] / python["per_cpu_s"]),
                  flush=True)


if __name__ == "__main__":
    main()
