-- The tools' named queries (benchmarks): the same format as worker/queries.sql, loaded by tenkaigen_tools/queries.py.
-- They live apart from the worker's so that the runtime package ships only the queries production runs.

-- server_info --
-- The PostgreSQL version and the current WAL position (benchmark report).
select current_setting('server_version') as server_version, pg_current_wal_lsn()::text as wal_lsn;

-- wal_bytes_since --
-- WAL bytes written since an earlier pg_current_wal_lsn() (benchmark report).
select pg_wal_lsn_diff(pg_current_wal_lsn(), %(lsn)s::pg_lsn)::bigint as wal_bytes;

-- bench_insert_jobs --
-- Benchmark: pre-insert n jobs as the owner (not rate limited), statement-level NOTIFY included.
insert into public.generation_jobs (user_id, prompt, width, height, style, variant, steps)
select %(user_id)s, %(prompt)s || ' #' || g, %(width)s, %(height)s, 'none', %(variant)s, %(steps)s
from generate_series(1, %(n)s) as g;

-- bench_insert_job --
-- Benchmark: insert one job as the owner; its id and when the row was written (insert -> claim latency).
insert into public.generation_jobs (user_id, prompt, width, height, style, variant, steps)
values (%(user_id)s, %(prompt)s, %(width)s, %(height)s, 'none', %(variant)s, %(steps)s)
returning id, extract(epoch from clock_timestamp())::double precision as written_at, xmin::text as xid;

-- bench_commit_times --
-- Benchmark: when each inserting transaction committed (needs track_commit_timestamp = on).
select x.xid, extract(epoch from pg_xact_commit_timestamp(x.xid::xid))::double precision as committed_at
from unnest(%(xids)s::text[]) as x(xid);

-- bench_count_by_status --
-- Benchmark: how many jobs are in each status.
select status, count(*)::integer as n from public.generation_jobs group by status;

-- bench_reset --
-- Benchmark: empty the jobs table, the completion audit and the broadcast log between runs.
truncate public.generation_jobs, queue.job_completions, realtime.messages;

-- recovery_job --
-- Recovery benchmark: who holds the job, which attempt, and when its current attempt was claimed (epoch seconds).
select status, locked_by, attempts, extract(epoch from started_at)::double precision as claimed_at
from public.generation_jobs where id = %(job_id)s;

-- bench_listeners --
-- Benchmark: how many worker LISTEN connections are up (the workers are ready).
select count(*)::integer from pg_stat_activity
where datname = current_database() and application_name = 'tenkaigen-listener';

-- bench_unfinished --
-- Benchmark: whether any job is still queued or running (uses the user_active partial index).
select exists (select from public.generation_jobs where status in ('queued', 'running'));

-- bench_transactions --
-- Benchmark: transactions committed or rolled back in this database so far (one per autocommit statement).
select (xact_commit + xact_rollback)::bigint from pg_stat_database where datname = current_database();

-- bench_clear_stats_snapshot --
-- Benchmark: read fresh statistics on the next query.
select pg_stat_clear_snapshot();

-- bench_claim_times --
-- Benchmark: when each job was claimed (epoch seconds of started_at) and its status.
select id, extract(epoch from started_at)::double precision as started_at, status
from public.generation_jobs where id = any(%(job_ids)s::uuid[]);

-- bench_vacuum --
-- Benchmark: vacuum and analyze the jobs table so each run starts from the same state.
vacuum analyze public.generation_jobs;
