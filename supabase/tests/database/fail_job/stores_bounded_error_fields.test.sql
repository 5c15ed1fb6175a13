begin;
select plan(4);

select tests.create_supabase_user('alice') as alice \gset
select tests.make_running_job('alice', 'worker-a', 60, 1) as long_error \gset
select tests.make_running_job('alice', 'worker-a', 60, 1) as no_code \gset

-- TEST: error_code is cut to 64 characters and error_message to 2000
select is(queue.fail_job('worker-a', :'long_error', 1, repeat('c', 100), repeat('m', 5000), false), 'failed',
          'a long error is recorded');
select is((select length(error_code) from public.generation_jobs where id = :'long_error'), 64,
          'error_code is cut to 64 characters');
select is((select length(error_message) from public.generation_jobs where id = :'long_error'), 2000,
          'error_message is cut to 2000 characters');

-- TEST: a missing error_code becomes 'error' (a failed row must have one)
select queue.fail_job('worker-a', :'no_code', 1, null, null, false) as no_code_status \gset
select results_eq(format($$select status, error_code, error_message from public.generation_jobs where id = %L$$,
                         :'no_code'),
                  $$values ('failed'::text, 'error'::text, null::text)$$,
                  'a null error_code is stored as error');

select * from finish();
rollback;
