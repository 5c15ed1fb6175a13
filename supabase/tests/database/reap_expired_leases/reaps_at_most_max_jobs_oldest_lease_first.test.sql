begin;
select plan(4);

select tests.create_supabase_user('alice') as alice \gset
select tests.make_running_job('alice', 'worker-dead', -10, 1) as expired_10s_ago \gset
select tests.make_running_job('alice', 'worker-dead', -30, 1) as expired_30s_ago \gset
select tests.make_running_job('alice', 'worker-dead', -5, 1) as expired_5s_ago \gset

-- TEST: max_jobs caps one sweep, taking the leases that expired first
select is(queue.reap_expired_leases(2), 2, 'max_jobs 2 reaps 2');
select set_eq($$select id from public.generation_jobs where status = 'queued'$$,
              format('values (%L::uuid), (%L::uuid)', :'expired_30s_ago', :'expired_10s_ago'),
              'the two leases that expired first are reaped');
select is((select status from public.generation_jobs where id = :'expired_5s_ago'), 'running',
          'the most recently expired lease waits for the next sweep');

-- TEST: the next sweep takes the rest
select is(queue.reap_expired_leases(2), 1, 'the next sweep reaps the last one');

select * from finish();
rollback;
