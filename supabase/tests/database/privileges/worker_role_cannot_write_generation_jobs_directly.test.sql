begin;
select plan(8);

select tests.create_supabase_user('alice') as alice \gset
select tests.make_job('alice', 'queued') as job \gset

-- TEST: on generation_jobs the worker role holds SELECT only: every write goes through the queue functions
select table_privs_are('public', 'generation_jobs', 'tenkaigen_worker', array['SELECT'],
                       'tenkaigen_worker may only select generation_jobs');
select ok((select not rolsuper and not rolbypassrls from pg_roles where rolname = 'tenkaigen_worker'),
          'tenkaigen_worker is neither superuser nor BYPASSRLS');

-- TEST: direct writes are refused with 42501
select throws_ok(format($$select tests.run_as('tenkaigen_worker',
                          $q$insert into public.generation_jobs (user_id, prompt) values ('%s', 'sneaky')$q$)$$,
                        :'alice'),
                 '42501', 'permission denied for table generation_jobs', 'the worker cannot insert a job');
select throws_ok(format($$select tests.run_as('tenkaigen_worker',
                          $q$update public.generation_jobs set priority = 9 where id = '%s'$q$)$$, :'job'),
                 '42501', 'permission denied for table generation_jobs', 'the worker cannot update a job');
select throws_ok(format($$select tests.run_as('tenkaigen_worker',
                          $q$update public.generation_jobs set status = 'running', locked_by = 'w',
                             lease_expires_at = now() where id = '%s'$q$)$$, :'job'),
                 '42501', 'permission denied for table generation_jobs', 'the worker cannot claim by hand');
select throws_ok(format($$select tests.run_as('tenkaigen_worker',
                          $q$delete from public.generation_jobs where id = '%s'$q$)$$, :'job'),
                 '42501', 'permission denied for table generation_jobs', 'the worker cannot delete a job');
select throws_ok($$select tests.run_as('tenkaigen_worker', $q$truncate public.generation_jobs$q$)$$,
                 '42501', 'permission denied for table generation_jobs', 'the worker cannot truncate the queue');

-- TEST: the job is untouched
select results_eq(format($$select status, priority from public.generation_jobs where id = %L$$, :'job'),
                  $$values ('queued'::text, 0::smallint)$$, 'the job is still queued at priority 0');

select * from finish();
rollback;
