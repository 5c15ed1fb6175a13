begin;
select plan(4);

-- A realistic table (all rolled back): 30 days of history, 5000 finished jobs (one every ~9 minutes), beside a
-- backlog of 300 queued jobs and 20 running ones, with fresh statistics.
select tests.create_supabase_user('alice') as alice \gset
insert into public.generation_jobs (user_id, prompt, width, height, status, attempts, finished_at, error_code,
                                    created_at, run_after)
select tests.get_supabase_uid('alice'), 'old ' || n, 512, 512, 'failed', 1, now() - n * interval '518 seconds',
       'test_error', now() - n * interval '518 seconds', now() - n * interval '518 seconds'
from generate_series(1, 5000) as n;
insert into public.generation_jobs (user_id, prompt, width, height, priority, created_at, run_after)
select tests.get_supabase_uid('alice'), 'backlog ' || n, 512, 512, (n % 3)::smallint,
       now() - n * interval '1 second', now() - n * interval '1 second'
from generate_series(1, 320) as n;
update public.generation_jobs
   set status = 'running', attempts = 1, locked_by = 'worker-a', lease_expires_at = now() + interval '1 minute',
       started_at = now()
 where prompt in (select 'backlog ' || n from generate_series(1, 20) as n);
-- and 30 days of runs cleared by requeues (queue.job_runs, summed into the spend by finished_at)
insert into queue.job_runs (job_id, attempt, claim, status, finished_at, gpu_seconds, cost_usd)
select gen_random_uuid(), 1, 1, 'succeeded', now() - n * interval '518 seconds', 10, 0.01
from generate_series(1, 5000) as n;
analyze public.generation_jobs;
analyze queue.job_runs;

create function pg_temp.job_stats_plan() returns jsonb language plpgsql as $$
declare
  v_plan json;
begin
  execute 'explain (format json) select * from queue.job_stats' into v_plan;
  return v_plan::jsonb;
end;
$$;

-- TEST: no scan of the whole table
select ok(not (pg_temp.job_stats_plan() @? '$.** ? (@."Node Type" == "Seq Scan")'),
          'the job_stats plan has no sequential scan');

-- TEST: the finished rows are read through generation_jobs_finished_at_idx, as a range (the last 24 h)
select ok(pg_temp.job_stats_plan()
            @? '$.** ? (@."Index Name" == "generation_jobs_finished_at_idx" && @."Index Cond" like_regex "finished_at >")',
          'the finished rows are a range scan of generation_jobs_finished_at_idx');

-- TEST: the planner expects to read the active rows and one day of history, not the 5000 finished rows
select cmp_ok((select sum((s ->> 'Plan Rows')::numeric)
               from jsonb_path_query(pg_temp.job_stats_plan(),
                                     '$.** ? (@."Relation Name" == "generation_jobs")') as s),
              '<', 1000::numeric,
              'the scans of generation_jobs expect fewer than 1000 rows (active: 320, last 24 h: ~170)');

-- TEST: and the counts are those of the table
select results_eq($$select queued, running, failed_last_24h from queue.job_stats$$,
                  $$select count(*) filter (where status = 'queued'), count(*) filter (where status = 'running'),
                           count(*) filter (where status = 'failed' and finished_at > now() - interval '24 hours')
                    from public.generation_jobs$$,
                  'queued, running and failed_last_24h match counts over the whole table');

select * from finish();
rollback;
