begin;
select plan(20);

select tests.create_supabase_user('alice') as alice \gset
-- one job per starting status for each legal edge
select tests.make_job('alice', 'queued to running') as q_running \gset
select tests.make_job('alice', 'queued to canceled') as q_canceled \gset
select tests.make_running_job('alice', 'worker-a', 60, 1) as r_succeeded \gset
select tests.make_running_job('alice', 'worker-a', 60, 1) as r_failed \gset
select tests.make_running_job('alice', 'worker-a', 60, 1) as r_queued \gset
select tests.make_running_job('alice', 'worker-a', 60, 1) as r_canceled \gset
select tests.make_finished_job('alice', 'failed') as f_queued \gset
select tests.make_finished_job('alice', 'canceled') as c_queued \gset
select tests.make_finished_job('alice', 'succeeded') as s_queued \gset

-- TEST: queued -> running (claim) and queued -> canceled (cancel before a worker took it)
select lives_ok(format($$select tests.update_status(%L, 'running')$$, :'q_running'), 'queued -> running is legal');
select is((select status from public.generation_jobs where id = :'q_running'), 'running', 'the job is running');
select lives_ok(format($$select tests.update_status(%L, 'canceled')$$, :'q_canceled'), 'queued -> canceled is legal');
select is((select status from public.generation_jobs where id = :'q_canceled'), 'canceled', 'the job is canceled');

-- TEST: running -> succeeded | failed | queued | canceled (complete, fail, retry/release/reap, acknowledge cancel)
select lives_ok(format($$select tests.update_status(%L, 'succeeded')$$, :'r_succeeded'),
                'running -> succeeded is legal');
select is((select status from public.generation_jobs where id = :'r_succeeded'), 'succeeded', 'the job succeeded');
select lives_ok(format($$select tests.update_status(%L, 'failed')$$, :'r_failed'), 'running -> failed is legal');
select is((select status from public.generation_jobs where id = :'r_failed'), 'failed', 'the job failed');
select lives_ok(format($$select tests.update_status(%L, 'queued')$$, :'r_queued'), 'running -> queued is legal');
select is((select status from public.generation_jobs where id = :'r_queued'), 'queued', 'the job is queued');
select lives_ok(format($$select tests.update_status(%L, 'canceled')$$, :'r_canceled'), 'running -> canceled is legal');
select is((select status from public.generation_jobs where id = :'r_canceled'), 'canceled', 'the job is canceled');

-- TEST: failed | canceled | succeeded -> queued (admin requeue)
select lives_ok(format($$select tests.update_status(%L, 'queued')$$, :'f_queued'), 'failed -> queued is legal');
select lives_ok(format($$select tests.update_status(%L, 'queued')$$, :'c_queued'), 'canceled -> queued is legal');
select lives_ok(format($$select tests.update_status(%L, 'queued')$$, :'s_queued'), 'succeeded -> queued is legal');
select is((select count(*)::int from public.generation_jobs where id in (:'f_queued', :'c_queued', :'s_queued')
           and status = 'queued'), 3, 'all three are queued again');

-- TEST: an update that keeps the status is not a transition, even on a final row
select lives_ok(format($$update public.generation_jobs set priority = 7 where id = %L$$, :'r_queued'),
                'queued -> queued (a priority change) is allowed');
select lives_ok(format($$update public.generation_jobs set lease_expires_at = now() + interval '5 minutes' where id = %L$$,
                       :'q_running'),
                'running -> running (a lease renewal) is allowed');
select lives_ok(format($$update public.generation_jobs set backend = 'modal' where id = %L$$, :'r_succeeded'),
                'succeeded -> succeeded (a bookkeeping column) is allowed');

-- TEST: every update stamps updated_at = now(), even one that tries to back-date it
update public.generation_jobs set updated_at = now() - interval '1 day';
select is((select count(*)::int from public.generation_jobs where updated_at = now()), 9,
          'the trigger stamps updated_at = now() on each updated row');

select * from finish();
rollback;
