begin;
select plan(7);

-- TEST: tenkaigen_worker runs both functions (security definer) without any privilege on the table
select lives_ok($$select tests.run_as('tenkaigen_worker', $q$select queue.try_lead('worker-a', 30)$q$)$$,
                'tenkaigen_worker asks for the lease');
select is((select worker_id from queue.maintenance_leader where lease_expires_at > now()), 'worker-a',
          'tenkaigen_worker took the lease');
select lives_ok($$select tests.run_as('tenkaigen_worker', $q$select queue.resign_lead('worker-a')$q$)$$,
                'tenkaigen_worker resigns');
select ok(not has_table_privilege('tenkaigen_worker', 'queue.maintenance_leader', 'select,insert,update,delete'),
          'tenkaigen_worker has no direct privilege on the lease table');

-- TEST: the API roles reach neither the table nor the functions
select is_empty(
  $$select r.role, p.priv from (values ('anon'), ('authenticated'), ('service_role')) as r(role)
    cross join (values ('select'), ('insert'), ('update'), ('delete'), ('truncate')) as p(priv)
    where has_table_privilege(r.role, 'queue.maintenance_leader', p.priv)$$,
  'no API role has any privilege on queue.maintenance_leader');
select is_empty(
  $$select r.role, f.fn from (values ('anon'), ('authenticated'), ('service_role')) as r(role)
    cross join (values ('queue.try_lead(text,integer)'), ('queue.resign_lead(text)')) as f(fn)
    where has_function_privilege(r.role, f.fn, 'execute')$$,
  'no API role may execute try_lead or resign_lead');
select tests.create_supabase_user('alice') as alice \gset
select tests.authenticate_as('alice');
select throws_ok($$select queue.try_lead('worker-x', 30)$$, '42501', 'permission denied for schema queue',
                 'a signed-in client cannot take the lease');

select * from finish();
rollback;
