begin;
select plan(10);

select tests.create_supabase_user('alice');
select tests.authenticate_as('alice');

-- TEST: each state, result, lease or admin column is outside the client's column-level insert grant
select throws_ok(format($$insert into public.generation_jobs (prompt, %I) values ('x', %s)$$, col, val),
                 '42501', 'permission denied for table generation_jobs',
                 format('a client cannot set %s', col))
from (values ('status', quote_literal('succeeded')),
             ('result_path', quote_literal('x/y.png')),
             ('attempts', '0'),
             ('max_attempts', '25'),
             ('locked_by', quote_literal('me')),
             ('lease_expires_at', 'now()'),
             ('priority', '32000'),
             ('run_after', 'now()'),
             ('resolved_prompt', quote_literal('injected'))) as c(col, val);

reset role;
select is((select count(*)::integer from public.generation_jobs), 0, 'none of those inserts created a row');

select * from finish();
rollback;
