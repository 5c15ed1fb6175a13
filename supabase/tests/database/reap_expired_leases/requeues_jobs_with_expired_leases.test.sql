begin;
select plan(6);

select tests.create_supabase_user('alice') as alice \gset
select tests.make_running_job('alice', 'worker-dead', -5, 1) as expired \gset
update public.generation_jobs set progress = 0.8, run_after = now() - interval '1 hour' where id = :'expired';

-- TEST: reap_expired_leases answers how many jobs it reaped
select is(queue.reap_expired_leases(), 1, 'one job is reaped');

-- TEST: a job with attempts left goes back to the queue, due now, the attempt counted
select results_eq(
  format($$select status, attempts, run_after, progress, locked_by, lease_expires_at, finished_at
           from public.generation_jobs where id = %L$$, :'expired'),
  $$values ('queued'::text, 1, now(), 0::real, null::text, null::timestamptz, null::timestamptz)$$,
  'queued, attempt 1 counted, due now, progress 0, lease cleared, not finished');

-- TEST: the error records what happened
select is((select error_code from public.generation_jobs where id = :'expired'), 'lease_expired',
          'error_code is lease_expired');
select is((select error_message from public.generation_jobs where id = :'expired'),
          'worker worker-dead stopped renewing its lease during attempt 1 (crashed, killed or disconnected)',
          'error_message names the worker and the attempt');

-- TEST: the reaped job is claimed again as the next attempt
select results_eq($$select id, attempts from queue.claim_jobs('worker-b', 10)$$,
                  format('values (%L::uuid, 2)', :'expired'), 'it is claimed again as attempt 2');

-- TEST: a second reap finds nothing
select is(queue.reap_expired_leases(), 0, 'nothing is left to reap');

select * from finish();
rollback;
