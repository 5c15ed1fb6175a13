begin;
select plan(9);

select tests.create_supabase_user('alice') as alice \gset
select tests.make_running_job('alice', 'worker-a', 30, 1) as held \gset
select tests.make_running_job('alice', 'worker-b', 30, 1) as other_worker \gset
select tests.make_running_job('alice', 'worker-a', 30, 2) as reclaimed \gset
select tests.make_job('alice', 'requeued') as requeued \gset
select tests.make_finished_job('alice', 'succeeded') as finished \gset
select tests.job_snapshot(:'other_worker') as other_worker_before \gset
select tests.job_snapshot(:'reclaimed') as reclaimed_before \gset
select tests.job_snapshot(:'requeued') as requeued_before \gset
select tests.job_snapshot(:'finished') as finished_before \gset

-- TEST: only the job still held under the same attempt comes back; the lost ones are absent
select results_eq(
  format($$select job_id from queue.renew_leases('worker-a', array[%L, %L, %L, %L, %L]::uuid[],
                                                 array[1, 1, 1, 1, 1], 120)$$,
         :'held', :'other_worker', :'reclaimed', :'requeued', :'finished'),
  format('values (%L::uuid)', :'held'),
  'only the held job is renewed');
select is((select lease_expires_at from public.generation_jobs where id = :'held'), now() + interval '120 seconds',
          'the held lease is extended');

-- TEST: the lost jobs are unchanged
select is(tests.job_snapshot(:'other_worker'), :'other_worker_before'::jsonb,
          'a job locked by another worker is unchanged');
select is(tests.job_snapshot(:'reclaimed'), :'reclaimed_before'::jsonb,
          'a job reclaimed under a later attempt is unchanged');
select is(tests.job_snapshot(:'requeued'), :'requeued_before'::jsonb, 'a queued job is unchanged');
select is(tests.job_snapshot(:'finished'), :'finished_before'::jsonb, 'a succeeded job is unchanged');

-- TEST: an unknown id, empty arrays and mismatched arrays renew nothing
select is_empty($$select * from queue.renew_leases('worker-a', array[gen_random_uuid()], array[1])$$,
                'an unknown job id renews nothing');
select is_empty($$select * from queue.renew_leases('worker-a', '{}'::uuid[], '{}'::int[])$$,
                'empty arrays renew nothing');
select is_empty(format($$select * from queue.renew_leases('worker-a', array[%L]::uuid[], '{}'::int[])$$, :'held'),
                'a job id without its attempt renews nothing');

select * from finish();
rollback;
