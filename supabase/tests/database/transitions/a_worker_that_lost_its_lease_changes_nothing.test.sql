begin;
select plan(17);

select tests.create_supabase_user('alice') as alice \gset

-- Story A: worker-a claims a job, stops renewing (its lease expires at once), the reaper requeues the job and
-- worker-a, restarted under the same id, claims it again as attempt 2. Calls for attempt 1 are stale.
select tests.make_job('alice', 'story A') as job_a \gset
select id as claimed_a from queue.claim_jobs('worker-a', 1, -5) \gset
select queue.reap_expired_leases() as reaped_a \gset
select attempts as attempt_a from queue.claim_jobs('worker-a', 1, 60) \gset
select queue.request_cancel(:'job_a') as cancel_a \gset
select tests.job_snapshot(:'job_a') as job_a_before \gset

-- TEST: the job was reclaimed by the same worker id as attempt 2
select results_eq(format($$select locked_by, attempts from public.generation_jobs where id = %L$$, :'job_a'),
                  $$values ('worker-a'::text, 2)$$, 'story A: worker-a holds attempt 2');

-- TEST: every call for attempt 1 is fenced off by the attempt number
select is(queue.report_progress('worker-a', :'job_a', 1, 0.9), false, 'A: report_progress answers false');
select is_empty(format($$select * from queue.renew_leases('worker-a', array[%L]::uuid[], array[1])$$, :'job_a'),
                'A: renew_leases leaves the job out');
select is_empty(format($$select * from queue.complete_jobs('worker-a', '[{"job_id": "%s", "claim": 1, "result_path": "%s"}]')$$,
                       :'job_a', tests.result_path_for(:'job_a')),
                'A: complete_jobs completes nothing');
select is(queue.fail_job('worker-a', :'job_a', 1, 'timeout', 'late', false), null, 'A: fail_job answers null');
select is(queue.acknowledge_cancel('worker-a', :'job_a', 1), false, 'A: acknowledge_cancel answers false');
select is(queue.release_jobs('worker-a', array[:'job_a']::uuid[], array[1]), 0, 'A: release_jobs answers 0');
select is(tests.job_snapshot(:'job_a'), :'job_a_before'::jsonb, 'A: the job is exactly as attempt 2 left it');

-- Story B: worker-a's lease expires, the reaper requeues the job and worker-b claims it as attempt 2.
-- worker-a now calls with the current attempt number: the worker id fences it off.
select tests.make_job('alice', 'story B') as job_b \gset
update public.generation_jobs set priority = 5 where id = :'job_b';
select id as claimed_b from queue.claim_jobs('worker-a', 1, -5) \gset
select queue.reap_expired_leases() as reaped_b \gset
select attempts as attempt_b from queue.claim_jobs('worker-b', 1, 60) \gset
select tests.job_snapshot(:'job_b') as job_b_before \gset

-- TEST: the job was reclaimed by another worker as attempt 2
select results_eq(format($$select locked_by, attempts from public.generation_jobs where id = %L$$, :'job_b'),
                  $$values ('worker-b'::text, 2)$$, 'story B: worker-b holds attempt 2');

-- TEST: every call by worker-a is fenced off by locked_by, even with the right attempt number
select is(queue.report_progress('worker-a', :'job_b', 2, 0.9), false, 'B: report_progress answers false');
select is_empty(format($$select * from queue.renew_leases('worker-a', array[%L]::uuid[], array[2])$$, :'job_b'),
                'B: renew_leases leaves the job out');
select is_empty(format($$select * from queue.complete_jobs('worker-a', '[{"job_id": "%s", "claim": 2, "result_path": "%s"}]')$$,
                       :'job_b', tests.result_path_for(:'job_b')),
                'B: complete_jobs completes nothing');
select is(queue.fail_job('worker-a', :'job_b', 2, 'timeout', 'late', true), null, 'B: fail_job answers null');
select is(queue.acknowledge_cancel('worker-a', :'job_b', 2), false, 'B: acknowledge_cancel answers false');
select is(queue.release_jobs('worker-a', array[:'job_b']::uuid[], array[2]), 0, 'B: release_jobs answers 0');
select is(tests.job_snapshot(:'job_b'), :'job_b_before'::jsonb, 'B: the job is exactly as worker-b holds it');

-- TEST: the current holder is not disturbed: worker-b completes its attempt
select results_eq(format($$select * from queue.complete_jobs('worker-b', '[{"job_id": "%s", "claim": 2, "result_path": "%s"}]')$$,
                         :'job_b', tests.result_path_for(:'job_b')),
                  format('values (%L::uuid)', :'job_b'), 'worker-b completes attempt 2');

select * from finish();
rollback;
