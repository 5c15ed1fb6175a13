-- Regression (found by this test, fixed in bebcd76): queue.job_stats is a security_invoker view and
-- generation_jobs has RLS enabled; tenkaigen_worker had SELECT but no policy (and no BYPASSRLS), so for the
-- worker role (the one `tenkaigen stats` and collect_queue_metrics use) every count was 0.
begin;
select plan(3);

delete from public.generation_jobs;   -- count from a known state (rolled back)
select tests.create_supabase_user('alice') as alice \gset
select tests.make_job('alice', 'waiting') as queued \gset
select tests.make_running_job('alice', 'worker-a', 60, 1) as running \gset
select tests.make_finished_job('alice', 'failed') as failed \gset

-- TEST: the worker role may read the view
select ok(has_table_privilege('tenkaigen_worker', 'queue.job_stats', 'select'), 'tenkaigen_worker may select job_stats');

-- TEST: the worker role sees the same counts as an admin (read as the worker; asserted as the admin, since
-- the worker has no usage on schema extensions where pgTAP lives)
set local role tenkaigen_worker;
select format('(%s,%s,%s,%s)', queued, claimable, running, failed_last_24h) as worker_counts from queue.job_stats \gset
reset role;
select is(:'worker_counts'::text, '(1,1,1,1)', 'tenkaigen_worker counts 1 queued, 1 claimable, 1 running, 1 failed');
select is((select format('(%s,%s,%s,%s)', queued, claimable, running, failed_last_24h) from queue.job_stats), '(1,1,1,1)',
          'the admin counts 1 queued, 1 claimable, 1 running, 1 failed');

select * from finish();
rollback;
