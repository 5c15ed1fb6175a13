begin;
select plan(20);

select tests.create_supabase_user('alice') as alice \gset
select tests.create_supabase_user('bob') as bob \gset
select tests.make_job('alice', 'queued') as queued \gset
select tests.make_running_job('alice', 'worker-a', 60, 1) as running \gset
select tests.make_finished_job('alice', 'succeeded') as succeeded \gset
select tests.make_finished_job('alice', 'failed') as failed \gset
select tests.make_finished_job('alice', 'canceled') as canceled \gset

-- Each statement breaks exactly one invariant; the error names the CHECK that enforces it.

-- TEST: lease_only_while_running: running <=> locked_by and lease_expires_at are set
select throws_ok(format($$update public.generation_jobs set lease_expires_at = null where id = %L$$, :'running'),
                 '23514', 'new row for relation "generation_jobs" violates check constraint "lease_only_while_running"',
                 'a running job without lease_expires_at is rejected');
select throws_ok(format($$update public.generation_jobs set locked_by = null where id = %L$$, :'running'),
                 '23514', 'new row for relation "generation_jobs" violates check constraint "lease_only_while_running"',
                 'a running job without locked_by is rejected');
select throws_ok(format($$update public.generation_jobs set locked_by = 'w', lease_expires_at = now() where id = %L$$,
                        :'queued'),
                 '23514', 'new row for relation "generation_jobs" violates check constraint "lease_only_while_running"',
                 'a queued job with a lease is rejected');
select throws_ok(format($$update public.generation_jobs set locked_by = 'w', lease_expires_at = now() where id = %L$$,
                        :'succeeded'),
                 '23514', 'new row for relation "generation_jobs" violates check constraint "lease_only_while_running"',
                 'a succeeded job with a lease is rejected');

-- TEST: result_only_when_succeeded: succeeded <=> result_path is set
select throws_ok(format($$update public.generation_jobs set result_path = null where id = %L$$, :'succeeded'),
                 '23514', 'new row for relation "generation_jobs" violates check constraint "result_only_when_succeeded"',
                 'a succeeded job without result_path is rejected');
select throws_ok(format($$update public.generation_jobs set result_path = %L where id = %L$$,
                        tests.result_path_for(:'running'), :'running'),
                 '23514', 'new row for relation "generation_jobs" violates check constraint "result_only_when_succeeded"',
                 'a running job with a result_path is rejected');

-- TEST: result_path_is_owner_folder: the result is <user_id>/<job_id>.png
select throws_ok(format($$update public.generation_jobs set result_path = %L where id = %L$$,
                        (:'bob')::text || '/' || (:'succeeded')::text || '.png', :'succeeded'),
                 '23514', 'new row for relation "generation_jobs" violates check constraint "result_path_is_owner_folder"',
                 'a result in another user''s folder is rejected');

-- TEST: finished_at_only_when_final: succeeded, failed, canceled <=> finished_at is set
select throws_ok(format($$update public.generation_jobs set finished_at = null where id = %L$$, :'succeeded'),
                 '23514', 'new row for relation "generation_jobs" violates check constraint "finished_at_only_when_final"',
                 'a succeeded job without finished_at is rejected');
select throws_ok(format($$update public.generation_jobs set finished_at = null where id = %L$$, :'canceled'),
                 '23514', 'new row for relation "generation_jobs" violates check constraint "finished_at_only_when_final"',
                 'a canceled job without finished_at is rejected');
select throws_ok(format($$update public.generation_jobs set finished_at = now() where id = %L$$, :'queued'),
                 '23514', 'new row for relation "generation_jobs" violates check constraint "finished_at_only_when_final"',
                 'a queued job with finished_at is rejected');

-- TEST: error_code_when_failed: a failed job says why
select throws_ok(format($$update public.generation_jobs set error_code = null where id = %L$$, :'failed'),
                 '23514', 'new row for relation "generation_jobs" violates check constraint "error_code_when_failed"',
                 'a failed job without error_code is rejected');

-- TEST: attempts_within_max: 0 <= attempts <= max_attempts
select throws_ok(format($$update public.generation_jobs set attempts = 4 where id = %L$$, :'running'),
                 '23514', 'new row for relation "generation_jobs" violates check constraint "attempts_within_max"',
                 'attempts above max_attempts are rejected');
select throws_ok(format($$update public.generation_jobs set attempts = -1 where id = %L$$, :'queued'),
                 '23514', 'new row for relation "generation_jobs" violates check constraint "attempts_within_max"',
                 'negative attempts are rejected');

-- TEST: max_attempts_in_range: 1 to 25
select throws_ok(format($$update public.generation_jobs set max_attempts = 0 where id = %L$$, :'queued'),
                 '23514', 'new row for relation "generation_jobs" violates check constraint "max_attempts_in_range"',
                 'max_attempts 0 is rejected');
select throws_ok(format($$update public.generation_jobs set max_attempts = 26 where id = %L$$, :'queued'),
                 '23514', 'new row for relation "generation_jobs" violates check constraint "max_attempts_in_range"',
                 'max_attempts 26 is rejected');

-- TEST: progress_between_0_and_1
select throws_ok(format($$update public.generation_jobs set progress = 1.01 where id = %L$$, :'running'),
                 '23514', 'new row for relation "generation_jobs" violates check constraint "progress_between_0_and_1"',
                 'progress above 1 is rejected');
select throws_ok(format($$update public.generation_jobs set progress = -0.01 where id = %L$$, :'running'),
                 '23514', 'new row for relation "generation_jobs" violates check constraint "progress_between_0_and_1"',
                 'negative progress is rejected');

-- TEST: status_is_valid: an insert with an unknown status (updates meet the transition trigger first)
select throws_ok(format($$insert into public.generation_jobs (user_id, prompt, status) values (%L, 'x', 'paused')$$,
                        :'alice'),
                 '23514', 'new row for relation "generation_jobs" violates check constraint "status_is_valid"',
                 'an unknown status is rejected');

-- TEST: resolved_request_is_complete: what the worker runs is never missing
select throws_ok(format($$update public.generation_jobs set resolved_prompt = null where id = %L$$, :'queued'),
                 '23514', 'new row for relation "generation_jobs" violates check constraint "resolved_request_is_complete"',
                 'a job without resolved_prompt is rejected');

-- TEST: an insert that starts running without a lease is rejected
select throws_ok(format($$insert into public.generation_jobs (user_id, prompt, status, attempts) values (%L, 'x', 'running', 1)$$,
                        :'alice'),
                 '23514', 'new row for relation "generation_jobs" violates check constraint "lease_only_while_running"',
                 'an inserted running job without a lease is rejected');

select * from finish();
rollback;
