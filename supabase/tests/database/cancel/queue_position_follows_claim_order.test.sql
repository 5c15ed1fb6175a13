begin;
select plan(4);

select tests.create_supabase_user('alice');
select tests.create_supabase_user('bob');
select set_config('tests.a1', tests.make_job('alice', 'a1', 0::smallint, now() - interval '3 minutes')::text, true);
select set_config('tests.b1', tests.make_job('bob', 'b1', 0::smallint, now() - interval '2 minutes')::text, true);
select set_config('tests.a2', tests.make_job('alice', 'a2', 0::smallint, now() - interval '1 minute')::text, true);
select set_config('tests.a3', tests.make_job('alice', 'a3', 5::smallint, now())::text, true);

select tests.authenticate_as('alice');
-- TEST: position counts every queued job ahead in claim order (priority desc, run_after, created_at)
select is(public.generation_job_queue_position(current_setting('tests.a3')::uuid), 1, 'higher priority goes first');
select is(public.generation_job_queue_position(current_setting('tests.a1')::uuid), 2, 'then the oldest');
select is(public.generation_job_queue_position(current_setting('tests.a2')::uuid), 4,
          'other users'' jobs ahead count too');
reset role;
update public.generation_jobs set status = 'canceled', finished_at = now() where prompt = 'a1';
select tests.authenticate_as('alice');
select is(public.generation_job_queue_position(current_setting('tests.a1')::uuid), null, 'a job not queued has none');

select * from finish();
rollback;
