begin;
select plan(4);

select tests.create_supabase_user('alice') as alice \gset
select tests.make_job('alice', 'retry in a minute', 9::smallint, now() + interval '1 minute') as later \gset
select tests.make_job('alice', 'due exactly now', 0::smallint, now()) as due \gset

-- TEST: run_after in the future is not claimable, even at a higher priority; run_after = now() is
select results_eq($$select id from queue.claim_jobs('worker-a', 10)$$,
                  format('values (%L::uuid)', :'due'),
                  'only the job that is due is claimed');
select is((select status from public.generation_jobs where id = :'later'), 'queued',
          'the future job stays queued');
select is((select attempts from public.generation_jobs where id = :'later'), 0,
          'the future job''s attempts are untouched');

-- TEST: a second claim finds nothing (the future job is still not due)
select is_empty($$select * from queue.claim_jobs('worker-b', 10)$$, 'nothing else is claimable');

select * from finish();
rollback;
