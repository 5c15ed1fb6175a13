"""Chaos runs (`scripts/chaos`): real worker processes on a real PostgreSQL, under faults, and the invariants that
must survive them, checked from the DATABASE (and the stored objects), never from the workers' logs.

Each scenario gets its own throwaway `LocalCluster` (stand-in + every migration), its own storage directory and
3 worker processes (`python -m worker worker`, `TENKAIGEN_BACKEND=chaos`: the placeholder's pixels plus injected
latency and faults, see `tenkaigen_tools/chaos_backend.py`). Jobs are inserted as an admin (not rate limited) with
`max_attempts = 25`, because kills and stalls consume attempts. Everything stays on 127.0.0.1.

A scenario's directory (cluster, worker logs, storage, call markers) is made under `<checkout>/.chaos/` (or
`--dir`), never in the shared temporary directory: the workers and the harness need it for the whole scenario,
and a cleanup of `/tmp/tenkaigen-*` by another run or another process on the machine removed it mid-run twice
(every backend call then failed on the missing call-marker directory and backed off, and the harness died on a
missing log). The directory carries an owner marker that is checked while the scenario runs: if it disappears
anyway, the scenario fails at once and says so, instead of timing out with jobs left `queued`.

Scenarios (issue 6, deliverable 1):
- `kill-9`      a random worker is `kill -9`ed every few seconds and restarted at once;
- `pg-restart`  PostgreSQL is stopped (fast, immediate, …) and started again while the workers run;
- `faults`      backend faults: 20 % of the jobs get transient errors, call timeouts or crashes, a few get
                permanent errors; none of them may end anywhere but where the fault says;
- `stale-lease` a lease expires while its worker is still generating (the worker's event loop is blocked, or the
                whole process is frozen with SIGSTOP): the job is reaped and completed by another worker; the
                stale worker's result must change nothing, neither the row nor the stored object;
- `stale-answer` the same race made exact: a worker finishes generating and sends its pre-upload lease check; the
                harness holds the job's row lock so that check waits, freezes the worker (SIGSTOP), lets the
                check succeed, keeps the worker frozen until the lease expired and another worker completed the
                job, then resumes it: the worker now reads a stale "you hold the lease" and must not upload;
- `hang`        some backend calls never return: the runner's per-call deadline (set to 5 s here with
                TENKAIGEN_GENERATION_TIMEOUT_SECONDS) must stop them and retry, or the job is held (its lease
                renewed) for ever. One claim may hold a job at most the deadline + the slowest normal call + the
                stall allowance (15.3 s here; measured: 5.3 s at most); past that it is a violation at once.

Invariants (a violation each time one breaks; any violation fails the run):
1. every job is terminal at the end (succeeded, failed or canceled) within the scenario's deadline;
2. attempts <= max_attempts;
3. a `succeeded` job has result_path `<user_id>/<job_id>.png`, exactly one stored object there, whose pixels are
   what the placeholder renders for the job's own row; no stored object belongs to no succeeded job (a retry
   rewrites the same key; `.upload-*` temp files left by kill -9 are only counted);
4. `queue.job_completions` has exactly one row per succeeded job (with its attempt and path) and none for others;
5. nothing touched a succeeded job after its completion: the row (`updated_at` = the completion's time) and the
   object (modified before the completion, tagged by the worker that completed it);
6. a job with only transient faults ends `succeeded` (after at least that many attempts); a job with a permanent
   fault ends `failed` with error_code `bad_request` and its exact message;
7. no job stays `running` past its lease (plus the reaper's interval and the scenario's stall) while the
   database is up; with a generation deadline (hang), no claim holds a job past `Plan.hold_allowance`.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

TERMINAL = ("succeeded", "failed", "canceled")
MAX_ATTEMPTS = 25
USERS = 4
SIZES = (256, 320, 384)
STEPS = 4
WORKER_START_TIMEOUT = 30.0
RESULTS_BUCKET = "generated-designs"
RESTART_GAP = 5.0          # seconds between two PostgreSQL restarts at least


# ## Scenario plans
@dataclass(frozen=True)
class Plan:
    name: str
    title: str
    jobs: int
    deadline: float                                  # seconds for all jobs to become terminal
    workers: int = 3
    concurrency: int = 4
    lease_seconds: int = 3
    reap_interval: float = 0.5
    poll_interval: float = 0.5
    latency: tuple[float, float] = (0.05, 0.3)
    insert_batches: int = 10
    insert_gap: float = 1.0
    kill_every: tuple[float, float] | None = None   # seconds between two kill -9
    restarts: tuple[str, ...] = ()                   # pg_ctl stop modes, in order
    restart_downtime: tuple[float, float] = (0.5, 3.0)
    fault_rate: float = 0.0                          # share of jobs with transient faults / timeouts / crashes
    permanent: int = 0                               # jobs with a permanent fault
    timeout_seconds: float = 1.5                     # the chaos backend's own call deadline
    block_jobs: int = 0                              # jobs whose first call blocks its worker's event loop
    block_seconds: float = 0.0
    stall_every: tuple[float, float] | None = None   # seconds between two SIGSTOP/SIGCONT stalls of a worker
    stall_seconds: float = 0.0
    hang_jobs: int = 0
    late_answer_jobs: int = 0                        # jobs whose pre-upload lease check is answered late
    slow_seconds: float = 2.0                        # first-call generation time of those jobs
    extra_env: tuple[tuple[str, str], ...] = ()

    @property
    def stall_allowance(self) -> float:
        """How long past its lease a job may legitimately stay `running` in this scenario."""
        return self.lease_seconds + 4 * self.reap_interval + max(self.block_seconds, self.stall_seconds) + 5.0

    @property
    def generation_timeout(self) -> float | None:
        """The runner's per-call deadline when the plan sets one (TENKAIGEN_GENERATION_TIMEOUT_SECONDS)."""
        value = dict(self.extra_env).get("TENKAIGEN_GENERATION_TIMEOUT_SECONDS")
        return float(value) if value else None

    @property
    def hold_allowance(self) -> float | None:
        """With a per-call deadline, how long one claim may keep a job `running`: the deadline, the slowest normal
        call, then the stall allowance for the failure write on a loaded machine. A call that is not stopped
        (its lease renewed for ever) breaks it a few seconds later, long before the scenario's deadline."""
        timeout = self.generation_timeout
        return None if timeout is None else timeout + self.latency[1] + self.stall_allowance


def plans(quick: bool) -> dict[str, Plan]:
    if quick:
        return {
            "kill-9": Plan("kill-9", "random kill -9 + restart", jobs=600, deadline=120, kill_every=(1.5, 3.0)),
            "pg-restart": Plan("pg-restart", "PostgreSQL fast + immediate restart", jobs=300, deadline=120,
                               restarts=("fast", "immediate")),
            "faults": Plan("faults", "backend faults 20 % + permanent", jobs=300, deadline=120, fault_rate=0.2,
                           permanent=6),
            "stale-lease": Plan("stale-lease", "lease expires mid-generation", jobs=24, deadline=90,
                                insert_batches=1, latency=(0.3, 1.0), block_jobs=4, block_seconds=7.0,
                                stall_every=(6.0, 8.0), stall_seconds=6.0),
            "stale-answer": Plan("stale-answer", "lease check answered after the lease ran out", jobs=2,
                                 deadline=60, latency=(0.05, 0.1), late_answer_jobs=2),
            "hang": Plan("hang", "backend call that never returns", jobs=20, deadline=45, insert_batches=1,
                         hang_jobs=3, extra_env=(("TENKAIGEN_GENERATION_TIMEOUT_SECONDS", "5"),)),
        }
    return {
        "kill-9": Plan("kill-9", "random kill -9 + restart", jobs=2000, deadline=600, kill_every=(1.5, 4.0),
                       latency=(0.1, 0.6), insert_batches=20),
        "pg-restart": Plan("pg-restart", "PostgreSQL fast + immediate restarts", jobs=2000, deadline=600,
                           insert_batches=20, restarts=("fast", "immediate", "fast", "immediate")),
        "faults": Plan("faults", "backend faults 20 % + permanent", jobs=2000, deadline=600, insert_batches=20,
                       fault_rate=0.2, permanent=20),
        "stale-lease": Plan("stale-lease", "lease expires mid-generation", jobs=120, deadline=300,
                            insert_batches=4, insert_gap=5.0, latency=(0.3, 1.5), block_jobs=16,
                            block_seconds=7.0, stall_every=(5.0, 8.0), stall_seconds=6.0),
        "stale-answer": Plan("stale-answer", "lease check answered after the lease ran out", jobs=5,
                             deadline=150, latency=(0.05, 0.1), late_answer_jobs=5),
        "hang": Plan("hang", "backend call that never returns", jobs=60, deadline=60, insert_batches=1,
                     hang_jobs=6, extra_env=(("TENKAIGEN_GENERATION_TIMEOUT_SECONDS", "5"),)),
    }


DEFAULT_SCENARIOS = ("kill-9", "pg-restart", "faults", "stale-lease", "stale-answer", "hang")
QUICK_SCENARIOS = DEFAULT_SCENARIOS


# ## Jobs and what each must end as
@dataclass
class JobSpec:
    user_id: uuid.UUID
    prompt: str
    width: int
    height: int
    expect: str                       # succeeded | failed | terminal
    message: str | None = None        # the exact error_message of an expected failure
    faults: int = 0                   # failing calls injected before it can succeed
    kind: str = "plain"               # plain | transient | timeout | crash | permanent | block | hang

    def metadata(self) -> dict[str, Any]:
        return {"chaos": {"expect": self.expect, "message": self.message, "faults": self.faults, "kind": self.kind}}


def make_jobs(plan: Plan, users: list[uuid.UUID], rng: random.Random) -> list[JobSpec]:
    from tenkaigen_tools.chaos_backend import permanent_message

    kinds: list[tuple[str, int]] = []
    n_faulty = round(plan.jobs * plan.fault_rate)
    for i in range(n_faulty):
        # transient errors and call timeouts make most of the 20 %, unexpected crashes the rest
        kind = ("transient", "transient", "timeout", "timeout", "crash")[i % 5]
        kinds.append((kind, 1 if kind != "transient" or i % 3 else 2))
    kinds += [("permanent", 1)] * plan.permanent
    kinds += [("block", 1)] * plan.block_jobs
    kinds += [("hang", 1)] * plan.hang_jobs
    kinds += [("late", 1)] * plan.late_answer_jobs
    kinds += [("plain", 0)] * max(0, plan.jobs - len(kinds))
    rng.shuffle(kinds)
    jobs = []
    for i, (kind, n) in enumerate(kinds[: plan.jobs]):
        words = rng.choice(("a red fox", "a tin robot", "a paper crane", "a koi pond", "a neon city", "ramen"))
        base = f"chaos {plan.name} #{i} {words}"
        spec = JobSpec(user_id=users[i % len(users)], prompt=base, width=rng.choice(SIZES),
                       height=rng.choice(SIZES), expect="succeeded")
        spec.kind = kind
        if kind in ("transient", "timeout", "crash"):
            spec.prompt += f" [{kind}={n}]"
            spec.faults = n
        elif kind == "permanent":
            spec.prompt += f" [permanent={i}]"
            spec.expect, spec.message, spec.faults = "failed", permanent_message(i), 1
        elif kind == "block":
            spec.prompt += f" [block={plan.block_seconds:g}]"
            spec.faults = 1
        elif kind == "hang":
            spec.prompt += " [hang=1]"
            spec.faults = 1
        elif kind == "late":
            spec.prompt += f" [slow_first={plan.slow_seconds:g}]"
            spec.faults = 1
        jobs.append(spec)
    return jobs


# ## The scenario's directory
class ScenarioDirRemoved(RuntimeError):
    """The scenario's directory was deleted from outside while the scenario ran: the run is void."""


class ScenarioDir:
    """A scenario's own directory, with an owner marker to notice that someone else removed it."""

    MARKER = ".tenkaigen-chaos-scenario"

    def __init__(self, base: Path, name: str) -> None:
        self.path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=base))
        self.path.chmod(0o755)          # the cluster runs as the postgres OS user when we are root
        (self.path / self.MARKER).write_text(f"pid {os.getpid()}\n")
        self._identity = _identity(self.path)
        self.created = time.monotonic()

    def intact(self) -> bool:
        try:
            return _identity(self.path) == self._identity and (self.path / self.MARKER).exists()
        except FileNotFoundError:
            return False

    def check(self) -> None:
        if not self.intact():
            raise ScenarioDirRemoved(self.removed_message())

    def removed_message(self) -> str:
        return (f"the scenario directory {self.path} was removed by another process within "
                f"{time.monotonic() - self.created:.0f} s of its creation (worker logs, storage and call markers "
                "are gone; this says nothing about the worker)")


def _identity(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_dev, st.st_ino


def chaos_root(path: Path | None) -> Path:
    """The directory scenario directories are made in (created, and ignored by git from inside)."""
    if path is None:
        from worker.migrate import PROJECT_ROOT

        path = PROJECT_ROOT / ".chaos"
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(path.stat().st_mode | 0o755)
    ignore = path / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# made by scripts/chaos: one directory per scenario run, kept when it fails or --keep\n*\n")
    return path


def scenario_cluster(root: Path) -> Any:
    """The scenario's PostgreSQL cluster, inside its directory (unless the socket path would be too long)."""
    from worker.pgcluster import LocalCluster

    if len(str(root / "pg" / ".s.PGSQL.65535.lock")) <= 100:         # sun_path holds 107 bytes
        return LocalCluster(data_dir=root / "pg" / "data")
    return LocalCluster.temporary(prefix="tenkaigen-chaos-pg-")


def stop_orphaned_postmaster(data_dir: Path, within: float = 10.0) -> int | None:
    """The postmaster of `data_dir` when its directory was deleted under it (pg_ctl cannot stop it any more): find
    it by its exact `-D <data_dir>` argument and stop it like `pg_ctl -m immediate` does (SIGQUIT). Its pid, or
    None when none runs."""
    target = str(data_dir)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv if a]
        if not args or Path(args[0]).name != "postgres" or "-D" not in args[:-1]:
            continue
        if args[args.index("-D") + 1] != target:
            continue
        pid = int(entry.name)
        with _suppress():
            os.kill(pid, signal.SIGQUIT)
        deadline = time.monotonic() + within
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.1)
        return pid
    return None


def _read_log(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


# ## Worker processes
@dataclass
class WorkerProc:
    slot: int
    generation: int
    process: subprocess.Popen[bytes]
    log_path: Path
    stopped_until: float | None = None     # SIGSTOPped until this monotonic time

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None


class Workers:
    """The scenario's worker processes: spawn, kill -9, stall, stop."""

    def __init__(self, plan: Plan, dsn: str, scenario_dir: ScenarioDir, seed: int) -> None:
        self.plan = plan
        self.dsn = dsn
        self.dir = scenario_dir
        self.root = scenario_dir.path
        self.seed = seed
        self.procs: list[WorkerProc] = []
        self.generation = 0
        (self.root / "logs").mkdir(parents=True, exist_ok=True)

    def env(self) -> dict[str, str]:
        from worker.migrate import PROJECT_ROOT  # noqa: F401  (import check: the package is importable)

        plan = self.plan
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TENKAIGEN_", "SUPABASE_", "MODAL_"))}
        env.update({
            "DATABASE_URL": self.dsn,
            "TENKAIGEN_BACKEND": "chaos",
            "TENKAIGEN_STORAGE": "local",
            "TENKAIGEN_LOCAL_STORAGE_DIR": str(self.root / "storage"),
            "TENKAIGEN_METRICS_PORT": "0",
            "TENKAIGEN_CONCURRENCY": str(plan.concurrency),
            "TENKAIGEN_LEASE_SECONDS": str(plan.lease_seconds),
            "TENKAIGEN_PROGRESS_INTERVAL": str(min(1.0, plan.lease_seconds / 3)),
            "TENKAIGEN_POLL_INTERVAL": str(plan.poll_interval),
            "TENKAIGEN_REAP_INTERVAL": str(plan.reap_interval),
            "TENKAIGEN_GRACE_PERIOD": "20",
            "TENKAIGEN_LOG_FORMAT": "json",
            "TENKAIGEN_LOG_LEVEL": "INFO",
            "TENKAIGEN_RETENTION_DAYS": "0",
            "TENKAIGEN_CHAOS_LATENCY": f"{plan.latency[0]},{plan.latency[1]}",
            "TENKAIGEN_CHAOS_SEED": str(self.seed),
            "TENKAIGEN_CHAOS_TIMEOUT_SECONDS": str(plan.timeout_seconds),
            "TENKAIGEN_CHAOS_STATE_DIR": str(self.root / "calls"),
            "PYTHONUNBUFFERED": "1",
        })
        env.update(dict(plan.extra_env))
        return env

    @staticmethod
    def command() -> list[str]:
        return [sys.executable, "-m", "worker", "worker"]

    def spawn(self, slot: int) -> WorkerProc:
        from worker.migrate import PROJECT_ROOT

        self.generation += 1
        log_path = self.root / "logs" / f"w{slot}-{self.generation}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(self.command(), cwd=PROJECT_ROOT, env=self.env(), stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        proc = WorkerProc(slot, self.generation, process, log_path)
        if slot < len(self.procs):
            self.procs[slot] = proc
        else:
            self.procs.append(proc)
        return proc

    def start(self) -> None:
        for slot in range(self.plan.workers):
            self.spawn(slot)
        deadline = time.monotonic() + WORKER_START_TIMEOUT
        while time.monotonic() < deadline:
            self.dir.check()
            if all("worker started" in _read_log(p.log_path) for p in self.procs):
                return
            dead = [p for p in self.procs if not p.alive()]
            if dead:
                raise RuntimeError(f"worker exited at start:\n{_read_log(dead[0].log_path)[-3000:]}")
            time.sleep(0.1)
        raise RuntimeError("workers did not start within 30 s")

    def kill9(self, rng: random.Random) -> WorkerProc | None:
        candidates = [p for p in self.procs if p.alive() and p.stopped_until is None]
        if not candidates:
            return None
        victim = rng.choice(candidates)
        os.kill(victim.pid, signal.SIGKILL)
        victim.process.wait(10)
        self.spawn(victim.slot)
        return victim

    def stall(self, rng: random.Random, seconds: float) -> WorkerProc | None:
        candidates = [p for p in self.procs if p.alive() and p.stopped_until is None]
        if not candidates:
            return None
        victim = rng.choice(candidates)
        os.kill(victim.pid, signal.SIGSTOP)
        victim.stopped_until = time.monotonic() + seconds
        return victim

    def tick(self) -> None:
        now = time.monotonic()
        for p in self.procs:
            if p.stopped_until is not None and now >= p.stopped_until:
                os.kill(p.pid, signal.SIGCONT)
                p.stopped_until = None

    def respawn_dead(self) -> list[WorkerProc]:
        """Workers that exited on their own (not killed by us): restart them, and report them."""
        died = [p for p in self.procs if not p.alive()]
        for p in died:
            self.spawn(p.slot)
        return died

    def stop(self) -> list[str]:
        """SIGTERM every worker (SIGCONT first), wait; problems as text."""
        problems = []
        # a worker restarted a moment ago may not have installed its SIGTERM handler yet: let it finish starting
        deadline = time.monotonic() + WORKER_START_TIMEOUT
        while time.monotonic() < deadline and self.dir.intact() and any(
                p.alive() and "worker started" not in _read_log(p.log_path) for p in self.procs):
            self.tick()
            time.sleep(0.1)
        for p in self.procs:
            if p.alive():
                if p.stopped_until is not None:
                    os.kill(p.pid, signal.SIGCONT)
                    p.stopped_until = None
                p.process.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                code = p.process.wait(40)
            except subprocess.TimeoutExpired:
                p.process.kill()
                p.process.wait()
                problems.append(f"worker {p.pid} ignored SIGTERM for 40 s (killed; log {p.log_path})")
                continue
            if code != 0:
                problems.append(f"worker {p.pid} exited {code} on SIGTERM (log {p.log_path})")
        return problems

    def kill_all(self) -> None:
        for p in self.procs:
            if p.alive():
                with _suppress():
                    os.kill(p.pid, signal.SIGKILL)
                with _suppress():
                    p.process.wait(10)

    def log_count(self, needle: str) -> int:
        total = 0
        for path in (self.root / "logs").glob("*.log"):
            total += _read_log(path).count(needle)
        return total


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


# ## The database side
class Db:
    """The harness's own admin connection, reconnecting across PostgreSQL restarts."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._conn: Any = None

    def conn(self) -> Any:
        import psycopg
        from psycopg.rows import dict_row

        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(self.dsn, autocommit=True, row_factory=dict_row, connect_timeout=5,
                                         application_name="tenkaigen-chaos")
        return self._conn

    def query(self, sql: str, params: Any = None) -> list[dict[str, Any]] | None:
        """Rows, or None while the database is unreachable."""
        import psycopg

        try:
            return list(self.conn().execute(sql, params).fetchall())
        except psycopg.OperationalError:
            self.close()
            return None

    def close(self) -> None:
        if self._conn is not None:
            with _suppress():
                self._conn.close()
        self._conn = None


def create_users(db: Db, n: int) -> list[uuid.UUID]:
    users = [uuid.uuid4() for _ in range(n)]
    for u in users:
        db.conn().execute(
            "insert into auth.users (id, email, aud, role, raw_app_meta_data, raw_user_meta_data) "
            "values (%s, %s, 'authenticated', 'authenticated', '{}', '{}')", (u, f"chaos-{u.hex[:8]}@example.test"))
    return users


def insert_jobs(db: Db, jobs: list[JobSpec]) -> None:
    """As an admin (postgres): not rate limited; max_attempts generous because kills consume attempts."""
    from psycopg.types.json import Jsonb

    with db.conn().cursor() as cur:
        cur.executemany(
            "insert into public.generation_jobs (user_id, prompt, width, height, style, steps, max_attempts, "
            "metadata) values (%s, %s, %s, %s, 'none', %s, %s, %s)",
            [(j.user_id, j.prompt, j.width, j.height, STEPS, MAX_ATTEMPTS, Jsonb(j.metadata())) for j in jobs])


# ## One scenario
@dataclass
class Result:
    scenario: str
    title: str
    jobs: int = 0
    kills: int = 0
    restarts: int = 0
    stalls: int = 0
    faults: int = 0
    duration: float = 0.0
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.violations


def run_scenario(plan: Plan, *, seed: int, keep: bool, console: Any, base: Path) -> Result:
    from worker.migrate import migrate

    started = time.monotonic()
    rng = random.Random(f"{seed}:{plan.name}")
    result = Result(plan.name, plan.title, jobs=plan.jobs)
    scenario_dir = ScenarioDir(base, plan.name)
    root = scenario_dir.path
    cluster = scenario_cluster(root)
    workers: Workers | None = None
    db: Db | None = None
    try:
        cluster.start()
        migrate(cluster.dsn, standin=True)
        db = Db(cluster.dsn)
        users = create_users(db, USERS)
        jobs = make_jobs(plan, users, rng)
        result.faults = sum(j.faults for j in jobs)
        workers = Workers(plan, cluster.dsn, scenario_dir, seed)
        workers.start()
        if plan.late_answer_jobs:
            _drive_late_answers(plan, db, workers, jobs, root / "calls", result)
        else:
            _drive(plan, db, cluster, workers, jobs, rng, result, console)
            if plan.stall_every and not result.stalls:
                result.violations.append("harness: no worker was frozen before the jobs finished: the scenario "
                                         "proved nothing about a stalled worker (start the freezes earlier)")
        scenario_dir.check()
        result.violations += workers.stop()
        scenario_dir.check()
        result.stats["lease_lost_log_lines"] = workers.log_count("lease lost")
        result.stats["worker_logs"] = str(root / "logs")
        if plan.restarts:
            # a stop right after a restart must not count: wait until the database answers again
            _wait_db(db, 30)
        check_invariants(plan, db, root / "storage", result)
    except Exception as exc:  # the harness itself failed: that is a failed scenario, with the reason
        if isinstance(exc, ScenarioDirRemoved) or not scenario_dir.intact():
            result.violations.append(f"harness: {scenario_dir.removed_message()}")
        else:
            result.violations.append(f"harness error: {type(exc).__name__}: {exc}")
    finally:
        if workers is not None:
            workers.kill_all()
        if db is not None:
            db.close()
        result.duration = time.monotonic() - started
        with _suppress():
            cluster.destroy()
        if not cluster.is_initialized():            # its directory went away under it: pg_ctl could not stop it
            stop_orphaned_postmaster(cluster.data_dir)
        if not scenario_dir.intact():
            pass                                    # not ours any more: leave whatever is there alone
        elif keep or result.violations:
            result.notes.append(f"kept {root} (worker logs, storage, call markers)")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return result


def _wait_db(db: Db, within: float) -> None:
    deadline = time.monotonic() + within
    while db.query("select 1") is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"PostgreSQL did not come back within {within:.0f} s")
        time.sleep(0.2)


def _drive(plan: Plan, db: Db, cluster: Any, workers: Workers, jobs: list[JobSpec], rng: random.Random,
           result: Result, console: Any) -> None:
    """Insert, inject faults, watch; return once every job is terminal or the deadline passed."""
    batches = [jobs[i::plan.insert_batches] for i in range(plan.insert_batches)]
    t0 = time.monotonic()
    next_insert = t0
    next_kill = t0 + rng.uniform(*plan.kill_every) if plan.kill_every else None
    # the first freeze comes early: a quick run may finish its jobs before the first regular interval is over
    next_stall = t0 + rng.uniform(0.5, 1.5) if plan.stall_every else None
    restarts = list(plan.restarts)
    last_restart = t0
    next_check = t0
    max_overdue = 0.0
    max_held = 0.0
    terminal = 0
    deadline = t0 + plan.deadline
    while True:
        now = time.monotonic()
        workers.tick()
        if batches and now >= next_insert:
            insert_jobs(db, batches.pop(0))
            next_insert = now + plan.insert_gap
        if next_kill is not None and now >= next_kill and terminal < plan.jobs:
            if workers.kill9(rng) is not None:
                result.kills += 1
            next_kill = now + rng.uniform(*plan.kill_every)  # type: ignore[misc]
        if next_stall is not None and now >= next_stall and terminal < plan.jobs:
            if workers.stall(rng, plan.stall_seconds) is not None:
                result.stalls += 1
            next_stall = now + plan.stall_seconds + rng.uniform(*plan.stall_every)  # type: ignore[misc]
        if restarts and not batches and terminal >= plan.jobs * restart_points(plan)[result.restarts] \
                and now >= last_restart + RESTART_GAP:
            mode = restarts.pop(0)
            last_restart = now
            cluster.stop(mode)
            time.sleep(rng.uniform(*plan.restart_downtime))
            cluster.start()
            result.restarts += 1
            db.close()
            continue
        for died in workers.respawn_dead():
            result.violations.append(f"worker {died.pid} exited on its own with {died.process.returncode} "
                                     f"(log {died.log_path})")
        if now >= next_check:
            next_check = now + 0.5
            workers.dir.check()
            rows = db.query(
                "select count(*) filter (where status in ('succeeded', 'failed', 'canceled')) as terminal, "
                "coalesce(max(extract(epoch from now() - lease_expires_at)) "
                "filter (where status = 'running'), 0)::float8 as overdue, "
                "coalesce(max(extract(epoch from now() - started_at)) "
                "filter (where status = 'running'), 0)::float8 as held from public.generation_jobs")
            if rows is not None:
                terminal = rows[0]["terminal"]
                overdue = max(0.0, rows[0]["overdue"])
                max_overdue = max(max_overdue, overdue)
                max_held = max(max_held, rows[0]["held"])
                allowance = plan.hold_allowance
                if allowance is not None and rows[0]["held"] > allowance:
                    held = db.query(
                        "select id, locked_by, attempts, extract(epoch from now() - started_at)::float8 as held "
                        "from public.generation_jobs where status = 'running' "
                        "and started_at < now() - make_interval(secs => %s)", (allowance,)) or []
                    for row in held:
                        msg = (f"job {row['id']} held running {row['held']:.1f} s by one claim, past the "
                               f"{plan.generation_timeout:g} s generation deadline (allowance {allowance:.1f} s; "
                               f"locked_by {row['locked_by']}, attempt {row['attempts']})")
                        if msg.split(" held")[0] not in " ".join(result.violations):
                            result.violations.append(msg)
                if overdue > plan.stall_allowance:
                    stuck = db.query(
                        "select id, locked_by, attempts from public.generation_jobs where status = 'running' "
                        "and lease_expires_at < now() - make_interval(secs => %s)", (plan.stall_allowance,)) or []
                    for row in stuck:
                        msg = (f"job {row['id']} stuck running {overdue:.1f} s past its lease "
                               f"(locked_by {row['locked_by']}, attempt {row['attempts']})")
                        if msg.split(" stuck")[0] not in " ".join(result.violations):
                            result.violations.append(msg)
                if not batches and terminal >= plan.jobs and not restarts:
                    break
        if now > deadline:
            rows = db.query("select status, count(*) as n from public.generation_jobs group by status") or []
            result.notes.append("deadline passed: " + ", ".join(f"{r['status']} {r['n']}" for r in rows))
            held = db.query(
                "select id, locked_by, attempts, extract(epoch from now() - started_at)::float8 as age, "
                "extract(epoch from lease_expires_at - now())::float8 as lease_left "
                "from public.generation_jobs where status = 'running' order by started_at") or []
            for row in held:
                result.violations.append(
                    f"job {row['id']} still running at the deadline, {row['age']:.0f} s after its claim by "
                    f"{row['locked_by']} (attempt {row['attempts']}, lease "
                    f"{'renewed: ' + format(row['lease_left'], '.1f') + ' s left' if row['lease_left'] > 0 else 'expired'})")
            break
        time.sleep(0.05)
    result.stats["max_lease_overdue_s"] = round(max_overdue, 1)
    result.stats["max_held_s"] = round(max_held, 1)
    result.stats["drive_s"] = round(time.monotonic() - t0, 1)


def _drive_late_answers(plan: Plan, db: Db, workers: Workers, jobs: list[JobSpec], calls: Path,
                        result: Result) -> None:
    """One job at a time (its first call generates for `slow_seconds`):
    1. as soon as a worker claims it, hold the job's row lock: the worker's lease renewals wait on it, so by the
       end of generation it knows less than half a lease is surely left and checks its lease before uploading;
    2. once the image is generated and that check waits on the lock, freeze the worker (SIGSTOP) and release the
       lock: the check succeeds in the database ("you hold the lease", for one more lease);
    3. keep the worker frozen until its lease expired and another worker completed the job;
    4. resume it: it reads the stale answer and must not upload over the winner's object."""
    import psycopg

    t0 = time.monotonic()
    deadline = t0 + plan.deadline

    def wait(predicate: Any, within: float, what: str) -> Any:
        limit = min(deadline, time.monotonic() + within)
        while time.monotonic() < limit:
            workers.dir.check()
            value = predicate()
            if value:
                return value
            time.sleep(0.02)
        raise RuntimeError(f"stale-answer: timed out waiting for {what}")

    def one(spec: JobSpec) -> None:
        with psycopg.connect(db.dsn, connect_timeout=5) as locker:
            insert_jobs(db, [spec])
            row = wait(lambda: (db.query(
                "select id, locked_by from public.generation_jobs where prompt = %s and status = 'running'",
                (spec.prompt,)) or [None])[0], 30, "the job to be claimed")
            job_id, owner = row["id"], row["locked_by"]
            locker.execute("select 1 from public.generation_jobs where id = %s for update", (job_id,))
            victim = next(p for p in workers.procs if p.alive() and owner.split(":")[1] == str(p.pid))
            wait(lambda: (calls / f"{job_id}.1.generated").exists(), plan.slow_seconds + 30, "the image")
            time.sleep(0.3)
            waiting = (db.query("select count(*) as n from pg_stat_activity where wait_event_type = 'Lock' "
                                "and query ilike %s", ("%renew_leases%",)) or [{"n": 0}])[0]["n"]
            os.kill(victim.pid, signal.SIGSTOP)
            result.stalls += 1
            result.stats.setdefault("lease_checks_waiting", []).append(waiting)
            locker.rollback()
        try:
            wait(lambda: (db.query("select status from public.generation_jobs where id = %s", (job_id,))
                          or [{"status": None}])[0]["status"] == "succeeded", 30,
                 "the job to be completed while its first worker is frozen")
        finally:
            os.kill(victim.pid, signal.SIGCONT)
        time.sleep(1.5)                 # the resumed worker reads its stale answer and acts on it

    for spec in jobs:
        one(spec)
    result.stats["drive_s"] = round(time.monotonic() - t0, 1)


def restart_points(plan: Plan) -> list[float]:
    """Restart k happens once this share of the jobs is terminal (spread over the run)."""
    n = len(plan.restarts)
    return [(k + 1) / (n + 2) for k in range(n)]


# ## Invariants
def check_invariants(plan: Plan, db: Db, storage: Path, result: Result) -> None:
    from PIL import Image

    from tenkaigen_tools.chaos_backend import split_provenance
    from worker.backends.placeholder import render
    from worker.jobs import Job

    rows = db.query("select j.*, extract(epoch from j.updated_at)::float8 as updated_epoch "
                    "from public.generation_jobs j order by created_at")
    completions = db.query(
        "select job_id, attempt, worker_id, result_path, extract(epoch from completed_at)::float8 as completed_epoch "
        "from queue.job_completions order by id")
    if rows is None or completions is None:
        result.violations.append("the database was unreachable at the end")
        return
    by_job: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for c in completions:
        by_job.setdefault(c["job_id"], []).append(c)
    v = result.violations
    statuses: Counter[str] = Counter()
    attempts: Counter[int] = Counter()
    kinds: Counter[str] = Counter()
    known = {row["id"] for row in rows}
    for job_id in by_job.keys() - known:
        v.append(f"completion rows for an unknown job {job_id}")
    if len(rows) != plan.jobs:
        v.append(f"{len(rows)} job rows, {plan.jobs} inserted")
    results_root = storage / RESULTS_BUCKET
    seen_files: set[Path] = set()
    for row in rows:
        jid, status = row["id"], row["status"]
        meta = (row["metadata"] or {}).get("chaos", {})
        statuses[status] += 1
        attempts[row["attempts"]] += 1
        kinds[meta.get("kind", "?")] += 1
        done = by_job.get(jid, [])
        tag = f"job {jid} ({meta.get('kind', '?')}, attempt {row['attempts']})"
        if status not in TERMINAL:
            v.append(f"{tag} not terminal: {status} (locked_by {row['locked_by']})")
        if row["attempts"] > row["max_attempts"]:
            v.append(f"{tag}: attempts {row['attempts']} > max_attempts {row['max_attempts']}")
        expect = meta.get("expect")
        if expect == "succeeded" and status != "succeeded" and status in TERMINAL:
            v.append(f"{tag} expected succeeded, ended {status}: {row['error_code']}: {row['error_message']}")
        if expect == "failed" and (status != "failed" or row["error_code"] != "bad_request"
                                   or row["error_message"] != meta.get("message")):
            v.append(f"{tag} expected failed/bad_request {meta.get('message')!r}, ended {status}/"
                     f"{row['error_code']} {row['error_message']!r}")
        if status == "succeeded" and meta.get("kind") in ("transient", "timeout", "crash") \
                and row["attempts"] < meta.get("faults", 0) + 1:
            v.append(f"{tag} succeeded in {row['attempts']} attempt(s) despite {meta.get('faults')} injected fault(s)")
        if status != "succeeded":
            if done:
                v.append(f"{tag} is {status} but has {len(done)} completion row(s)")
            continue
        # succeeded: one completion, one object, the right pixels, untouched afterwards
        key = f"{row['user_id']}/{jid}.png"
        path = results_root / key
        seen_files.add(path)            # its object, even when the checks below stop early
        if row["result_path"] != key:
            v.append(f"{tag}: result_path {row['result_path']!r}, expected {key!r}")
        if len(done) != 1:
            v.append(f"{tag} completed {len(done)} times: " + ", ".join(
                f"attempt {c['attempt']} by {c['worker_id']}" for c in done))
            if not done:
                continue
        completion = done[-1]
        if completion["attempt"] != row["attempts"] or completion["result_path"] != row["result_path"]:
            v.append(f"{tag}: completion row says attempt {completion['attempt']} / {completion['result_path']}")
        if row["updated_epoch"] > completion["completed_epoch"] + 1e-6:
            v.append(f"{tag}: the row changed {row['updated_epoch'] - completion['completed_epoch']:.3f} s "
                     "after its completion")
        try:
            stored = path.read_bytes()
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            v.append(f"{tag}: no stored object at {RESULTS_BUCKET}/{key}")
            continue
        pixels_png, provenance = split_provenance(stored)
        writer = (provenance or "").split(" ")[0].removeprefix("worker=")
        late = mtime - completion["completed_epoch"]
        if late > 0 or provenance is None or writer != completion["worker_id"]:   # every chaos PNG is tagged
            v.append(f"{tag}: the winner's object was overwritten: completed by {completion['worker_id']}, object "
                     f"written {f'{late:.3f} s after' if late > 0 else 'before'} the completion by "
                     f"{writer or 'an unknown writer'}")
        expected = render(Job.from_row(row).to_request())
        if pixels_png != expected and not _same_pixels(pixels_png, expected, Image):
            v.append(f"{tag}: the stored image does not match its own request")
    # objects that no succeeded job owns
    orphans = [p for p in results_root.rglob("*.png") if p not in seen_files] if results_root.exists() else []
    temp = list(results_root.rglob(".upload-*")) if results_root.exists() else []
    result.stats.update({
        "statuses": dict(statuses),
        "attempts_max": max(attempts) if attempts else 0,
        "attempts_total": sum(k * n for k, n in attempts.items()),
        "retried_jobs": sum(n for k, n in attempts.items() if k > 1),
        "completions": len(completions),
        "kinds": dict(kinds),
        "orphan_objects": len(orphans),
        "orphan_temp_files": len(temp),
    })
    if orphans:     # a retry rewrites the same key, so even an attempt that did not complete leaves none
        v.append(f"{len(orphans)} stored object(s) belong to no succeeded job: " + ", ".join(
            str(p.relative_to(results_root)) for p in sorted(orphans)[:5]))
    if temp:
        result.notes.append(f"{len(temp)} half-written temp file(s) left by killed workers (local storage)")


def _same_pixels(a: bytes, b: bytes, image_module: Any) -> bool:
    try:
        with image_module.open(io.BytesIO(a)) as x, image_module.open(io.BytesIO(b)) as y:
            return bool(x.size == y.size and x.convert("RGB").tobytes() == y.convert("RGB").tobytes())
    except Exception:
        return False


# ## Output
def render_table(results: list[Result], console: Any, title: str) -> None:
    from rich.table import Table

    table = Table(title=title)
    for name, justify in (("scenario", "left"), ("jobs", "right"), ("kills", "right"), ("restarts", "right"),
                          ("stalls", "right"), ("faults", "right"), ("retried", "right"),
                          ("max attempts", "right"), ("duration", "right"), ("violations", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in results:
        table.add_row(
            r.scenario, str(r.jobs), str(r.kills), str(r.restarts), str(r.stalls), str(r.faults),
            str(r.stats.get("retried_jobs", "-")), str(r.stats.get("attempts_max", "-")), f"{r.duration:.0f} s",
            "[green]0[/green]" if r.passed else f"[red]{len(r.violations)}[/red]")
    console.print(table)
    for r in results:
        for line in r.violations[:15]:
            console.print(f"[red]VIOLATION[/red] {r.scenario}: {line}", markup=True, highlight=False)
        if len(r.violations) > 15:
            console.print(f"[red]VIOLATION[/red] {r.scenario}: … and {len(r.violations) - 15} more")
        for line in r.notes:
            console.print(f"note {r.scenario}: {line}", highlight=False)


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    parser = argparse.ArgumentParser(prog="scripts/chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the short version (under 3 minutes)")
    parser.add_argument("--scenario", action="append", choices=sorted(plans(True)),
                        help=f"run only this scenario (repeatable; default {', '.join(DEFAULT_SCENARIOS)})")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: new each run, printed)")
    parser.add_argument("--jobs", type=int, default=None, help="override the number of jobs of every scenario")
    parser.add_argument("--keep", action="store_true", help="keep each scenario's directory (logs, storage)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    parser.add_argument("--dir", type=Path, default=None,
                        help="make the scenario directories in here (default: <checkout>/.chaos; not /tmp, whose "
                             "cleanups by other runs removed a running scenario's directory)")
    args = parser.parse_args(argv)
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**6)
    available = plans(args.quick)
    names = args.scenario or list(QUICK_SCENARIOS if args.quick else DEFAULT_SCENARIOS)
    mode = "quick" if args.quick else "full"
    base = chaos_root(args.dir)
    console.print(f"chaos ({mode}): scenarios {', '.join(names)}; seed {seed}; backend chaos; directories in {base}")
    results = []
    started = time.monotonic()
    for name in names:
        plan = available[name]
        if args.jobs is not None:
            plan = Plan(**{**asdict(plan), "jobs": args.jobs})
        console.print(f"→ {name}: {plan.title}; {plan.jobs} jobs, {plan.workers} workers, "
                      f"lease {plan.lease_seconds} s …")
        r = run_scenario(plan, seed=seed, keep=args.keep, console=console, base=base)
        console.print(f"  {name}: {'ok' if r.passed else f'{len(r.violations)} violation(s)'} in {r.duration:.0f} s "
                      f"{json.dumps(r.stats.get('statuses', {}))}")
        results.append(r)
    total = time.monotonic() - started
    render_table(results, console, f"scripts/chaos {'--quick ' if args.quick else ''}(seed {seed}, "
                                   f"{total:.0f} s, {datetime.now().astimezone():%Y-%m-%d %H:%M})")
    if args.json is not None:
        args.json.write_text(json.dumps({"mode": mode, "seed": seed, "seconds": round(total, 1),
                                         "results": [asdict(r) for r in results]}, indent=2, default=str))
    passed = sum(r.passed for r in results)
    failed = len(results) - passed
    print(f"chaos: {passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
