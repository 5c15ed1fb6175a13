begin;
select plan(6);

select tests.create_supabase_user('alice') as alice \gset
select tests.make_finished_job('alice', 'failed') as failed \gset
select tests.make_job('alice', 'queued') as queued \gset

-- TEST: the admin helpers are for postgres, not for the worker role
select throws_ok(format($$select tests.run_as('tenkaigen_worker', $q$select queue.requeue_job('%s')$q$)$$, :'failed'),
                 '42501', 'permission denied for function requeue_job', 'the worker cannot requeue a job');
select throws_ok(format($$select tests.run_as('tenkaigen_worker', $q$select queue.cancel_job('%s')$q$)$$, :'queued'),
                 '42501', 'permission denied for function cancel_job', 'the worker cannot cancel a job');
select throws_ok(format($$select tests.run_as('tenkaigen_worker', $q$select queue.request_cancel('%s')$q$)$$,
                        :'queued'),
                 '42501', 'permission denied for function request_cancel', 'the worker cannot request a cancel');
select throws_ok($$select tests.run_as('tenkaigen_worker', $q$select queue.retry_delay(1)$q$)$$,
                 '42501', 'permission denied for function retry_delay', 'retry_delay is internal to fail_job');

-- TEST: the worker cannot change quotas either
select throws_ok($$select tests.run_as('tenkaigen_worker', $q$update queue.quota_limits set max_active_jobs = 1000$q$)$$,
                 '42501', 'permission denied for table quota_limits', 'the worker cannot change quotas');

-- TEST: nothing changed
select results_eq(format($$select status from public.generation_jobs where id in (%L, %L) order by status$$,
                         :'failed', :'queued'),
                  $$values ('failed'::text), ('queued'::text)$$, 'both jobs keep their status');

select * from finish();
rollback;
