begin;
select plan(12);

select tests.create_supabase_user('alice');
select tests.create_supabase_user('bob');
-- objects as Storage writes them: generated designs uploaded by the worker with the service key (no owner)
insert into storage.objects (bucket_id, name, owner_id) values
  ('generated-designs', tests.get_supabase_uid('alice') || '/job-a.png', null),
  ('generated-designs', tests.get_supabase_uid('bob') || '/job-b.png', null),
  ('generation-inputs', tests.get_supabase_uid('bob') || '/in.png', tests.get_supabase_uid('bob')::text);

-- TEST: the buckets exist, private, with their limits
select results_eq($$select id, public, allowed_mime_types from storage.buckets order by id$$,
                  $$values ('generated-designs'::text, false, array['image/png']),
                           ('generation-inputs'::text, false, array['image/png', 'image/jpeg', 'image/webp'])$$,
                  'two private buckets with MIME limits');

select tests.authenticate_as('alice');
-- TEST: reads go by folder
select results_eq($$select name from storage.objects$$,
                  format($$values ('%s/job-a.png'::text)$$, tests.get_supabase_uid('alice')),
                  'alice sees only her own generated design');

-- TEST: uploads to generation-inputs only into her own folder, exactly one level deep
select lives_ok(format($$insert into storage.objects (bucket_id, name, owner_id)
                         values ('generation-inputs', '%s/photo.png', '%s')$$,
                       tests.get_supabase_uid('alice'), tests.get_supabase_uid('alice')),
                'alice uploads into generation-inputs/<her uid>/');
select is((select count(*)::integer from storage.objects where bucket_id = 'generation-inputs'), 1,
          'alice reads back her own upload and not bob''s input');
select throws_ok(format($$insert into storage.objects (bucket_id, name) values ('generation-inputs', %L)$$, p),
                 '42501', 'new row violates row-level security policy for table "objects"', why)
from (values
  (tests.get_supabase_uid('bob') || '/x.png', 'alice cannot upload into bob''s folder'),
  (tests.get_supabase_uid('alice') || '/../' || tests.get_supabase_uid('bob') || '/x.png', 'no .. escapes'),
  ('/' || tests.get_supabase_uid('alice') || '/x.png', 'no absolute paths'),
  (tests.get_supabase_uid('alice') || '/sub/x.png', 'no nested folders'),
  (tests.get_supabase_uid('alice') || '%2F..%2Fx.png', 'no percent-encoded separators (no folder at all)'),
  ('x.png', 'no files outside a folder'),
  (tests.get_supabase_uid('alice') || '/.hidden', 'no dot files')) as t(p, why);
select throws_ok($$insert into storage.objects (bucket_id, name) values ('generated-designs', 'x/y.png')$$,
                 '42501', 'new row violates row-level security policy for table "objects"',
                 'clients cannot write generated designs');

select * from finish();
rollback;
