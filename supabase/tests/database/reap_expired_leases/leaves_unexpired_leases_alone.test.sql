begin;
select plan(5);

select tests.create_supabase_user('alice') as alice \gset
select tests.make_running_job('alice', 'worker-a', 30, 1) as alive \gset
select tests.make_running_job('alice', 'worker-a', 0, 1) as expires_now \gset
select tests.make_running_job('alice', 'worker-dead', -1, 1) as expired \gset
select tests.make_job('alice', 'queued') as queued \gset
select tests.make_finished_job('alice', 'succeeded') as succeeded \gset
select tests.job_snapshot(:'alive') as alive_before \gset
select tests.job_snapshot(:'expires_now') as expires_now_before \gset
select tests.job_snapshot(:'queued') as queued_before \gset
select tests.job_snapshot(:'succeeded') as succeeded_before \gset

-- TEST: only the lease that ended before now() is reaped
select is(queue.reap_expired_leases(), 1, 'one job is reaped');
select is(tests.job_snapshot(:'alive'), :'alive_before'::jsonb, 'a live lease is untouched');
select is(tests.job_snapshot(:'expires_now'), :'expires_now_before'::jsonb,
          'a lease ending exactly now is not expired yet');
select is(tests.job_snapshot(:'queued'), :'queued_before'::jsonb, 'a queued job is untouched');
select is(tests.job_snapshot(:'succeeded'), :'succeeded_before'::jsonb, 'a succeeded job is untouched');

select * from finish();
rollback;
