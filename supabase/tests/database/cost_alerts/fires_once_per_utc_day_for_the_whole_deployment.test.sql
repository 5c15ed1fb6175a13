begin;
select plan(13);

delete from public.generation_jobs;   -- count the cost from a known state (rolled back)
select tests.create_supabase_user('alice') as alice \gset
select tests.make_finished_job('alice', 'succeeded') as cheap \gset
update public.generation_jobs set gpu_seconds = 1000, cost_usd = 0.5 where id = :'cheap';
select tests.make_finished_job('alice', 'succeeded', now() - interval '25 hours') as long_ago \gset
update public.generation_jobs set gpu_seconds = 9000, cost_usd = 5 where id = :'long_ago';

-- TEST: below the threshold (the cost of the last 24 h only, like queue.job_stats): nothing to send, nothing kept
select is_empty($$select * from queue.record_cost_alert(1.0)$$,
                'a cost of 0.50 in the last 24 h (5.00 the day before) does not cross 1.00');
select is((select count(*) from queue.cost_alerts), 0::bigint, 'no alert row below the threshold');

-- TEST: the first caller to see the crossing gets the alert to send, as attempt 1 of today (UTC)
select tests.make_finished_job('alice', 'succeeded') as pricey \gset
update public.generation_jobs set gpu_seconds = 500, cost_usd = 0.75 where id = :'pricey';
select results_eq($$select * from queue.record_cost_alert(1.0)$$,
                  $$values ((now() at time zone 'UTC')::date, 1.25::numeric, 1500::numeric, 1)$$,
                  'cost 1.25 above 1.00: the caller sends attempt 1 of today''s alert');
select results_eq($$select threshold_usd, cost_usd, attempts, delivered_at is null from queue.cost_alerts$$,
                  $$values (1.0::numeric, 1.25::numeric, 1, true)$$, 'the firing is recorded, not yet delivered');

-- TEST: every other caller (another replica, the same one an hour later) gets nothing while it is being sent
select is_empty($$select * from queue.record_cost_alert(1.0)$$, 'a second caller does not send it again');
select is_empty($$select * from queue.record_cost_alert(0.5)$$,
                'nor does a replica configured with another threshold');

-- TEST: once delivered, never again that day, even after the retry delay
select ok(queue.finish_cost_alert((now() at time zone 'UTC')::date, 1), 'the delivery is recorded');
select ok((select delivered_at is not null and last_error is null from queue.cost_alerts),
          'the day is marked delivered');
update queue.cost_alerts set last_attempt_at = now() - interval '1 hour';
select is_empty($$select * from queue.record_cost_alert(1.0, 5, interval '0')$$,
                'a delivered alert is never sent twice');
select ok(not queue.finish_cost_alert((now() at time zone 'UTC')::date, 1),
          'a second delivery report changes nothing');

-- TEST: bad arguments are refused naming the argument
select throws_ok($$select * from queue.record_cost_alert(0)$$, '22023', 'threshold_usd: must be above 0, got 0',
                 'a threshold of 0 is refused');

-- TEST: the worker role may call both functions; the API roles may not (no usage on queue)
select lives_ok($$select tests.run_as('tenkaigen_worker', $q$select queue.record_cost_alert(1.0)$q$)$$,
                'tenkaigen_worker checks the cost alert');
select tests.authenticate_as('alice');
select throws_ok($$select * from queue.record_cost_alert(1.0)$$, '42501', 'permission denied for schema queue',
                 'a signed-in client cannot');
reset role;

select * from finish();
rollback;
