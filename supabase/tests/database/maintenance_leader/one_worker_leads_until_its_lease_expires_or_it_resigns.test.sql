begin;
select plan(13);

-- TEST: the first caller takes the lease, another worker is refused while it holds it
select is(queue.try_lead('worker-a', 45), true, 'the first worker to ask leads');
select is(queue.try_lead('worker-b', 45), false, 'a second worker is refused while the lease holds');
select results_eq($$select worker_id from queue.maintenance_leader$$, $$values ('worker-a'::text)$$,
                  'the table names the leader, in one row');

-- TEST: the leader renews its lease and keeps the time it took it
update queue.maintenance_leader set acquired_at = now() - interval '1 hour', lease_expires_at = now() + interval '1 s';
select is(queue.try_lead('worker-a', 45), true, 'the leader renews');
select ok((select lease_expires_at = now() + interval '45 s' and acquired_at = now() - interval '1 hour'
           from queue.maintenance_leader), 'a renewal extends the lease and keeps acquired_at');

-- TEST: an expired lease goes to the next worker that asks
update queue.maintenance_leader set acquired_at = now() - interval '2 min', lease_expires_at = now() - interval '1 s';
select is(queue.try_lead('worker-b', 30), true, 'another worker takes an expired lease');
select ok((select worker_id = 'worker-b' and acquired_at = now() and lease_expires_at = now() + interval '30 s'
           from queue.maintenance_leader), 'the new leader''s lease starts now');
select is(queue.try_lead('worker-a', 45), false, 'the former leader is refused now');

-- TEST: a resigning leader hands over at once; resigning when not the leader does nothing
update queue.maintenance_leader set acquired_at = now() - interval '1 min';
select is(queue.resign_lead('worker-a'), false, 'a worker that does not lead cannot resign');
select is(queue.resign_lead('worker-b'), true, 'the leader resigns');
select is(queue.try_lead('worker-a', 45), true, 'another worker leads right after the resignation');

-- TEST: bad arguments are refused naming the argument
select throws_ok($$select queue.try_lead('worker-a', 0)$$, '22023', 'lease_seconds: must be at least 1, got 0',
                 'a lease shorter than a second is refused');
select throws_ok($$select queue.try_lead('', 10)$$, '22023', 'worker_id: give the id of the calling worker',
                 'an empty worker id is refused');

select * from finish();
rollback;
