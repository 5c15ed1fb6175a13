begin;
select plan(5);

select tests.create_supabase_user('alice');
select tests.create_supabase_user('bob');
select tests.make_job('alice', 'alice''s job');

-- Realtime checks a join by running a select on realtime.messages as the user with realtime.topic set.
select tests.authenticate_as('alice');
select set_config('realtime.topic', 'generation_jobs:' || tests.get_supabase_uid('alice'), true);
-- TEST: alice can join and receive her topic
select ok((select count(*) from realtime.messages) > 0, 'alice reads messages on her own topic');

select set_config('realtime.topic', 'generation_jobs:' || tests.get_supabase_uid('bob'), true);
-- TEST: alice cannot join bob's topic
select is((select count(*)::integer from realtime.messages), 0, 'alice reads nothing on bob''s topic');

select tests.authenticate_as('bob');
select set_config('realtime.topic', 'generation_jobs:' || tests.get_supabase_uid('alice'), true);
-- TEST: bob cannot read alice's topic, even by setting the topic to hers
select is((select count(*)::integer from realtime.messages), 0, 'bob reads nothing on alice''s topic');

-- TEST: a client cannot inject messages into someone's topic (no insert policy)
select throws_ok(format($$insert into realtime.messages (topic, extension, payload, event, private)
                          values ('generation_jobs:%s', 'broadcast', '{"status":"succeeded"}', 'job_update', true)$$,
                        tests.get_supabase_uid('alice')),
                 '42501', 'new row violates row-level security policy for table "messages"',
                 'bob cannot send a fake update to alice''s topic');

select tests.clear_authentication();
select set_config('realtime.topic', 'generation_jobs:' || tests.get_supabase_uid('alice'), true);
select is((select count(*)::integer from realtime.messages), 0, 'anon reads nothing');

select * from finish();
rollback;
