begin;
select plan(4);

-- Renaming a variant that styles default to (lightning-8 is every seeded style's default_variant) must cascade
-- into generation_styles.default_variant (on update cascade) as it does into the jobs; before, the style
-- foreign key had no ON UPDATE action and refused the rename.
select tests.create_supabase_user('alice');
select tests.authenticate_as('alice');
insert into public.generation_jobs (prompt, style, client_request_id) values ('a cat', 'anime', 'before-rename');
reset role;

-- TEST: the rename succeeds
select lives_ok($$update public.generation_variants set id = 'lightning-8b' where id = 'lightning-8'$$,
                'an admin renames the lightning-8 variant, the default of every seeded style');

-- TEST: every style that defaulted to it follows, and so does the job
select is((select count(*)::integer from public.generation_styles where default_variant = 'lightning-8'), 0,
          'no style names the old id');
select is((select default_variant from public.generation_styles where id = 'anime'), 'lightning-8b',
          'the anime style defaults to the renamed variant');

-- TEST: a new job on that style resolves to the renamed variant
select tests.authenticate_as('alice');
insert into public.generation_jobs (prompt, style, client_request_id) values ('a dog', 'anime', 'after-rename');
reset role;
select results_eq($$select client_request_id, variant from public.generation_jobs order by 1$$,
                  $$values ('after-rename'::text, 'lightning-8b'::text), ('before-rename', 'lightning-8b')$$,
                  'jobs before and after the rename name the renamed variant');

select * from finish();
rollback;
