begin;
select plan(35);

-- TEST: the job table and its identity
select has_table('public', 'generation_jobs', 'public.generation_jobs exists');
select col_is_pk('public', 'generation_jobs', 'id', 'id is the primary key');
select col_type_is('public', 'generation_jobs', 'id', 'uuid', 'id is a uuid');
select col_type_is('public', 'generation_jobs', 'user_id', 'uuid', 'user_id is a uuid');
select fk_ok('public', 'generation_jobs', 'user_id', 'auth', 'users', 'id', 'user_id references auth.users');

-- TEST: the state columns the queue functions read and write, with their types
select col_type_is('public', 'generation_jobs', 'status', 'text', 'status is text');
select col_type_is('public', 'generation_jobs', 'progress', 'real', 'progress is real');
select col_type_is('public', 'generation_jobs', 'priority', 'smallint', 'priority is smallint');
select col_type_is('public', 'generation_jobs', 'attempts', 'integer', 'attempts is integer');
select col_type_is('public', 'generation_jobs', 'max_attempts', 'integer', 'max_attempts is integer');
select col_type_is('public', 'generation_jobs', 'run_after', 'timestamp with time zone', 'run_after is timestamptz');
select col_type_is('public', 'generation_jobs', 'cancel_requested_at', 'timestamp with time zone',
                   'cancel_requested_at is timestamptz');
select col_type_is('public', 'generation_jobs', 'locked_by', 'text', 'locked_by is text');
select col_type_is('public', 'generation_jobs', 'lease_expires_at', 'timestamp with time zone',
                   'lease_expires_at is timestamptz');
select col_type_is('public', 'generation_jobs', 'error_code', 'text', 'error_code is text');
select col_type_is('public', 'generation_jobs', 'error_message', 'text', 'error_message is text');
select col_type_is('public', 'generation_jobs', 'started_at', 'timestamp with time zone', 'started_at is timestamptz');
select col_type_is('public', 'generation_jobs', 'finished_at', 'timestamp with time zone', 'finished_at is timestamptz');

-- TEST: the result columns complete_jobs writes
select col_type_is('public', 'generation_jobs', 'result_path', 'text', 'result_path is text');
select col_type_is('public', 'generation_jobs', 'result_bytes', 'integer', 'result_bytes is integer');
select col_type_is('public', 'generation_jobs', 'backend', 'text', 'backend is text');
select col_type_is('public', 'generation_jobs', 'backend_call_id', 'text', 'backend_call_id is text');
select col_type_is('public', 'generation_jobs', 'gpu_seconds', 'real', 'gpu_seconds is real');
select col_type_is('public', 'generation_jobs', 'cost_usd', 'numeric(12,6)', 'cost_usd is numeric(12,6)');

-- TEST: a new row starts queued, due now, with no attempt made and three allowed
select is(
  (select string_agg(a.attname || ' = ' || pg_get_expr(d.adbin, d.adrelid), '; ' order by a.attname)
   from pg_attribute a join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
   where a.attrelid = 'public.generation_jobs'::regclass
     and a.attname in ('status', 'progress', 'priority', 'attempts', 'max_attempts', 'run_after', 'created_at',
                       'updated_at')),
  'attempts = 0; created_at = now(); max_attempts = 3; priority = 0; progress = 0; run_after = now(); '
  'status = ''queued''::text; updated_at = now()',
  'status queued, progress 0, priority 0, attempts 0 of 3, run_after/created_at/updated_at now()');

-- TEST: the state columns that every row has are not null
select col_not_null('public', 'generation_jobs', 'status', 'status is not null');
select col_not_null('public', 'generation_jobs', 'progress', 'progress is not null');
select col_not_null('public', 'generation_jobs', 'priority', 'priority is not null');
select col_not_null('public', 'generation_jobs', 'attempts', 'attempts is not null');
select col_not_null('public', 'generation_jobs', 'max_attempts', 'max_attempts is not null');
select col_not_null('public', 'generation_jobs', 'run_after', 'run_after is not null');
select col_is_null('public', 'generation_jobs', 'locked_by', 'locked_by is nullable (only set while running)');
select col_is_null('public', 'generation_jobs', 'lease_expires_at', 'lease_expires_at is nullable');

-- TEST: the state machine is wired in: the transition guard fires before every update
select trigger_is('public', 'generation_jobs', 'generation_jobs_guard_transition',
                  'public', 'generation_jobs_guard_transition', 'the transition guard trigger calls its function');
select ok((select tgtype & 2 = 2 and tgtype & 16 = 16 and tgtype & 1 = 1 and tgenabled = 'O'
           from pg_trigger where tgrelid = 'public.generation_jobs'::regclass
             and tgname = 'generation_jobs_guard_transition'),
          'the guard is an enabled BEFORE UPDATE FOR EACH ROW trigger');

select * from finish();
rollback;
