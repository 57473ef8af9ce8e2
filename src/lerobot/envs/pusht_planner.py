"""A model-based pusher for gym-pusht: simulate candidate pushes on a replica of the env's physics.

Why simulate instead of scripting push rules: gym-pusht's shapes are frictionless (a push acts only
along the contact normal) and its space damping is 0 (pymunk then removes all velocity every step),
so the T moves only while the agent touches it and stops the instant contact ends. The outcome of a push is therefore fully determined by the block
pose and the agent's commanded path, and a private pymunk space with the same bodies, walls, PD gains
and time step predicts it almost exactly. Success needs >= 95% overlap with the goal (a few pixels and
degrees), which rule-based pushes rarely hit but a planner that checks each push before making it does.

One decision:

1. Candidate pushes: a contact point on the T's outline (every few pixels along each edge), a push
   direction (into the edge, or tilted so the agent slides along it) and a push length.
2. Each candidate is simulated from "agent at rest just outside the contact point" and scored by the
   mean distance of the T's outline vertices to their goal positions, plus a small price on the path
   the agent must travel to get there (around the T, never through it). Only pushes that lower the
   error count; when none of the usual size does, every size is tried.
3. The agent follows that collision-free path; on arrival the chosen contact's variants are
   re-simulated from the agent's actual position and velocity and the best one is executed open loop.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
import pymunk
import shapely
import shapely.affinity
import shapely.geometry as sg
import shapely.ops

TABLE = (0.0, 512.0)  # gym-pusht's action (agent target) range on both axes
AGENT_RADIUS = 15.0  # gym-pusht's agent disk
GAP = 5.0  # free travel before contact, so a push starts from rest
NAV_CLEARANCE = AGENT_RADIUS + 3.0  # a path segment this close to the T would touch it
NAV_CORNER = AGENT_RADIUS + 12.0  # path corners sit this far out, to absorb the PD's corner cutting
PUSH_SPEED = 12.0  # target advance per env step while pushing (pixels)
HOLD_STEPS = 2  # steps holding the last target so the agent comes to rest
TRAVEL_PRICE = 0.02  # vertex error (pixels) worth one pixel of travel to a push's start
VERIFY = 6  # coarse-ranked candidates re-simulated at full accuracy
ALL_LENGTHS = (1.5, 3.0, 6.0, 12.0, 25.0, 50.0)  # push lengths (pixels past contact) to choose from
MIN_GAIN = 0.01  # least vertex-error reduction (pixels) for a push to be worth making


def rotation(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


@dataclass
class Push:
    """A planned push: where to stand, and the targets that carry it out from there."""

    start: np.ndarray
    targets: list[np.ndarray]
    contact: int  # index of the contact sample, to re-plan its variants on arrival
    cost: float


class PushTPlanner:
    """Plans pushes for one ``gym_pusht.envs.PushTEnv`` episode from its privileged block pose."""

    def __init__(self, env) -> None:
        self.steps_per_action = int(round(1 / (env.dt * env.control_hz)))
        self.dt, self.kp, self.kv = env.dt, env.k_p, env.k_v
        self.goal = np.asarray(env.goal_pose, dtype=float)
        self.space = pymunk.Space()
        self.space.gravity = 0, 0
        self.space.damping = env.space.damping
        self.space.iterations = env.space.iterations
        # The walls and bodies exactly as gym-pusht builds them (its builders are static methods).
        walls = [(s.a, s.b, s.radius) for s in env.space.static_body.shapes]
        self.space.add(*(pymunk.Segment(self.space.static_body, a, b, r) for a, b, r in walls))
        self.agent = env.add_circle(self.space, (256, 400), AGENT_RADIUS)
        self.block, _ = env.add_tee(self.space, (256, 300), 0)
        self.block.center_of_gravity = env.block.center_of_gravity
        for mine, theirs in zip(self.block.shapes, env.block.shapes):
            mine.friction = theirs.friction
        for shape in self.agent.shapes:
            shape.friction = next(iter(env.agent.shapes)).friction
        self.outline = shapely.unary_union(
            [sg.Polygon([tuple(v) for v in s.get_vertices()]) for s in env.block.shapes]
        )
        self.outline = shapely.simplify(self.outline, 0.01)
        self.vertices = np.array(self.outline.exterior.coords[:-1])
        self.center = np.array(env.block.center_of_gravity)
        self.goal_vertices = self._world(self.goal, self.vertices)
        self.contacts = self._contact_samples()

    # ------------------------------------------------------------------ geometry

    @staticmethod
    def _world(pose: np.ndarray, points: np.ndarray) -> np.ndarray:
        return points @ rotation(pose[2]).T + pose[:2]

    def cost(self, pose: np.ndarray) -> float:
        """Mean distance (pixels) of the T's outline vertices from where the goal pose puts them."""
        return float(np.mean(np.linalg.norm(self._world(pose, self.vertices) - self.goal_vertices, axis=1)))

    def _contact_samples(self, spacing: float = 7.5) -> list[tuple[np.ndarray, np.ndarray]]:
        """(point, outward normal) in the block frame, every ``spacing`` pixels along the outline."""
        ring = self.outline.exterior
        if not ring.is_ccw:
            ring = sg.LinearRing(ring.coords[::-1])
        pts = np.array(ring.coords)
        samples = []
        for a, b in zip(pts[:-1], pts[1:]):
            edge = b - a
            length = float(np.linalg.norm(edge))
            normal = np.array([edge[1], -edge[0]]) / length  # outward for a counter-clockwise ring
            n = max(1, int(round(length / spacing)))
            fractions = [(i + 0.5) / n for i in range(n)]
            # Also where the normal points at the centre of mass: the pushes that translate without turning.
            foot = float(np.dot(self.center - a, edge)) / length**2
            if 0.1 < foot < 0.9:
                fractions.append(foot)
            samples += [(a + edge * f, normal) for f in sorted(fractions)]
        return samples

    # ------------------------------------------------------------------ simulation

    def simulate(
        self,
        agent: np.ndarray,
        velocity: np.ndarray,
        pose: np.ndarray,
        targets: list[np.ndarray],
        coarse: int = 1,
    ) -> np.ndarray:
        """Block pose after the agent tracks ``targets`` (one per env step) from the given state.

        ``coarse`` > 1 integrates with a ``coarse`` times longer step, for cheap ranking of many candidates.
        """
        self.agent.position = tuple(agent)
        self.agent.velocity = tuple(velocity)
        self.block.angle = float(pose[2])
        self.block.position = tuple(pose[:2])
        self.block.velocity = (0.0, 0.0)
        self.block.angular_velocity = 0.0
        dt = self.dt * coarse
        n = max(1, self.steps_per_action // coarse)
        for target in targets:
            tx, ty = float(target[0]), float(target[1])
            for _ in range(n):
                (px, py), (vx, vy) = self.agent.position, self.agent.velocity
                vx += (self.kp * (tx - px) - self.kv * vx) * dt
                vy += (self.kp * (ty - py) - self.kv * vy) * dt
                self.agent.velocity = (vx, vy)
                self.space.step(dt)
        return np.array([*self.block.position, self.block.angle])

    # ------------------------------------------------------------------ candidates

    def _variants(
        self, index: int, pose: np.ndarray, lengths: tuple[float, ...]
    ) -> list[tuple[np.ndarray, list]]:
        """(start point, targets) for each push direction and length at contact sample ``index``."""
        point, normal = self.contacts[index]
        rot = rotation(pose[2])
        world_point, world_normal = pose[:2] + rot @ point, rot @ normal
        start = world_point + world_normal * (AGENT_RADIUS + GAP)
        variants = []
        for tilt in (0.0, 0.5, -0.5):
            direction = rotation(tilt) @ -world_normal
            for length in lengths:
                travel = GAP + length
                n = max(1, int(np.ceil(travel / PUSH_SPEED)))
                ramp = [np.clip(start + direction * travel * (k + 1) / n, *TABLE) for k in range(n)]
                variants.append((start, ramp + [ramp[-1]] * HOLD_STEPS))
        return variants

    def _lengths(self, cost: float) -> tuple[float, ...]:
        """Push lengths worth trying: long ones while far from the goal, a pixel or two near it."""
        if cost > 40:
            return ALL_LENGTHS[3:]
        if cost > 10:
            return ALL_LENGTHS[2:5]
        return ALL_LENGTHS[:4]

    def plan(
        self, agent: np.ndarray, pose: np.ndarray, skip: set[int] = frozenset()
    ) -> tuple[Push, list[np.ndarray]] | None:
        """Best push (not at a contact in ``skip``) and the path to its start; None when there is none."""
        roads = self.roadmap(agent, pose)
        now = self.cost(pose)
        zero = np.zeros(2)
        ranked: list[tuple[float, Push, list[np.ndarray], float]] = []
        # When no push of the usual size helps (a local minimum), try every size before giving up.
        for lengths in (self._lengths(now), ALL_LENGTHS):
            for index in range(len(self.contacts)):
                if index in skip:
                    continue
                candidates = self._variants(index, pose, lengths)
                start = candidates[0][0]
                if roads.obstacle.contains(sg.Point(start)) or not np.all(
                    (start > TABLE[0]) & (start < TABLE[1])
                ):
                    continue  # the agent cannot stand there (in a concave corner of the T, or off the table)
                route = roads.path(start)
                if route is None:
                    continue
                path, travel = route
                for start, targets in candidates:
                    after = self.cost(self.simulate(start, zero, pose, targets, coarse=2))
                    if after <= now - MIN_GAIN:
                        push = Push(start, targets, index, after)
                        ranked.append((after + TRAVEL_PRICE * travel, push, path, travel))
            if ranked:
                break
        # The coarse step can misjudge pushes of a pixel or two: re-check the leaders at full accuracy.
        best = None
        for _, push, path, travel in heapq.nsmallest(VERIFY, ranked, key=lambda r: r[0]):
            push.cost = self.cost(self.simulate(push.start, zero, pose, push.targets))
            if push.cost > now - MIN_GAIN:
                continue
            score = push.cost + TRAVEL_PRICE * travel
            if best is None or score < best[0]:
                best = (score, push, path)
        return None if best is None else (best[1], best[2])

    def refine(self, push: Push, agent: np.ndarray, velocity: np.ndarray, pose: np.ndarray) -> Push | None:
        """The best variant of ``push`` re-simulated from the agent's true state; None if none helps."""
        now = self.cost(pose)
        best = None
        for start, targets in self._variants(push.contact, pose, ALL_LENGTHS):
            cost = self.cost(self.simulate(agent, velocity, pose, targets))
            if cost <= now - MIN_GAIN and (best is None or cost < best.cost):
                best = Push(start, targets, push.contact, cost)
        return best

    # ------------------------------------------------------------------ navigation

    def _obstacle(self, pose: np.ndarray, clearance: float):
        body = shapely.affinity.rotate(self.outline, pose[2], origin=(0, 0), use_radians=True)
        body = shapely.affinity.translate(body, pose[0], pose[1])
        return body.buffer(clearance, quad_segs=2)

    def roadmap(self, agent: np.ndarray, pose: np.ndarray) -> Roadmap:
        """Shortest collision-free routes from ``agent`` to the corners around the T (Dijkstra)."""
        obstacle = self._obstacle(pose, NAV_CLEARANCE)
        first: list[np.ndarray] = []
        if obstacle.contains(sg.Point(agent)):
            # Right after a push the agent touches the T: first leave along the outward normal.
            edge = shapely.ops.nearest_points(obstacle.exterior, sg.Point(agent))[0]
            away = np.array(edge.coords[0]) - agent
            depth = float(np.linalg.norm(away))
            first = [agent + away / max(depth, 1e-9) * (depth + NAV_CORNER - NAV_CLEARANCE)]
        origin = first[0] if first else agent
        ring = self._obstacle(pose, NAV_CORNER).exterior.coords[:-1]
        # Corners off the table would be targets outside the action space: route around the other side.
        corners = [np.array(c) for c in ring if TABLE[0] <= min(c) and max(c) <= TABLE[1]]
        nodes = [origin, *corners]
        dist = np.full(len(nodes), np.inf)
        dist[0] = 0.0
        previous = np.full(len(nodes), -1)
        queue, done = [(0.0, 0)], np.zeros(len(nodes), bool)
        while queue:
            d, i = heapq.heappop(queue)
            if done[i]:
                continue
            done[i] = True
            for j in np.flatnonzero(~done):
                nd = d + float(np.linalg.norm(nodes[j] - nodes[i]))
                if nd < dist[j] and not sg.LineString([nodes[i], nodes[j]]).intersects(obstacle):
                    dist[j], previous[j] = nd, i
                    heapq.heappush(queue, (nd, j))
        return Roadmap(obstacle, nodes, dist, previous, first)


@dataclass
class Roadmap:
    """Routes from one agent position around one block pose; see :meth:`PushTPlanner.roadmap`."""

    obstacle: object
    nodes: list[np.ndarray]
    dist: np.ndarray
    previous: np.ndarray
    first: list[np.ndarray]

    def path(self, goal: np.ndarray) -> tuple[list[np.ndarray], float] | None:
        """Way points ending at ``goal`` and their length, or None when ``goal`` cannot be reached."""
        best, via = np.inf, -1
        for i, node in enumerate(self.nodes):
            d = self.dist[i] + float(np.linalg.norm(goal - node))
            if d < best and not sg.LineString([node, goal]).intersects(self.obstacle):
                best, via = d, i
        if via < 0:
            return None
        way = [goal]
        while via > 0:
            way.append(self.nodes[via])
            via = self.previous[via]
        return self.first + way[::-1], best
