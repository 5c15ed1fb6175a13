begin;
select plan(10);

select tests.create_supabase_user('alice');
select tests.create_supabase_user('bob');
select tests.make_job('alice', 'queued one');
select tests.make_running_job('alice', 'worker-a');
select tests.make_job('bob', 'bob''s');

select tests.authenticate_as('alice');

-- TEST: a queued job becomes canceled at once
select is(public.cancel_generation_job((select id from public.generation_jobs where prompt = 'queued one')),
          'canceled', 'cancel of a queued job answers canceled');
select results_eq($$select status, finished_at is not null from public.generation_jobs where prompt = 'queued one'$$,
                  $$values ('canceled'::text, true)$$, 'the queued job is canceled and finished');

-- TEST: a running job gets cancel_requested_at and stays running until the worker stops it
select is(public.cancel_generation_job((select id from public.generation_jobs where status = 'running')),
          'cancel_requested', 'cancel of a running job answers cancel_requested');
select results_eq($$select status, cancel_requested_at is not null from public.generation_jobs where locked_by is not null$$,
                  $$values ('running'::text, true)$$, 'the running job is flagged, still running');

-- TEST: a final job is left alone; cancelling twice is harmless
select is(public.cancel_generation_job((select id from public.generation_jobs where prompt = 'queued one')),
          'canceled', 'cancel of a canceled job answers its status and changes nothing');

-- TEST: another user's job cannot be cancelled, and its existence is not revealed
reset role;
select tests.authenticate_as('alice');
select throws_ok(format('select public.cancel_generation_job(%L)',
                        (select id from public.generation_jobs j where false)), 'P0002', null,
                 'an unknown id is not found');
reset role;
select set_config('tests.bob_job', (select id::text from public.generation_jobs where prompt = 'bob''s'), true);
select tests.authenticate_as('alice');
select throws_ok(format('select public.cancel_generation_job(%L)', current_setting('tests.bob_job')), 'P0002',
                 format('job_id: no job %s among your jobs', current_setting('tests.bob_job')),
                 'alice cannot cancel bob''s job');
reset role;
select is((select status from public.generation_jobs where prompt = 'bob''s'), 'queued', 'bob''s job is untouched');

-- TEST: anon cannot call the RPC; the queue position is only for your own queued jobs
select tests.clear_authentication();
select throws_ok(format('select public.cancel_generation_job(%L)', current_setting('tests.bob_job')), '42501',
                 'permission denied for function cancel_generation_job', 'anon cannot cancel');
select tests.authenticate_as('alice');
select is(public.generation_job_queue_position(current_setting('tests.bob_job')::uuid), null,
          'alice gets no queue position for bob''s job');

select * from finish();
rollback;
