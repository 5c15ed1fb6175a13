begin;
select plan(17);

select tests.create_supabase_user('alice') as alice \gset
select tests.make_job('alice', 'for the worker') as job \gset

-- TEST: exactly the worker API is executable by tenkaigen_worker
select set_eq(
  $$select p.oid::regprocedure::text from pg_proc p
    where p.pronamespace = 'queue'::regnamespace and has_function_privilege('tenkaigen_worker', p.oid, 'execute')$$,
  array['queue.claim_jobs(text,integer,integer)',
        'queue.renew_leases(text,uuid[],integer[],integer)',
        'queue.report_progress(text,uuid,integer,real)',
        'queue.complete_jobs(text,jsonb)',
        'queue.fail_job(text,uuid,integer,text,text,boolean)',
        'queue.acknowledge_cancel(text,uuid,integer)',
        'queue.release_jobs(text,uuid[],integer[])',
        'queue.reap_expired_leases(integer)',
        'queue.purge_finished_jobs(interval,integer)',
        'queue.claim_storage_deletions(text,integer,integer)',
        'queue.finish_storage_deletions(bigint[],text)',
        'queue.try_lead(text,integer)',
        'queue.resign_lead(text)',
        'queue.record_cost_alert(numeric,integer,interval)',
        'queue.finish_cost_alert(date,integer,text)',
        'queue.record_backend_call(text,uuid,integer,text)'],
  'tenkaigen_worker may execute the worker functions and nothing else in queue');

-- TEST: tests.run_as really runs the statement as tenkaigen_worker
select tests.run_as('tenkaigen_worker', $q$select set_config('tests.ran_as', current_user, true)$q$) as ran \gset
select is(current_setting('tests.ran_as'), 'tenkaigen_worker', 'statements below run as tenkaigen_worker');

-- TEST: as tenkaigen_worker, each worker function runs (security definer: no table write grant needed)
select lives_ok($$select tests.run_as('tenkaigen_worker', $q$select queue.claim_jobs('worker-a', 1, 30)$q$)$$,
                'the worker claims');
select results_eq(format($$select status, locked_by, attempts from public.generation_jobs where id = %L$$, :'job'),
                  $$values ('running'::text, 'worker-a'::text, 1)$$, 'the worker''s claim took the job');
select lives_ok(format($$select tests.run_as('tenkaigen_worker',
                         $q$select queue.renew_leases('worker-a', array['%s']::uuid[], array[1])$q$)$$, :'job'),
                'the worker renews its lease');
select lives_ok(format($$select tests.run_as('tenkaigen_worker',
                         $q$select queue.report_progress('worker-a', '%s', 1, 0.5)$q$)$$, :'job'),
                'the worker reports progress');
select is((select progress from public.generation_jobs where id = :'job'), 0.5::real, 'the progress was stored');
select lives_ok(format($$select tests.run_as('tenkaigen_worker',
                         $q$select queue.release_jobs('worker-a', array['%s']::uuid[], array[1])$q$)$$, :'job'),
                'the worker releases the job');
select lives_ok($$select tests.run_as('tenkaigen_worker', $q$select queue.claim_jobs('worker-a', 1, 30)$q$)$$,
                'the worker claims it again (its second claim: claim number 2, attempt 1 again)');
select lives_ok(format($$select tests.run_as('tenkaigen_worker',
                         $q$select queue.fail_job('worker-a', '%s', 2, 'timeout', 'slow', false)$q$)$$, :'job'),
                'the worker fails the job');
select is((select status from public.generation_jobs where id = :'job'), 'failed', 'the failure was stored');

select tests.make_running_job('alice', 'worker-a', 60, 1) as to_complete \gset
select lives_ok(format($$select tests.run_as('tenkaigen_worker',
                         $q$select queue.complete_jobs('worker-a', '[{"job_id": "%s", "claim": 1, "result_path": "%s"}]')$q$)$$,
                       :'to_complete', tests.result_path_for(:'to_complete')),
                'the worker completes a job');
select tests.make_running_job('alice', 'worker-a', 60, 1) as to_cancel \gset
select queue.request_cancel(:'to_cancel') as cancel_result \gset
select lives_ok(format($$select tests.run_as('tenkaigen_worker',
                         $q$select queue.acknowledge_cancel('worker-a', '%s', 1)$q$)$$, :'to_cancel'),
                'the worker acknowledges a cancel');
select lives_ok($$select tests.run_as('tenkaigen_worker', $q$select queue.reap_expired_leases()$q$)$$,
                'the worker reaps expired leases');
select lives_ok($$select tests.run_as('tenkaigen_worker', $q$select queue.purge_finished_jobs()$q$)$$,
                'the worker purges old finished jobs');
select lives_ok($$select tests.run_as('tenkaigen_worker',
                  $q$select queue.claim_storage_deletions('generated-designs', 10)$q$)$$,
                'the worker claims queued Storage deletions');
select lives_ok($$select tests.run_as('tenkaigen_worker', $q$select queue.finish_storage_deletions(array[]::bigint[])$q$)$$,
                'the worker finishes Storage deletions');

select * from finish();
rollback;
