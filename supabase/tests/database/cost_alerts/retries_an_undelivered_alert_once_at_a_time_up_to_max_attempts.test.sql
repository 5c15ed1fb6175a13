begin;
select plan(11);

delete from public.generation_jobs;
select tests.create_supabase_user('alice') as alice \gset
select tests.make_finished_job('alice', 'succeeded') as pricey \gset
update public.generation_jobs set gpu_seconds = 100, cost_usd = 3 where id = :'pricey';
select (now() at time zone 'UTC')::date as today \gset

-- TEST: a failed delivery keeps its error and leaves the day undelivered
select is((select attempt from queue.record_cost_alert(1.0, 3)), 1, 'attempt 1 is handed out');
select ok(queue.finish_cost_alert(:'today', 1, 'HTTP 503 from the webhook'), 'the failure is recorded');
select results_eq($$select attempts, delivered_at is null, last_error from queue.cost_alerts$$,
                  $$values (1, true, 'HTTP 503 from the webhook'::text)$$, 'undelivered, with the error');

-- TEST: no retry before retry_after has passed since the last attempt (a replica may still be sending)
select is_empty($$select * from queue.record_cost_alert(1.0, 3)$$, 'no retry within a minute of the attempt');

-- TEST: after it, exactly one caller retries (attempt 2); the next one finds the retry taken
update queue.cost_alerts set last_attempt_at = now() - interval '2 minutes';
select is((select attempt from queue.record_cost_alert(1.0, 3)), 2, 'attempt 2 after the retry delay');
select is_empty($$select * from queue.record_cost_alert(1.0, 3, interval '1 minute')$$,
                'a second caller does not retry at the same time');

-- TEST: an error reported for an older attempt does not overwrite the latest one's
select ok(not queue.finish_cost_alert(:'today', 1, 'late error of attempt 1'),
          'an older attempt''s error is ignored');

-- TEST: attempts are bounded: after max_attempts failures the alert is given up
select ok(queue.finish_cost_alert(:'today', 2, 'timeout'), 'attempt 2 failed');
update queue.cost_alerts set last_attempt_at = now() - interval '2 minutes';
select is((select attempt from queue.record_cost_alert(1.0, 3)), 3, 'attempt 3, the last one');
select ok(queue.finish_cost_alert(:'today', 3, 'timeout'), 'attempt 3 failed');
update queue.cost_alerts set last_attempt_at = now() - interval '2 minutes';
select is_empty($$select * from queue.record_cost_alert(1.0, 3)$$, 'no fourth attempt with max_attempts 3');

select * from finish();
rollback;
