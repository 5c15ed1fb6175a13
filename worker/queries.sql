-- Every query the Python side runs, as named blocks: a `-- <name> --` line, a one-line description, then the SQL.
-- worker/queries.py splits this file once at import into QUERIES[name].
-- The worker's writes are thin calls of the queue.* functions (supabase/migrations): the state machine and
-- every fence live there. Parameters use psycopg's %(name)s style; {placeholders} are psycopg.sql identifiers.

-- claim_jobs --
-- Claim up to max_jobs queued jobs: queued -> running, attempts + 1, leased to this worker (the columns a backend
-- needs, and `claims`: this claim's number, the fence of every write for the run).
select id, user_id, attempts, max_attempts, claims, resolved_prompt, negative_prompt, variant, width, height, steps,
       true_cfg_scale, seed, init_image_path, style, lora, lora_scale, backend_call_id
from queue.claim_jobs(%(worker_id)s, %(max_jobs)s, %(lease_seconds)s);

-- renew_leases --
-- Extend the leases of the (job, claim number) pairs this worker holds; missing ids were lost; cancel_requested = stop it.
select job_id, cancel_requested
from queue.renew_leases(%(worker_id)s, %(job_ids)s::uuid[], %(claims)s::integer[], %(lease_seconds)s);

-- report_progress --
-- Record progress 0..1 of the run this claim holds; false = the lease is lost.
select queue.report_progress(%(worker_id)s, %(job_id)s, %(claim)s, %(progress)s::real);

-- record_backend_call --
-- Record the backend call id of the run this claim holds as soon as the call exists; false = the lease is lost.
select queue.record_backend_call(%(worker_id)s, %(job_id)s, %(claim)s, %(call_id)s);

-- complete_jobs --
-- Mark a batch of jobs succeeded (fenced per job); returns the ids completed, a missing id lost its lease.
select job_id from queue.complete_jobs(%(worker_id)s, %(results)s::jsonb) as job_id;

-- fail_job --
-- Record a failed attempt: the new status (queued = will retry after backoff, failed), null = lease lost.
select queue.fail_job(%(worker_id)s, %(job_id)s, %(claim)s, %(error_code)s, %(error_message)s, %(retryable)s);

-- acknowledge_cancel --
-- running -> canceled once this worker stopped a job whose cancel was requested; false = lease lost.
select queue.acknowledge_cancel(%(worker_id)s, %(job_id)s, %(claim)s);

-- release_jobs --
-- Give back unfinished jobs on graceful shutdown (queued again at once, attempt not counted); returns how many.
select queue.release_jobs(%(worker_id)s, %(job_ids)s::uuid[], %(claims)s::integer[]);

-- reap_expired_leases --
-- Requeue (or fail/cancel) running jobs whose lease expired; returns how many.
select queue.reap_expired_leases(%(max_jobs)s);

-- purge_finished_jobs --
-- Retention: delete finished jobs older than older_than, queuing their images in the Storage deletion outbox.
select job_id, object_key from queue.purge_finished_jobs(%(older_than)s::interval, %(max_jobs)s);

-- claim_storage_deletions --
-- Take a batch of queued Storage deletions of one bucket, held for lease_seconds: (id, object_key).
select id, object_key from queue.claim_storage_deletions(%(bucket)s, %(max_rows)s, %(lease_seconds)s);

-- finish_storage_deletions --
-- error null: the objects are deleted, drop the outbox rows; else release them with the error for the next run.
select queue.finish_storage_deletions(%(ids)s::bigint[], %(error)s);

-- try_lead --
-- Take or renew the queue-metrics leader lease (one worker exports the queue-wide gauges); true while this worker leads.
select queue.try_lead(%(worker_id)s, %(lease_seconds)s);

-- resign_lead --
-- A stopping leader ends its queue-metrics lease so another worker takes over at once; true if it led.
select queue.resign_lead(%(worker_id)s);

-- record_cost_alert --
-- Cost alert, once per UTC day for the deployment: a row (day, cost, attempt) when this worker must send it now.
select day, cost_usd, gpu_seconds, attempt
from queue.record_cost_alert(%(threshold_usd)s::numeric, %(max_attempts)s, %(retry_after)s::interval);

-- finish_cost_alert --
-- Record a cost alert delivery: error null = delivered (never sent again), else the error of that attempt.
select queue.finish_cost_alert(%(day)s::date, %(attempt)s, %(error)s);

-- requeue_job --
-- Admin: requeue a failed, canceled or succeeded job; returns the status before the call and queued or the live status.
select (select j.status from public.generation_jobs j where j.id = %(job_id)s) as before,
       queue.requeue_job(%(job_id)s, %(reset_attempts)s) as outcome;

-- cancel_job --
-- Admin: cancel a job (queued -> canceled, running -> cancel requested); returns the status before and what happened.
select (select j.status from public.generation_jobs j where j.id = %(job_id)s) as before,
       queue.cancel_job(%(job_id)s) as outcome;

-- resolve_job_prefix --
-- Admin: the (at most two) job ids in the range a short id prefix spans, an index range scan on the primary key.
select j.id from public.generation_jobs j
where j.id between %(low)s::uuid and %(high)s::uuid
order by j.id
limit 2;

-- job_stats --
-- Admin: queue depth (exact), oldest claimable job, and the last 24 h's finished jobs by status, throughput and cost.
select queued, claimable, running, succeeded_last_24h, failed_last_24h, canceled_last_24h,
       oldest_claimable_age_seconds, finished_last_hour, gpu_seconds_last_24h, cost_usd_last_24h
from queue.job_stats;

-- get_job --
-- One job row for display.
select id, user_id, status, progress, prompt, style, variant, width, height, attempts, max_attempts, created_at,
       started_at, finished_at, cancel_requested_at, locked_by, result_path, error_code, error_message, backend,
       gpu_seconds, cost_usd
from public.generation_jobs
where id = %(job_id)s;

-- list_jobs --
-- Recent jobs for display, newest first, optionally of one status.
select id, user_id, status, progress, prompt, style, variant, width, height, attempts, max_attempts, created_at,
       started_at, finished_at, cancel_requested_at, locked_by, result_path, error_code, error_message, backend,
       gpu_seconds, cost_usd
from public.generation_jobs
where (%(status)s::text is null or status = %(status)s::text)
order by created_at desc
limit %(limit)s;

-- ensure_user --
-- Dev only: a signed-up user in auth.users (what GoTrue creates at sign-up), kept if it exists.
insert into auth.users (id, email, aud, role, raw_app_meta_data, raw_user_meta_data)
values (%(user_id)s, %(email)s, 'authenticated', 'authenticated', '{}', '{}')
on conflict (id) do nothing;

-- client_set_role --
-- Start a client request the way PostgREST does (inside a transaction): the API role.
set local role authenticated;

-- client_set_claims --
-- Start a client request the way PostgREST does: the JWT claims auth.uid() reads.
select set_config('request.jwt.claims', %(claims)s, true);

-- enqueue_job --
-- A client inserts a job (column-level grants and RLS apply); {columns} are the request fields given.
insert into public.generation_jobs ({columns}) values ({values})
returning id, status, seed, steps, variant;

-- check_schema --
-- Start-up check: the queue functions exist (migrations applied) and this role may execute them. Looked up in
-- pg_catalog, not with to_regprocedure: that raises insufficient_privilege for a role without USAGE on queue.
select p.oid is not null as has_queue,
       coalesce(has_schema_privilege(p.pronamespace, 'usage') and has_function_privilege(p.oid, 'execute'),
                false) as can_execute,
       current_user as role_name
from (select) as one
left join pg_catalog.pg_proc p
       on p.pronamespace = to_regnamespace('queue') and p.proname = 'claim_jobs'
      and pg_catalog.oidvectortypes(p.proargtypes) = 'text, integer, integer';

-- dev_database_exists --
-- Dev only: whether the dev database exists on the local cluster.
select exists (select from pg_database where datname = %(name)s);

-- dev_create_database --
-- Dev only: create the dev database ({database} is a psycopg.sql identifier).
create database {database};

-- dev_drop_database --
-- Dev only: drop a stale dev database, disconnecting its sessions ({database} is a psycopg.sql identifier).
drop database if exists {database} with (force);

-- dev_applied_migrations --
-- Dev only: the SQL each applied migration had when it was applied (to notice migrations edited since).
select version, statements[1] as sql
from supabase_migrations.schema_migrations
where to_regclass('supabase_migrations.schema_migrations') is not null;
